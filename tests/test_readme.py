"""The README's Python blocks run as written, in order, in one namespace, on the embedded model.

A block preceded by ``<!-- readme-test: needs ... -->`` needs something of the user's (a vector
index); it is compiled, not run. The test writes the ``report.txt`` the blocks read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- readme-test: needs"

FILLER = (
    "The committee met again to review the quarterly figures, the staffing plan and the state of the "
    "warehouse roof, and agreed to postpone the decision on the new delivery vans until spring. "
)
FACT = "The contract was signed on 14 March 2021 by Maria Lopez, the director of the northern branch. "


def blocks() -> list[tuple[int, str, bool]]:
    """(line number, code, runnable) for each ```python block."""
    lines = README.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            found.append((start + 1, "\n".join(lines[start:end]), not before.startswith(MARK)))
            i = end
        i += 1
    return found


def test_marked_blocks_compile():
    marked = [(line, code) for line, code, runnable in blocks() if not runnable]
    assert len(marked) == 2
    for line, code in marked:
        compile(code, f"README.md:{line}", "exec")


@pytest.mark.slow
def test_readme_blocks_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("report.txt").write_text(FILLER * 20 + FACT + FILLER * 20, encoding="utf-8")
    runnable = [(line, code) for line, code, ok in blocks() if ok]
    assert len(runnable) >= 2
    namespace: dict = {"__name__": "__readme__"}
    for line, code in runnable:
        exec(compile(code, f"README.md:{line}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert re.search(r"2021|March|Lopez", printed)  # the reader's answer, or the LM's, names the fact
    key = namespace["key"]
    assert len(key.spans) >= 1 and "Lopez" in namespace["answer"].key_context.text
    assert namespace["lm"].context_window == (8192 - 1024) * 4 + 1024
    assert namespace["model"].config._attn_implementation == "sdpa"  # nothing left switched on
