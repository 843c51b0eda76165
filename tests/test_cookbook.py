"""The cookbook notebooks (cookbook/*.ipynb) run top to bottom, offline, quietly, on the public API.

Executing them loads the embedded model, so those tests are in the slow tier (``make test``
runs them, as CI does); the checks on their code are fast.
"""

from __future__ import annotations

import ast
import importlib
import re
import time
from pathlib import Path

import pytest

COOKBOOK = Path(__file__).parents[1] / "cookbook"
NOTEBOOKS = sorted(COOKBOOK.glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_llamaindex_rag", "03_langchain", "04_beyond_the_window", "05_results", "06_scale"]
# Our modules a notebook may import from, each through the names its __all__ declares.
PUBLIC_MODULES = {
    "entropy_retriever",
    "entropy_retriever.attention",
    "entropy_retriever.scoring",
    "langchain_entropy_retriever",
    "llama_index.llms.entropy_retriever",
    "llama_index.postprocessor.entropy_retriever",
    "llama_index.retrievers.entropy_retriever",
    "llama_index.tools.entropy_retriever",
}


def _ours(module: str) -> bool:
    return module.split(".")[0] in ("entropy_retriever", "langchain_entropy_retriever") or module.endswith(".entropy_retriever")


def _code(path: Path) -> list[str]:
    import nbformat

    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def private_uses(source: str) -> list[str]:
    """Private names a cell imports or reads: a leading underscore, or one of our modules (or names)
    outside the public API."""
    tree = compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(part.startswith("_") for part in alias.name.split(".")):
                    found.append(f"import {alias.name}")
                elif _ours(alias.name) and alias.name not in PUBLIC_MODULES:
                    found.append(f"import {alias.name} (not a public module)")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if any(part.startswith("_") for part in module.split(".")):
                found.append(f"from {module} import ...")
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"from {module} import {alias.name}")
            if _ours(module):
                if module not in PUBLIC_MODULES:
                    found.append(f"from {module} import ... (not a public module)")
                else:
                    public = set(getattr(importlib.import_module(module), "__all__", ()))
                    found += [f"from {module} import {a.name} (not in its __all__)" for a in node.names if a.name not in public]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not re.fullmatch(r"__\w+__", node.attr):
            found.append(f".{node.attr}")
    return found


def test_the_cookbook_has_its_notebooks_each_with_a_parameters_cell():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    import nbformat

    for path in NOTEBOOKS:
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert "parameters" in cells[0].metadata.get("tags", []), f"{path.name}: the first code cell is not tagged 'parameters'"
        assert all(isinstance(n, (ast.Assign, ast.Expr)) for n in ast.parse(cells[0].source).body), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_use_the_public_api_only(path):
    uses = [f"cell {n}: {use}" for n, source in enumerate(_code(path)) for use in private_uses(source)]
    assert not uses, f"{path.name} uses private names: {uses}"


def test_only_the_progress_bar_may_reach_stderr():
    assert _progress_bar_only("\rreading (bm25):  40%|███▉ | 18.7k/46.8k [00:00<00:00]\r   \r")
    assert not _progress_bar_only("reading (bm25): 10%\nUserWarning: something else")


def test_the_private_name_check_catches_what_it_should():
    assert private_uses("from entropy_retriever.models import load_model")  # not a public module
    assert private_uses("from entropy_retriever import reader")  # not in __all__
    assert private_uses("from entropy_retriever.attention.cache import make_cache")
    assert private_uses("import entropy_retriever.streaming")
    assert private_uses("from transformers import _private")
    assert private_uses("x = reader._generate(1)")
    assert not private_uses("from entropy_retriever import LongContextReader\nfrom entropy_retriever.attention import choose_group_size")
    assert not private_uses("import numpy as np\nresult = await handler\nobj.__class__")


def test_notebooks_reach_nothing_outside_the_repository_but_a_temporary_folder():
    for path in NOTEBOOKS:
        text = "\n".join(_code(path))
        assert "../shared" not in text and "http://" not in text and "https://" not in text, path.name
        assert not re.search(r"[\"']/(?:work|home|root|srv|data)\b", text), path.name


def _progress_bar_only(text: str) -> bool:
    """Stderr that is nothing but the reader's own progress bar, which a notebook asked for."""
    lines = [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]
    return all(line.startswith("reading (") for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_quietly(path):
    """Every cell runs (a failing cell fails the test); no cell writes to stderr, except the
    reader's progress bar where a notebook asks for one."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(COOKBOOK)}}).execute()
    seconds = time.perf_counter() - started
    noise = [o.text for cell in notebook.cells for o in cell.get("outputs", []) if o.get("name") == "stderr"
             and not _progress_bar_only(o.text)]
    assert not noise, f"{path.name} wrote to stderr: {noise}"
    print(f"{path.name}: {seconds:.0f} s")
