"""Hardening (docs/bad-inputs.md has the bad-input matrix): quiet output, stop strings that stop
generation, identical results under 32 concurrent callers, bounded work on unbroken text,
evidence that shows its lines, and the answer prompt's size."""

from __future__ import annotations

import asyncio
import json
import resource
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from entropy_retriever import CertaintyReranker, LongContextLM, LongContextReader, Passage, SelfExtend
from entropy_retriever.cli import main
from entropy_retriever.segments import Segmenter

LOG = "".join(
    f"Entry {i}. The harbour log notes calm water, {i % 7} boats and a crew of {i % 5 + 2}.\n"
    + ("The lighthouse keeper is named Ortega.\n" if i == 41 else "")
    for i in range(90)
)
QUESTIONS = [f"How many boats were there on day {i}?" for i in range(8)] + [
    "Who keeps the lighthouse?", "What was the water like?", "How big was the crew?", "Which entry mentions Ortega?",
]


# ------------------------------------------------------------------------------ quiet output
@pytest.fixture()
def fresh_warnings():
    """transformers says some things once per process: forget that they were said, so that a test
    here sees them even when an earlier test triggered them first."""
    import logging

    import transformers  # noqa: F401  (adds Logger.warning_once)

    logging.Logger.warning_once.cache_clear()
    yield


