"""The public API is short and pinned; framework adapters use only it and ``entropy_retriever.integration``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import entropy_retriever
import entropy_retriever.integration

PUBLIC = [
    "Answer",
    "CertaintyReranker",
    "ContextTooLongError",
    "EntropyRetrieverError",
    "FileAccess",
    "FileAccessError",
    "InputError",
    "KeyContext",
    "LMInfinite",
    "LongContextLM",
    "LongContextReader",
    "LongFileQA",
    "ModelLoadError",
    "Passage",
    "RankedPassage",
    "Selection",
    "SelfExtend",
    "extend_context",
    "load_model",
]

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = [ROOT / "integrations" / "llama-index" / "llama_index", ROOT / "integrations" / "langchain" / "langchain_entropy_retriever"]


def test_the_public_api_is_pinned():
    assert sorted(entropy_retriever.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(entropy_retriever, name) is not None
    public = {n for n in dir(entropy_retriever) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(entropy_retriever, n)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(PUBLIC)  # nothing else leaks at the top level


def test_the_integration_surface_resolves():
    for name in entropy_retriever.integration.__all__:
        assert hasattr(entropy_retriever.integration, name), name


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "entropy_retriever":
            yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "entropy_retriever":
                    yield alias.name, [], node.lineno


def test_adapters_import_only_declared_names():
    allowed = {
        "entropy_retriever": set(entropy_retriever.__all__),
        "entropy_retriever.integration": set(entropy_retriever.integration.__all__),
    }
    found = 0
    for package in ADAPTERS:
        for path in package.rglob("*.py"):
            for module, names, line in _imports(path):
                found += 1
                where = f"{path.relative_to(ROOT)}:{line}"
                assert module in allowed, f"{where} imports the internal module {module}"
                undeclared = set(names) - allowed[module]
                assert not undeclared, f"{where} imports undeclared {sorted(undeclared)} from {module}"
    assert found > 10  # the adapters were read


def test_the_attention_package_has_no_import_circle():
    """Each attention module imports only the ones before it in this order (and the core's errors and runtime)."""
    order = ["policies", "rope", "backends", "engine", "flex", "cache", "registry"]
    folder = ROOT / "entropy_retriever" / "attention"
    for position, name in enumerate(order):
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert node.module in order[:position], f"attention/{name}.py imports .{node.module}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in ("errors", "runtime"), f"attention/{name}.py imports ..{node.module}"
        importlib.import_module(f"entropy_retriever.attention.{name}")
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted(order + ["__init__"])


def test_the_lazy_package_declares_every_public_name_where_it_lives():
    """Each public name is imported on first use; the TYPE_CHECKING block (what type checkers and
    IDEs read) and the lazy table name the same module for it, and both resolve."""
    import ast
    import importlib

    source = (ROOT / "entropy_retriever" / "__init__.py").read_text(encoding="utf-8")
    static = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "_TYPE_CHECKING":
            for imp in node.body:
                static.update({a.name: imp.module for a in imp.names})
    assert static == entropy_retriever._HOMES and set(static) == set(entropy_retriever.__all__)
    for name, home in static.items():
        assert getattr(entropy_retriever, name) is getattr(importlib.import_module(f"entropy_retriever.{home}"), name)
