"""The XL3M pipeline on the real embedded model."""

from __future__ import annotations

import pytest

from entropy_retriever import ContextTooLongError, InputError, LongContextLM, LongContextReader
from entropy_retriever.demo import make_demo_document
from entropy_retriever.passkey import make_passkey, passkey_correct


@pytest.fixture(scope="module")
def reader(embedded):
    return LongContextReader(*embedded, progress=False)


def test_answers_a_needle_beyond_the_window(reader, tokenizer):
    doc = make_demo_document(tokenizer, n_tokens=10_000, depth=0.7)
    assert doc.n_tokens > 8192  # longer than SmolLM2's window
    answer = reader.answer(doc.text, doc.question)
    assert doc.expected in answer.key_context.text
    assert doc.expected in answer.text
    key = answer.key_context
    assert key.n_tokens <= 1536 and key.meta["n_segments"] == len(key.segments)
    best = min(key.segments, key=lambda s: s.score)
    assert doc.expected in doc.text[best.start:best.end]


def test_select_keeps_the_passkey_in_document_order(reader, tokenizer):
    sample = make_passkey(tokenizer, 6000, depth=0.4, seed=3)
    key = reader.select(sample.context, "What is the pass key?")
    assert sample.key in key.text
    starts = [s.start for s in key.spans]
    assert starts == sorted(starts)


def test_a_key_context_too_long_for_the_window_is_a_clear_error(embedded):
    lm = LongContextLM(*embedded)
    with pytest.raises(ContextTooLongError, match="SelfExtend"):
        lm.generate("word " * 9000, max_new_tokens=4)


def test_bad_input_is_refused_before_any_work(reader):
    with pytest.raises(InputError, match="question is empty"):
        reader.answer("some text", " ")
    with pytest.raises(InputError, match="empty or only whitespace"):
        reader.select("\n\n ", "what?")
    with pytest.raises(InputError, match="cannot hold one segment"):
        LongContextReader(reader.scorer.model, reader.scorer.tokenizer, token_budget=100)
    with pytest.raises(InputError, match="pass the model's tokenizer"):
        LongContextReader(reader.scorer.model)


def test_passkey_answer_matches(reader, tokenizer):
    sample = make_passkey(tokenizer, 3000, depth=0.5, seed=11)
    answer = reader.answer(sample.context, "What is the pass key?")
    assert passkey_correct(answer.text, sample.key)


def test_the_default_selection_fuses_certainty_bm25_and_the_embedder(reader, tokenizer):
    from entropy_retriever.config import DEFAULT
    from entropy_retriever.fusion import make_fusion

    sample = make_passkey(tokenizer, 2500, depth=0.6, seed=5)
    key = reader.select(sample.context, "What is the pass key?")
    assert reader.signals == DEFAULT.signals and reader.config == DEFAULT
    assert key.metric == f"{DEFAULT.fusion}(certainty:{reader.scorer.metric_name}, bm25, dense)"
    assert sample.key in key.text
    signals = {name: [s.signals[name] for s in key.segments] for name in DEFAULT.signals}
    assert [s.score for s in key.segments] == pytest.approx(make_fusion(DEFAULT.fusion).fuse(signals).tolist())
    # each signal is the library's own, computed alone on the same segments
    texts = [sample.context[s.start:s.end] for s in key.segments]
    assert signals["certainty"] == pytest.approx(reader.scorer.score(texts, "What is the pass key?"), abs=1e-4)
    assert all(0 < span.relevance <= 1 for span in key.spans)


def test_one_signal_alone_and_the_threshold_rule(embedded, tokenizer):
    sample = make_passkey(tokenizer, 2500, depth=0.3, seed=6)
    alone = LongContextReader(*embedded, signals=("certainty",), top_k=1, progress=False)
    key = alone.select(sample.context, "What is the pass key?")
    assert key.metric == alone.scorer.metric_name and all(set(s.signals) == {"certainty"} for s in key.segments)
    assert [s.score for s in key.segments] == [s.signals["certainty"] for s in key.segments]
    keywords = LongContextReader(*embedded, signals=("bm25",), top_k=1, progress=False)
    assert "pass key" in keywords.select(sample.context, "What is the pass key?").text
    with pytest.raises(InputError, match="threshold compares certainty scores"):
        LongContextReader(*embedded, threshold=1.0)
    assert LongContextReader(*embedded, signals=("certainty",), threshold=1e9).selection.threshold == 1e9


HARBOUR_LOG = "".join(
    f"Entry {i}. The harbour log notes calm water, {i % 7} boats and a crew of {i % 5 + 2}.\n"
    + ("The lighthouse keeper is named Ortega.\n" if i == 41 else "")
    for i in range(90)
)


def test_a_long_question_goes_into_the_answer_prompt_once(tiny, tokenizer):
    reader = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=1, progress=False,
                               max_new_tokens=2, answer_focus=None)  # the key context whole: a long prompt
    short = reader.answer(HARBOUR_LOG, "Who keeps the lighthouse?")
    question = "Who keeps the lighthouse? " + " ".join(f"Consider detail {i} of the harbour." for i in range(25))
    long = reader.answer(HARBOUR_LOG, question)
    n_question = len(tokenizer(question)["input_ids"])
    twice = len(reader.answer_lm.chat_prompt(reader.answer_messages(long.key_context, question)))
    assert twice + 2 > 512  # twice would not fit the tiny model's window
    assert long.prompt_tokens < twice and long.prompt_tokens <= twice - n_question + 12
    assert short.prompt_tokens == len(reader.answer_lm.chat_prompt(reader.answer_messages(short.key_context, "Who keeps the lighthouse?")))


def test_the_reading_progress_bar_has_a_total_and_time_left(tiny, tokenizer, capsys):
    reader = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=1, progress=True)
    reader.select(HARBOUR_LOG, "Who keeps the lighthouse?")
    err = capsys.readouterr().err
    total = f"{len(HARBOUR_LOG.encode()) / 1000:.2f}k"
    assert f"/{total} [" in err and "<" in err and "B/s" in err  # done of the total, the time left, the rate
    quiet = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=1)  # not a terminal here
    quiet.select(HARBOUR_LOG, "Who keeps the lighthouse?")
    assert capsys.readouterr().err == ""