def test_a_selfextend_ask_writes_nothing_to_stderr(tiny_folder, tmp_path):
    """Model loading, scoring and SelfExtend generation past the window print nothing unasked.

    In a fresh process, as a user runs it: transformers' handlers, bars and once-only warnings
    are all in their first-use state there."""
    import subprocess
    import sys

    doc = tmp_path / "log.txt"
    doc.write_text(LOG * 3, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "entropy_retriever", "ask", str(doc), "Who keeps the lighthouse?", "--model", str(tiny_folder),
         "--device", "cpu", "--segment-tokens", "64", "--budget", "700", "--signals", "certainty", "bm25",
         "--max-new-tokens", "4", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["prompt_tokens"] > 512  # past the tiny model's 512-token window: SelfExtend read it
    assert run.stderr == ""


# ------------------------------------------------------------------------------ stop strings
def _stop_after(lm, prompt: str, k: int) -> str:
    """A stop string completed by the k-th generated token (the text tokens k-1 and k add)."""
    ids = lm.encode(prompt)
    with torch.inference_mode():
        out = lm.model.generate(input_ids=torch.tensor([ids]), max_new_tokens=k + 1, do_sample=False, pad_token_id=0)
    new = out[0, len(ids):]
    before = lm.tokenizer.decode(new[: k - 2], skip_special_tokens=True)
    upto = lm.tokenizer.decode(new[:k], skip_special_tokens=True)
    stop = upto[len(before):]
    assert stop.strip() and stop not in before
    return stop


def test_a_stop_string_ends_generation_at_once(tiny, tokenizer):
    """Forward passes are counted: after the token that completes a stop string, none is run."""
    lm = LongContextLM(tiny, tokenizer, max_new_tokens=40)
    prompt = "The weather report for the harbour says"
    stop = _stop_after(lm, prompt, 12)
    passes = []
    hook = tiny.register_forward_hook(lambda *args: passes.append(1))
    try:
        plain = lm.generate(prompt)
        n_plain = len(passes)
        passes.clear()
        stopped = lm.generate(prompt, stop=[stop, "never-appears-anywhere"])
        n_stopped = len(passes)
        passes.clear()
        streamed = "".join(lm.stream(prompt, stop=stop))
        n_streamed = len(passes)
    finally:
        hook.remove()
    assert n_plain == 40 and plain.new_tokens == 40
    assert stopped.new_tokens <= 12 and n_stopped <= 12  # stopped where the stop string was completed
    assert stop not in stopped.text and plain.text.startswith(stopped.text.strip())
    assert streamed.strip() == stopped.text and n_streamed <= 12


def test_stop_strings_stop_both_frameworks_chat_models(tiny, tokenizer):
    from langchain_entropy_retriever import ChatEntropyRetriever
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.llms.entropy_retriever import LongContextLLM

    lm = LongContextLM(tiny, tokenizer, max_new_tokens=30)
    messages = [{"role": "user", "content": "Tell me about the harbour."}]
    ids = lm.chat_prompt(messages)
    with torch.inference_mode():
        out = tiny.generate(input_ids=torch.tensor([ids]), max_new_tokens=30, do_sample=False, pad_token_id=0)
    new = out[0, len(ids):]
    stop = tokenizer.decode(new[:10], skip_special_tokens=True)[len(tokenizer.decode(new[:8], skip_special_tokens=True)):]
    assert stop.strip()
    passes = []
    hook = tiny.register_forward_hook(lambda *args: passes.append(1))
    try:
        lc = ChatEntropyRetriever(lm=lm, max_tokens=30).invoke("Tell me about the harbour.", stop=[stop])
        n_lc = len(passes)
        passes.clear()
        li = LongContextLLM(lm=lm, max_new_tokens=30).chat([ChatMessage(role="user", content="Tell me about the harbour.")], stop=[stop])
        n_li = len(passes)
        passes.clear()
        lc_stream = "".join(c.content for c in ChatEntropyRetriever(lm=lm, max_tokens=30).stream("Tell me about the harbour.", stop=[stop]))
        n_lc_stream = len(passes)
    finally:
        hook.remove()
    assert n_lc <= 10 and n_li <= 10 and n_lc_stream <= 10
    assert stop not in lc.content and stop not in li.message.content and stop not in lc_stream
    assert lc.content == li.message.content == lc_stream.strip()


# ------------------------------------------------------------------------------ concurrency
def test_32_concurrent_callers_on_one_reader_and_one_reranker_equal_sequential_calls(tiny, tokenizer):
    reader = LongContextReader(tiny, tokenizer, signals=("certainty", "bm25"), segment_tokens=48, top_k=2, progress=False)
    reranker = CertaintyReranker(tiny, tokenizer, signals=("certainty", "bm25"), top_n=3)
    passages = [Passage(line, "log", i) for i, line in enumerate(LOG.splitlines()[:12])]
    text = "\n".join(LOG.splitlines()[30:60])
    calls = [("select", QUESTIONS[i % len(QUESTIONS)]) if i % 2 else ("rerank", QUESTIONS[i % len(QUESTIONS)]) for i in range(32)]

    def run(call):
        kind, question = call
        if kind == "select":
            key = reader.select(text, question)
            return [(s.start, s.end, s.text) for s in key.spans], [s.score for s in key.segments]
        return [(p.index, p.score) for p in reranker.rerank(passages, question)]

    sequential = [run(call) for call in calls]
    assert len({repr(r) for r in sequential}) > 4  # the calls differ, so a mix-up would show

    with ThreadPoolExecutor(max_workers=32) as pool:
        threaded = list(pool.map(run, calls))
    assert threaded == sequential

    async def gathered():
        return await asyncio.gather(*(asyncio.to_thread(run, call) for call in calls))

    assert asyncio.run(gathered()) == sequential


# ------------------------------------------------------------------------------ memory
def test_unbroken_text_is_cut_into_bounded_units_with_exact_spans(tokenizer, tmp_path, monkeypatch):
    import entropy_retriever.segments as segments

    monkeypatch.setattr(segments, "_MAX_UNIT_CHARS", 5000)
    monkeypatch.setattr(segments, "_READ_BYTES", 3000)
    words = ["alpha", "beta", "gamma", "delta,", "42", "epsilon"]
    line = " ".join(words[(i * 7) % 6] for i in range(12000))  # 70 kB and no sentence or line end
    path = tmp_path / "line.txt"
    path.write_text(line, encoding="utf-8")
    seen = []
    real = Segmenter._split_long

    def spy(self, start, piece):
        seen.append(len(piece))
        return real(self, start, piece)

    monkeypatch.setattr(Segmenter, "_split_long", spy)
    for source in (line, path):
        seen.clear()
        segs = list(Segmenter(tokenizer, 64).split(source))
        assert "".join(s.text for s in segs) == line
        assert all(a.end == b.start for a, b in zip(segs, segs[1:])) and segs[-1].end == len(line)
        assert max(seen) <= 5000  # nothing longer than the bound was ever tokenised in one piece
        assert max(s.n_tokens for s in segs) <= 64


@pytest.mark.slow
def test_a_four_megabyte_line_stays_in_bounded_memory(tokenizer, tmp_path):
    """The issue's case: a 4 MB line with no sentence end (it took +540 MB before the bound)."""
    words = ["alpha", "beta", "gamma", "delta,", "42", "epsilon"]
    path = tmp_path / "line.txt"
    path.write_text(" ".join(words[(i * 7) % 6] for i in range(700_000)), encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = sum(1 for _ in Segmenter(tokenizer, 512).split(path))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert n > 1000
    assert grown_mb < 150, grown_mb


# ------------------------------------------------------------------------------ evidence
def test_kept_spans_carry_line_numbers_and_answers_quote_their_support(tiny, tokenizer, tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(LOG, encoding="utf-8")
    reader = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=2, progress=False)
    for context in (LOG, path):
        key = reader.select(context, "Who keeps the lighthouse? Ortega?")
        lines = LOG.split("\n")
        for span in key.spans:
            assert span.line_start >= 1 and span.line_end >= span.line_start
            assert LOG.count("\n", 0, span.start) + 1 == span.line_start
            first = span.text.strip("\n").split("\n")[0]
            assert first in lines[span.line_start - 1 + (len(span.text) - len(span.text.lstrip("\n")))]
    from entropy_retriever.reader import Answer

    answer = Answer("The keeper is Ortega.", key)
    quotes = answer.quotes()
    assert quotes and "Ortega" in quotes[0].text and "ortega" in quotes[0].shared
    assert lines[quotes[0].line - 1].strip() == quotes[0].text
    assert Answer("Zanzibar", key).quotes() == []  # nothing in the key context backs it


def test_ask_prints_lines_snippets_and_what_the_score_means(tiny_folder, tmp_path, capsys):
    doc = tmp_path / "log.txt"
    doc.write_text(LOG, encoding="utf-8")
    rc = main(["ask", str(doc), "Who keeps the lighthouse?", "--model", str(tiny_folder), "--device", "cpu",
               "--segment-tokens", "48", "--top-k", "2", "--signals", "bm25", "--max-new-tokens", "3", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "a lower score is more relevant" in out
    assert f"{doc}: line" in out and "characters" in out
    assert "Ortega" in out  # the snippet of the kept span


def test_a_long_question_goes_into_the_answer_prompt_once(tiny, tokenizer):
    reader = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=1, progress=False,
                               max_new_tokens=2)
    short = reader.answer(LOG, "Who keeps the lighthouse?")
    question = "Who keeps the lighthouse? " + " ".join(f"Consider detail {i} of the harbour." for i in range(25))
    long = reader.answer(LOG, question)
    n_question = len(tokenizer(question)["input_ids"])
    twice = len(reader.answer_lm.chat_prompt(reader.answer_messages(long.key_context, question)))
    assert twice + 2 > 512  # twice would not fit the tiny model's window
    assert long.prompt_tokens < twice and long.prompt_tokens <= twice - n_question + 12
    assert short.prompt_tokens == len(reader.answer_lm.chat_prompt(reader.answer_messages(short.key_context, "Who keeps the lighthouse?")))


def test_loading_a_model_prints_no_progress_bar(tiny_folder, capfd):
    from entropy_retriever import load_model

    load_model(tiny_folder, device="cpu", shared=False)
    assert capfd.readouterr().err == ""


def test_selfextend_generation_past_the_window_warns_nothing(tiny, tokenizer, fresh_warnings):
    """transformers' "friendly reminder" about passing max_position_embeddings is dropped."""
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logging.getLogger("transformers").addHandler(handler)
    try:
        lm = LongContextLM(tiny, tokenizer, SelfExtend(group_size=4, window=128), max_new_tokens=4)
        assert lm.generate("word " * 700).prompt_tokens > 512
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert not [m for m in records if "friendly reminder" in m], records


def test_the_reading_progress_bar_has_a_total_and_time_left(tiny, tokenizer, capsys):
    reader = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=1, progress=True)
    reader.select(LOG, "Who keeps the lighthouse?")
    err = capsys.readouterr().err
    total = f"{len(LOG.encode()) / 1000:.2f}k"
    assert f"/{total} [" in err and "<" in err and "B/s" in err  # done of the total, the time left, the rate
    quiet = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=1)  # not a terminal here
    quiet.select(LOG, "Who keeps the lighthouse?")
    assert capsys.readouterr().err == ""


def test_standard_input_is_read_like_a_file_and_named_stdin(tiny_folder):
    """`select -` spools standard input (bounded memory) and reports its spans as <stdin>'s."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "entropy_retriever", "select", "-", "Who keeps the lighthouse?", "--model", str(tiny_folder),
         "--device", "cpu", "--segment-tokens", "48", "--top-k", "2", "--signals", "bm25", "--json"],
        input=LOG, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    key = json.loads(run.stdout)
    assert key["spans"] and all(span["source"] == "<stdin>" for span in key["spans"])
    for span in key["spans"]:
        assert LOG[span["start"]:span["end"]] == span["text"]
        assert LOG.count("\n", 0, span["start"]) + 1 == span["line_start"]
    assert "Ortega" in key["text"]
