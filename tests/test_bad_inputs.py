"""The bad-input matrix (docs/bad-inputs.md): every class of bad input, through the command line,
the API and both frameworks' tools, gets one clear error that says what to do.

Command-line cases must exit with status 2 and print exactly one line, starting
``entropy-retriever: error:``, with no traceback. API cases must raise one of the library's own
errors (``EntropyRetrieverError``) whose message matches. Mechanics run on a tiny random Llama
(saved to a folder for the command line), so the whole matrix is in the fast tier.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from pathlib import Path

import pytest
import torch

from entropy_retriever import (
    CertaintyReranker,
    ContextTooLongError,
    EntropyRetrieverError,
    FileAccess,
    FileAccessError,
    InputError,
    LongContextLM,
    LongContextReader,
    ModelLoadError,
    Selection,
    load_model,
)
from entropy_retriever.cli import main
from entropy_retriever.scoring import CertaintyScorer, register_metric
from entropy_retriever.segments import Document, Segmenter

TEXT = "".join(f"Entry {i}. The harbour log notes calm water and {i} boats. " for i in range(120))
QUESTION = "How many boats were in the harbour?"
DOC_FILE = Path(__file__).parents[1] / "docs" / "bad-inputs.md"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    (root / "log.txt").write_text(TEXT, encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")
    (root / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / "latin1.txt").write_bytes("line one\nline two\ncaf\u00e9 au lait\n".encode("latin-1"))
    (root / "notamodel").mkdir()
    os.mkfifo(root / "fifo")
    return root


def reader(tiny, tokenizer, **kwargs):
    kwargs.setdefault("signals", ("certainty", "bm25"))
    kwargs.setdefault("segment_tokens", 64)
    kwargs.setdefault("top_k", 2)
    return LongContextReader(tiny, tokenizer, progress=False, **kwargs)


# ----------------------------------------------------------------------------- command line
TINY = ["--segment-tokens", "64", "--signals", "certainty", "bm25", "--no-progress", "--device", "cpu"]

# (class id, arguments, what the one-line error must say). FILE, MODEL and DIR are filled in.
CLI_CASES = [
    ("cli-missing-file", ["ask", "DIR/nope.txt", QUESTION], r"no such file. Check the path"),
    ("cli-directory", ["select", "DIR", QUESTION], r"is a directory: pass one file"),
    ("cli-fifo", ["select", "DIR/fifo", QUESTION], r"not a regular file"),
    ("cli-binary-file", ["select", "DIR/binary.bin", QUESTION, "--model", "MODEL", *TINY], r"looks like a binary file.*extract its text"),
    ("cli-not-utf8", ["select", "DIR/latin1.txt", QUESTION, "--model", "MODEL", *TINY],
     r"not valid UTF-8: byte b'\\xe9' at byte offset 21 \(line 3\).*--encoding-errors replace"),
    ("cli-empty-file", ["select", "DIR/empty.txt", QUESTION, "--model", "MODEL", *TINY], r"empty or only whitespace"),
    ("cli-empty-question", ["ask", "FILE", "  "], r"the question is empty"),
    ("cli-max-new-tokens-0", ["ask", "FILE", QUESTION, "--max-new-tokens", "0"], r"max_new_tokens must be a positive integer, got 0"),
    ("cli-focus-negative", ["ask", "FILE", QUESTION, "--focus", "-1"], r"answer_focus is how many of the key context's sentences .*--focus 0.* got -1"),
    ("cli-budget-0", ["select", "FILE", QUESTION, "--budget", "0"], r"token_budget must be a positive integer"),
    ("cli-budget-below-a-segment", ["select", "FILE", QUESTION, "--budget", "10"], r"cannot hold one segment.*raise token_budget"),
    ("cli-segment-tokens-tiny", ["select", "FILE", QUESTION, "--segment-tokens", "4"], r"segment_tokens must be an integer >= 8"),
    ("cli-overlap-too-big", ["select", "FILE", QUESTION, "--segment-tokens", "64", "--overlap-tokens", "64"], r"overlap_tokens must be"),
    ("cli-top-k-0", ["select", "FILE", QUESTION, "--top-k", "0"], r"top_k must be a positive integer"),
    ("cli-threshold-with-fusion", ["select", "FILE", QUESTION, "--threshold", "3"], r"threshold compares certainty scores"),
    ("cli-threshold-keeps-nothing", ["ask", "FILE", QUESTION, "--model", "MODEL", *TINY[:2], "--signals", "certainty",
                                     "--threshold", "-100", "--no-progress"], r"keeps no segment: the best score is .*raise the threshold"),
    ("cli-unknown-device", ["select", "FILE", QUESTION, "--device", "tpu"], r"unknown device 'tpu'"),
    ("cli-missing-gpu", ["select", "FILE", QUESTION, "--device", "cuda:99"], r"device 'cuda:99' asked for, but"),
    ("cli-unknown-dtype", ["select", "FILE", QUESTION, "--dtype", "int3"], r"unknown dtype 'int3'"),
    ("cli-model-path-missing", ["select", "FILE", QUESTION, "--model", "/nonexistent/model/dir"], r"no such model folder"),
    ("cli-model-folder-without-config", ["select", "FILE", QUESTION, "--model", "DIR/notamodel"], r"has no config.json"),
    ("cli-hub-unreachable", ["select", "FILE", QUESTION, "--model", "someorg/some-model-that-is-not-cached"],
     r"cannot be reached \(offline mode is set\).*pass that folder"),
    ("cli-budget-tokenizer-unknown", ["select", "FILE", QUESTION, "--model", "MODEL", *TINY, "--budget-tokenizer", "no_such_encoding"],
     r"tiktoken|unknown tiktoken encoding"),
]
CLI_CASES += [
    ("cli-demo-depth-outside", ["demo", "--depth", "1.5"], r"--depth must be a number from 0 \(the start\) to 1"),
    ("cli-demo-depth-nan", ["demo", "--depth", "nan"], r"--depth must be a number from 0"),
    ("cli-checkpoint-empty", ["select", "FILE", QUESTION, "--model", "MODEL", *TINY, "--checkpoint", ""], r"checkpoint path is empty"),
    ("cli-checkpoint-directory", ["select", "FILE", QUESTION, "--model", "MODEL", *TINY, "--checkpoint", "DIR"], r"is a directory"),
    ("cli-checkpoint-fifo", ["select", "FILE", QUESTION, "--model", "MODEL", *TINY, "--checkpoint", "DIR/fifo"], r"not a regular file"),
    ("cli-max-new-tokens-past-reach", ["ask", "FILE", QUESTION, "--model", "MODEL", *TINY, "--max-new-tokens", "100000"],
     r"max_new_tokens=100000 is at least the answering model's whole reach"),
    ("cli-hops-negative", ["select", "FILE", QUESTION, "--hops", "-1"], r"hops must be a whole number of at least 0"),
]
if importlib.util.find_spec("torch_npu") is None:
    CLI_CASES.append(("cli-missing-npu", ["select", "FILE", QUESTION, "--device", "npu:0"], r"an Ascend NPU was asked for"))


def _fill(args, files, model):
    out = []
    for a in args:
        a = a.replace("DIR", str(files)) if a.startswith("DIR") else a
        out.append({"FILE": str(files / "log.txt"), "MODEL": str(model)}.get(a, a))
    return out


def _one_line_error(capsys, rc):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2, (rc, err)
    assert "Traceback" not in captured.err and len(err.splitlines()) == 1, err
    assert err.startswith("entropy-retriever: error: "), err
    return err


@pytest.mark.parametrize("case, args, message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_command_line(case, args, message, files, tiny_folder, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = _one_line_error(capsys, main(_fill(args, files, tiny_folder)))
    assert re.search(message, err), err


def test_command_line_stdin_under_torchrun_is_refused_before_joining_the_group(capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; joining the group would wait for rank 1
    err = _one_line_error(capsys, main(["select", "-", QUESTION]))
    assert "standard input cannot be shared by several torchrun ranks" in err


def test_command_line_full_standard_output_is_one_line(files, tiny_folder, tmp_path):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:  # every write fails with ENOSPC, as on a full disk
        out = subprocess.run([sys.executable, "-m", "entropy_retriever", "select", str(files / "log.txt"), QUESTION,
                              "--model", str(tiny_folder), *TINY, "--json"],
                             stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.splitlines() == ["entropy-retriever: error: could not write the output (No space left on device)"]


def test_a_full_disk_while_journaling_is_one_error_and_the_journal_resumes(tiny, tokenizer, tmp_path, monkeypatch):
    import errno

    from entropy_retriever import streaming

    journal = tmp_path / "run.jsonl"
    # The run it must resume into, read in the same windows: the batch shape changes float32 sums
    # in the last digits on some CPUs (AVX-512), so a reader with other windows is not the reference.
    uninterrupted = reader(tiny, tokenizer, segment_tokens=48)
    uninterrupted.window_segments = 2
    fresh = uninterrupted.select(TEXT, QUESTION)
    r = reader(tiny, tokenizer, segment_tokens=48)
    r.window_segments = 2  # many windows, so that the disk fills after some were written
    real_fsync, calls = os.fsync, []

    def fills_up(fd):  # the third window's write finds the disk full
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(streaming.os, "fsync", fills_up)
    with pytest.raises(InputError, match="could not write .No space left on device.; it keeps what was recorded before"):
        r.select(TEXT, QUESTION, checkpoint=journal)
    monkeypatch.setattr(streaming.os, "fsync", real_fsync)
    lines = journal.read_text().splitlines()
    assert len(lines) == 3  # the header and two whole windows; the failed one was taken back
    resumed = r.select(TEXT, QUESTION, checkpoint=journal)
    assert [(s.start, s.end) for s in resumed.spans] == [(s.start, s.end) for s in fresh.spans]
    assert [s.score for s in resumed.segments] == pytest.approx([s.score for s in fresh.segments])


def test_command_line_journal_of_another_run_is_refused_and_kept(files, tiny_folder, tmp_path, capsys):
    journal = tmp_path / "run.jsonl"
    base = ["select", str(files / "log.txt"), QUESTION, "--model", str(tiny_folder), *TINY, "--checkpoint", str(journal)]
    assert main(base) == 0
    capsys.readouterr()
    before = journal.read_bytes()
    err = _one_line_error(capsys, main([*base[:2], "Another question entirely?", *base[3:]]))
    assert re.search(r"written for another run.*pass another path", err), err
    assert journal.read_bytes() == before  # nothing lost


def test_argument_errors_come_before_any_model_loads(files, capsys, monkeypatch):
    """Every option error is reported without loading a model (loading one here fails the test)."""
    import entropy_retriever.models as models

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(models, "_load", no_load)
    monkeypatch.setattr(models, "embedded_model_path", no_load)
    before_load = [c for c in CLI_CASES if "MODEL" not in c[1]]
    assert len(before_load) >= 15
    for case, args, message in before_load:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        err = _one_line_error(capsys, main(_fill(args, files, "unused")))
        assert re.search(message, err), (case, err)
    with pytest.raises(InputError, match="max_new_tokens"):
        LongContextReader.from_pretrained(max_new_tokens=0)
    with pytest.raises(InputError, match="unknown option 'top_n' for LongContextReader"):
        LongContextReader.from_pretrained(top_n=3)
    with pytest.raises(InputError, match="max_new_tokens"):
        LongContextLM.from_pretrained(max_new_tokens=-1)


# ------------------------------------------------------------------------------------ API
def _metric(fn, name):
    fn.__name__ = name
    return fn


def api_cases(tiny, tokenizer, tmp_path):
    """(class id, a call that must fail, the error type, what its message must say)."""
    r = reader(tiny, tokenizer)
    scorer = CertaintyScorer(tiny, tokenizer)
    lm = LongContextLM(tiny, tokenizer, max_new_tokens=4)
    scalar = _metric(lambda stats: stats.nll.mean(), "scalar_metric")
    nan = _metric(lambda stats: torch.full((stats.nll.shape[0],), math.nan), "nan_metric")
    changing = tmp_path / "changing.txt"
    changing.write_text(TEXT * 20, encoding="utf-8")

    def read_while_truncated():
        import entropy_retriever.segments as segments

        old, segments._READ_BYTES = segments._READ_BYTES, 4096
        try:
            for n, _ in enumerate(Segmenter(tokenizer, 64).split(changing)):
                if n == 2:
                    changing.write_text(TEXT[:100], encoding="utf-8")  # cut short while it is read
        finally:
            segments._READ_BYTES = old

    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("the password is hunter2")
    os.link(outside, root / "innocent.txt")
    (root / "big.txt").write_text("x" * 200)
    access = FileAccess(root, max_bytes=100)
    dangling = tmp_path / "journal.jsonl"
    dangling.symlink_to(tmp_path / "nowhere" / "journal.jsonl")

    def write_beside_another_run():
        from entropy_retriever.streaming import Journal

        held = Journal(tmp_path / "shared.jsonl", {"run": 1})
        try:
            Journal(tmp_path / "shared.jsonl", {"run": 1})
        finally:
            held.close()

    return [
        ("api-context-bytes", lambda: r.select(b"some bytes", QUESTION), InputError, r"context is bytes: decode it"),
        ("api-context-number", lambda: r.select(42, QUESTION), InputError, r"cannot read a context of type int"),
        ("api-context-surrogate", lambda: r.select("text \ud800 more", QUESTION), InputError, r"lone surrogate .* at character 5"),
        ("api-question-surrogate", lambda: r.select(TEXT, "what \udcff?"), InputError, r"question holds a lone surrogate"),
        ("api-question-empty", lambda: r.select(TEXT, ""), InputError, r"question is empty"),
        ("api-question-not-text", lambda: r.select(TEXT, None), InputError, r"question is empty"),
        ("api-question-longer-than-window", lambda: r.select(TEXT, "why " * 600 + "?"), ContextTooLongError, r"shorten the question"),
        ("api-duplicate-document-ids", lambda: r.select([Document("a. " * 30, id="x"), Document("b. " * 30, id="x")], QUESTION),
         InputError, r"same id 'x'"),
        ("api-document-not-text", lambda: r.select([Document(b"raw", id="x")], QUESTION), InputError, r"document 0 is a bytes"),
        ("api-selection-not-a-selection", lambda: r.select(TEXT, QUESTION, selection=3), InputError, r"selection must be a Selection"),
        ("api-threshold-keeps-nothing", lambda: reader(tiny, tokenizer, signals=("certainty",), top_k=None, threshold=-100).answer(TEXT, QUESTION),
         InputError, r"nothing to answer from: threshold=-100 keeps no segment"),
        ("api-answer-max-new-tokens-0", lambda: r.answer(TEXT, QUESTION, max_new_tokens=0), InputError, r"max_new_tokens must be a positive"),
        ("api-file-changed-while-read", read_while_truncated, InputError, r"changed while it was read"),
        ("api-reader-unknown-option", lambda: LongContextReader(tiny, tokenizer, top_n=3), TypeError, r"top_n"),
        ("api-reader-bad-extend", lambda: reader(tiny, tokenizer, extend="yes"), InputError, r"extend must be"),
        ("api-reader-answer-focus-0", lambda: reader(tiny, tokenizer, answer_focus=0), InputError, r"answer_focus is how many .* got 0"),
        ("api-two-selection-rules", lambda: Selection(top_k=2, token_budget=100), InputError, r"exactly one of"),
        ("api-threshold-not-finite", lambda: Selection(threshold=math.inf), InputError, r"finite number"),
        ("api-unknown-metric", lambda: reader(tiny, tokenizer, metric="nope"), InputError, r"unknown metric 'nope'"),
        ("api-unknown-template", lambda: reader(tiny, tokenizer, template="nope"), InputError, r"unknown template 'nope'"),
        ("api-metric-returns-scalar", lambda: CertaintyScorer(tiny, tokenizer, metric=scalar).score(["a.", "b."], QUESTION),
         InputError, r"must return a tensor of shape \(2,\)"),
        ("api-metric-returns-nan", lambda: CertaintyScorer(tiny, tokenizer, metric=nan).score(["a.", "b."], QUESTION),
         InputError, r"not a finite number"),
        ("api-metric-name-taken", lambda: register_metric("weighted_nll")(scalar), InputError, r"already registered.*replace=True"),
        ("api-score-non-strings", lambda: scorer.score([1, 2], QUESTION), InputError, r"passage 0 must be a string, got int"),
        ("api-score-one-string", lambda: scorer.score("one passage", QUESTION), InputError, r"pass a list of segments"),
        ("api-generate-empty", lambda: lm.generate(""), InputError, r"prompt is empty"),
        ("api-generate-max-new-tokens-0", lambda: lm.generate("Hi", max_new_tokens=0), InputError, r"max_new_tokens must be a positive"),
        ("api-generate-past-window", lambda: lm.generate("word " * 600), ContextTooLongError, r"SelfExtend"),
        ("api-stop-not-strings", lambda: lm.generate("Hi", stop=[""]), InputError, r"non-empty strings"),
        ("api-chat-not-a-list", lambda: lm.chat("Hi"), InputError, r"list of at least one message"),
        ("api-chat-message-without-role", lambda: lm.chat([{"content": "Hi"}]), InputError, r"message 0 must be a dict with 'role'"),
        ("api-rerank-top-n-0", lambda: CertaintyReranker(tiny, tokenizer, top_n=0), InputError, r"top_n must be a positive integer"),
        ("api-rerank-passage-not-text", lambda: CertaintyReranker(tiny, tokenizer, signals=("certainty",)).rerank([b"x"], QUESTION),
         InputError, r"passage 0 is a bytes"),
        ("api-model-not-a-name", lambda: load_model(123), ModelLoadError, r"must be a path or a hub id"),
        ("api-model-name-empty", lambda: load_model(""), ModelLoadError, r"model name is empty"),
        ("api-file-tool-outside-root", lambda: access.read_text(outside), FileAccessError, r"outside the folders"),
        ("api-file-tool-hard-link", lambda: access.read_text("innocent.txt"), FileAccessError, r"hard links"),
        ("api-file-tool-too-big", lambda: access.read_text("big.txt"), FileAccessError, r"over this tool's limit"),
        ("api-file-tool-nul-in-path", lambda: access.read_text("a\x00b"), FileAccessError, r"NUL character"),
        ("api-file-tool-empty-root", lambda: FileAccess([root, ""]), InputError, r"a root is an empty string"),
        ("api-journal-directory", lambda: r.select(TEXT, QUESTION, checkpoint=tmp_path), InputError, r"is a directory"),
        ("api-journal-empty-path", lambda: r.select(TEXT, QUESTION, checkpoint=""), InputError, r"checkpoint path is empty"),
        ("api-journal-dangling-link", lambda: r.select(TEXT, QUESTION, checkpoint=dangling), InputError, r"symbolic link"),
        ("api-journal-held-by-another-run", write_beside_another_run, InputError, r"another run is writing it now"),
        ("api-reader-unknown-fusion", lambda: reader(tiny, tokenizer, fusion="max"), InputError, r"unknown fusion 'max'"),
        ("api-reader-bad-hops", lambda: reader(tiny, tokenizer, hops=-1), InputError, r"hops must be a whole number"),
        ("api-max-new-tokens-past-reach", lambda: reader(tiny, tokenizer, max_new_tokens=10**6), InputError, r"whole reach"),
    ]


API_IDS = [
    "api-context-bytes", "api-context-number", "api-context-surrogate", "api-question-surrogate", "api-question-empty",
    "api-question-not-text", "api-question-longer-than-window", "api-duplicate-document-ids", "api-document-not-text",
    "api-selection-not-a-selection", "api-threshold-keeps-nothing", "api-answer-max-new-tokens-0",
    "api-file-changed-while-read", "api-reader-unknown-option", "api-reader-bad-extend", "api-reader-answer-focus-0", "api-two-selection-rules",
    "api-threshold-not-finite", "api-unknown-metric", "api-unknown-template", "api-metric-returns-scalar",
    "api-metric-returns-nan", "api-metric-name-taken", "api-score-non-strings", "api-score-one-string",
    "api-generate-empty", "api-generate-max-new-tokens-0", "api-generate-past-window", "api-stop-not-strings",
    "api-chat-not-a-list", "api-chat-message-without-role", "api-rerank-top-n-0", "api-rerank-passage-not-text",
    "api-model-not-a-name", "api-model-name-empty", "api-file-tool-outside-root", "api-file-tool-hard-link",
    "api-file-tool-too-big", "api-file-tool-nul-in-path", "api-file-tool-empty-root", "api-journal-directory",
    "api-journal-empty-path", "api-journal-dangling-link", "api-journal-held-by-another-run", "api-reader-unknown-fusion",
    "api-reader-bad-hops", "api-max-new-tokens-past-reach",
]


def _case(cases: list, ids: list[str], case: str) -> tuple:
    """(call, error, message) of ``case``, after checking that the table holds exactly ``ids``."""
    table = {c[0]: c[1:] for c in cases}
    assert set(table) == set(ids)
    return table[case]


@pytest.mark.parametrize("case", API_IDS)
def test_api(case, tiny, tokenizer, tmp_path):
    call, error, message = _case(api_cases(tiny, tokenizer, tmp_path), API_IDS, case)
    with pytest.raises(error) as info:
        call()
    if error is not TypeError:  # a misspelt keyword stays Python's own TypeError, which names it
        assert isinstance(info.value, EntropyRetrieverError)
    assert re.search(message, str(info.value)), str(info.value)


# --------------------------------------------------------------------------- framework tools
def framework_cases(tiny, tokenizer, tmp_path):
    from langchain_core.tools import ToolException

    from langchain_entropy_retriever import CertaintyCompressor, ChatEntropyRetriever, LongFileTool
    from llama_index.llms.entropy_retriever import LongContextLLM
    from llama_index.postprocessor.entropy_retriever import CertaintyRerank
    from llama_index.tools.entropy_retriever import long_file_tool

    root = tmp_path / "shared"
    root.mkdir()
    (root / "report.txt").write_text(TEXT)
    (root / "image.bin").write_bytes(b"\x00\x01binary")
    r = reader(tiny, tokenizer)
    li_tool = long_file_tool(roots=[root], reader=r)
    lc_tool = LongFileTool(roots=[root], reader=r)
    lm = LongContextLM(tiny, tokenizer, max_new_tokens=4)

    def li(path, question):  # the LlamaIndex tool returns a refusal to the agent as its output
        return str(li_tool.call(path=path, question=question).content)

    def lc(path, question):  # LangChain's tool too (handle_tool_error: the ToolException's message)
        return lc_tool.run({"path": path, "question": question})

    return [
        ("llamaindex-tool-outside-root", lambda: li("../../etc/passwd", QUESTION), str, r"^Error: access to .* is not allowed"),
        ("llamaindex-tool-binary-file", lambda: li("image.bin", QUESTION), str, r"^Error: .*looks binary"),
        ("llamaindex-tool-no-question", lambda: li("report.txt", " "), str, r"^Error: no question given"),
        ("llamaindex-rerank-top-n-0", lambda: CertaintyRerank(top_n=0, model=tiny, tokenizer=tokenizer), InputError, r"top_n must be"),
        ("llamaindex-llm-max-tokens-0", lambda: LongContextLLM(lm=lm).complete("Hi", max_tokens=0), InputError, r"max_new_tokens must be"),
        ("langchain-tool-outside-root", lambda: lc("/etc/passwd", QUESTION), str, r"^access to .* is not allowed"),
        ("langchain-tool-missing-file", lambda: lc("nope.txt", QUESTION), str, r"^'nope.txt': no such file"),
        ("langchain-tool-raises-when-asked", lambda: LongFileTool(roots=[root], reader=r, handle_tool_error=False).run(
            {"path": "/etc/passwd", "question": QUESTION}), ToolException, r"access to .* is not allowed"),
        ("langchain-compressor-top-n-0", lambda: CertaintyCompressor(top_n=0, model=tiny, tokenizer=tokenizer), InputError, r"top_n must be"),
        ("langchain-chat-temperature", lambda: ChatEntropyRetriever(lm=lm, temperature=0.7), InputError, r"temperature=0"),
        ("langchain-chat-empty-stop", lambda: ChatEntropyRetriever(lm=lm).invoke("Hi", stop=[""]), InputError, r"non-empty strings"),
        ("llamaindex-tool-question-too-long", lambda: li("report.txt", "why " * 600 + "?"), str, r"^Error: .*shorten the question"),
        ("langchain-tool-roots-one-string", lambda: LongFileTool(roots=str(root), reader=r).run(
            {"path": "/etc/hostname", "question": QUESTION}), str, r"^access to .* is not allowed"),
        ("langchain-tool-max-bytes-0", lambda: LongFileTool(roots=[root], reader=r, max_bytes=0), InputError,
         r"max_bytes must be a positive integer"),
    ]


FRAMEWORK_IDS = [
    "llamaindex-tool-outside-root", "llamaindex-tool-binary-file", "llamaindex-tool-no-question", "llamaindex-rerank-top-n-0",
    "llamaindex-llm-max-tokens-0", "langchain-tool-outside-root", "langchain-tool-missing-file",
    "langchain-tool-raises-when-asked", "langchain-compressor-top-n-0",
    "langchain-chat-temperature", "langchain-chat-empty-stop", "llamaindex-tool-question-too-long",
    "langchain-tool-roots-one-string", "langchain-tool-max-bytes-0",
]


@pytest.mark.parametrize("case", FRAMEWORK_IDS)
def test_framework_tools(case, tiny, tokenizer, tmp_path):
    call, error, message = _case(framework_cases(tiny, tokenizer, tmp_path), FRAMEWORK_IDS, case)
    if error is str:  # a refusal handed to the agent as the tool's output
        out = call()
    else:
        with pytest.raises(error) as info:
            call()
        out = str(info.value)
    assert re.search(message, out), out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out


def test_the_matrix_is_documented_and_large_enough():
    """docs/bad-inputs.md lists every class, and there are at least 40 across the three surfaces."""
    elsewhere = [  # cases tested by their own functions (here, in test_cli.py and in test_streaming.py)
        "cli-journal-of-another-run", "cli-stdin-under-torchrun", "cli-stdout-full", "cli-stdin-closed",
        "cli-stdin-binary", "cli-interrupted", "cli-torchrun-rank-fails", "api-journal-disk-full",
    ]
    ids = [c[0] for c in CLI_CASES] + elsewhere + API_IDS + FRAMEWORK_IDS
    assert len(set(ids)) == len(ids) >= 40
    documented = set(re.findall(r"`((?:cli|api|llamaindex|langchain)-[a-z0-9-]+)`", DOC_FILE.read_text()))
    assert set(ids) - {"cli-missing-npu"} <= documented, sorted(set(ids) - documented)
    assert documented <= set(ids) | {"cli-missing-npu"}, sorted(documented - set(ids))
