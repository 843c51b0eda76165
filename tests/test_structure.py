"""The package's shape: its modules import each other without a cycle, function-local imports included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "entropy_retriever"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = {}
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names]
                deps |= {n for n in names if n in modules} or {target}
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                found = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                deps |= {f for f in found if f.startswith("entropy_retriever")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]], facades: set[str]) -> list[str] | None:
    """A cycle among the modules (package facades, the ``__init__`` files, left out), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node] - facades):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(set(graph) - facades):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    facades = {_module(p) for p in PACKAGE.rglob("__init__.py")}
    assert "entropy_retriever.runtime" in graph and len(graph) > 25
    assert find_cycle(graph, facades) is None, " -> ".join(find_cycle(graph, facades))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, set()) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}, set()) is None


def test_function_local_imports_are_only_where_they_must_be_and_say_why():
    """Optional dependencies, platform modules and the launcher's import: each with a comment."""
    silent = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for function in ast.walk(ast.parse(source)):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and "#" not in lines[node.lineno - 1]:
                        silent.append(f"{path.name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not silent, silent


def _body_lines(function: ast.FunctionDef) -> int:
    """Lines of a function from its signature to its end, less its docstring."""
    total = function.end_lineno - function.lineno + 1
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) and isinstance(first.value.value, str):
        total -= first.end_lineno - first.lineno + 1
    return total


def test_functions_stay_short_and_the_reader_reads_as_its_stages():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > 60:
                long.append(f"{path.name}:{node.name} ({_body_lines(node)} lines)")
    assert not long, long
    reader = ast.parse((PACKAGE / "reader.py").read_text(encoding="utf-8"))
    select = next(n for n in ast.walk(reader) if isinstance(n, ast.FunctionDef) and n.name == "select")
    assert _body_lines(select) <= 40
