"""The fusions (z-score with its agreement guard, reciprocal rank) and our BM25."""

from __future__ import annotations

import pytest

import numpy as np

from entropy_retriever import fusion
from entropy_retriever.errors import InputError
from entropy_retriever.fusion import RRF, RRF_K, ZScore, make_fusion, rrf_scores
from entropy_retriever.signals import BM25, STOPWORDS


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


def test_relevance_is_one_for_the_best_item_and_keeps_the_order():
    fused = [0.3, 0.1, 0.2]
    rel = fusion.relevance(fused)
    assert rel == pytest.approx([(RRF_K + 1) / (RRF_K + 3), 1.0, (RRF_K + 1) / (RRF_K + 2)])


# The case that plain reciprocal rank fusion got wrong: the model's certainty and BM25 both rank
# segment 0 first, the dense signal (then blind to the second half of every segment) ranks it
# last of twelve, and the next three segments are close behind in every signal.
AGREED = {
    "certainty": [1.0] + [2.0 + 0.1 * i for i in range(11)],
    "bm25": [-9.0] + [-8.0 + 0.1 * i for i in range(11)],
    "dense": [-0.10] + [-0.50 + 0.01 * i for i in range(11)],
}


def test_what_two_signals_rank_first_is_kept_first():
    fused = ZScore().fuse(AGREED)
    assert int(np.argmin(fused)) == 0
    # plain RRF puts it fourth, outside three kept segments
    assert np.argsort(RRF().fuse(AGREED), kind="stable").tolist().index(0) == 3
    # a single signal's first place is no veto: the guard needs two
    lone = {"certainty": [1.0, 2.0, 3.0], "bm25": [0.0, -5.0, -4.0], "dense": [0.0, -0.5, -0.4]}
    assert int(np.argmin(ZScore().fuse(lone))) == 1


def test_a_signal_whose_best_score_is_shared_casts_no_vote():
    # BM25 with no question term in any segment scores every segment 0; its "first" would be
    # whichever comes first, and with the certainty's slight preference for segment 0 it used to
    # put segment 0 ahead of segment 1, which the dense signal ranks far ahead of every other
    scores = {"certainty": [1.0, 1.1, 1.2, 1.3], "bm25": [0.0, 0.0, 0.0, 0.0], "dense": [-0.2, -0.9, -0.2, -0.2]}
    assert int(np.argmin(ZScore().fuse(scores))) == 1
    assert int(np.argmin(ZScore(agree=False).fuse(scores))) == 1
    # a best score shared by two items is no vote either; a sole best still is
    assert fusion.sole_best(np.array([0.0, 0.0, 1.0])) is None and fusion.sole_best(np.array([1.0, 0.0, 0.0])) is None
    assert fusion.sole_best(np.array([2.0, 0.5, 1.0])) == 1 and fusion.sole_best(np.array([np.nan, 1.0])) is None
    tied = {"certainty": [1.0, 1.1, 1.2, 1.3], "bm25": [-2.0, -2.0, 0.0, 0.0], "dense": [-0.2, -0.9, -0.2, -0.2]}
    assert int(np.argmin(ZScore().fuse(tied))) == 1
    agreed = {"certainty": [1.0, 1.1, 1.2, 1.3], "bm25": [-2.0, -1.0, 0.0, 0.0], "dense": [-0.2, -0.9, -0.2, -0.2]}
    assert int(np.argmin(ZScore().fuse(agreed))) == 0


def test_zscore_arithmetic_weights_and_constant_signals():
    scores = {"a": [1.0, 2.0, 3.0], "b": [5.0, 5.0, 5.0]}
    z = (np.array([1.0, 2.0, 3.0]) - 2.0) / np.std([1.0, 2.0, 3.0])
    assert ZScore({"a": 1.0, "b": 1.0}, agree=False).fuse(scores) == pytest.approx(z / 2)
    assert ZScore({"a": 3.0, "b": 1.0}, agree=False).fuse(scores) == pytest.approx(3 * z / 4)
    # one signal: its own scores, unchanged, whatever the fusion
    assert ZScore().fuse({"certainty": [2.0, 1.0]}).tolist() == [2.0, 1.0]
    assert RRF().fuse({"certainty": [2.0, 1.0]}).tolist() == [2.0, 1.0]
    with pytest.raises(InputError, match="same items"):
        ZScore().fuse({"a": [1.0], "b": [1.0, 2.0]})
    with pytest.raises(InputError, match="non-negative"):
        ZScore({"a": -1.0})


def test_fusions_are_chosen_by_name():
    assert isinstance(make_fusion("zscore"), ZScore) and isinstance(make_fusion("rrf"), RRF)
    with pytest.raises(InputError, match="unknown fusion 'max'.*zscore"):
        make_fusion("max")
