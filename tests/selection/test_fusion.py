"""The fusions (z-score with its agreement and standout guards, reciprocal rank) and our BM25."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_standout_threshold_is_grubbs_critical_value():
    # one-sided 5% critical values of Grubbs' statistic (ASTM E178, table 1), which divides by the
    # sample standard deviation; standout_threshold is on the population one, as standardise
    for n, g in ((3, 1.153), (10, 2.176), (20, 2.557), (30, 2.745), (50, 2.956), (100, 3.207)):
        assert fusion.standout_threshold(n) * np.sqrt((n - 1) / n) == pytest.approx(g, abs=3e-3)
    # Student's t, upper quantiles from the textbook tables
    for p, df, t in ((0.025, 1, 12.706), (0.025, 2, 4.303), (0.005, 10, 3.169), (0.05, 30, 1.697)):
        assert fusion.t_upper_quantile(p, df) == pytest.approx(t, abs=1e-3)
    assert fusion.standout_threshold(9) < fusion.standout_threshold(41) < fusion.standout_threshold(1000)
    with pytest.raises(InputError, match="at least 3 items"):
        fusion.standout_threshold(2)


def standout_case(n: int = 43, at: int = 5, z: float = 3.5) -> dict[str, np.ndarray]:
    """``n`` segments: the certainty singles out the one ``at`` (``z`` standard deviations ahead),
    the embedder ranks it among its last, BM25 sees no question term anywhere."""
    rng = np.random.default_rng(0)
    certainty = rng.normal(size=n)
    certainty[at] = 0.0
    certainty = (certainty - certainty.mean()) / certainty.std()
    others = np.delete(np.arange(n), at)
    certainty[at] = certainty[others].mean() - z * certainty[others].std()  # then standardised again by the fusion
    dense = rng.normal(size=n)
    dense[at] = np.sort(dense)[-3]
    return {"certainty": certainty, "bm25": np.zeros(n), "dense": dense}


def test_what_the_model_alone_singles_out_is_kept_first():
    case = standout_case()
    assert -fusion.standardise(case["certainty"])[5] > fusion.standout_threshold(43)
    without = ZScore(standout=()).fuse(case)
    assert np.argsort(without, kind="stable").tolist().index(5) >= 3  # outvoted by the embedder
    assert int(np.argmin(ZScore().fuse(case))) == 5 and fusion.outlier(case["certainty"]) == 5
    # a best that chance explains among 43 segments is no standout: the fused order decides
    weak = standout_case(z=2.0)
    assert fusion.outlier(weak["certainty"]) is None
    assert ZScore().fuse(weak).tolist() == ZScore(standout=()).fuse(weak).tolist()
    # only the signals named: the embedder's own standout is not guarded by default
    swapped = {"certainty": case["dense"], "bm25": case["bm25"], "dense": case["certainty"]}
    assert int(np.argmin(ZScore().fuse(swapped))) != 5 and int(np.argmin(ZScore(standout=("dense",)).fuse(swapped))) == 5
    # among 9 segments the bar is 2.24 standard deviations: a lone best far ahead passes, a spread-out one does not
    assert fusion.outlier(np.array([0.0] * 8 + [-1.0])) == 8  # 2.83 standard deviations ahead
    assert fusion.outlier(np.array([0.0, 0.0, 1.0, -1.0, 0.5, -0.5, 0.2, -0.2, -1.2])) is None
    # a configured fusion object travels through the one configuration the product uses
    from entropy_retriever.config import SelectionConfig
    configured = make_fusion(SelectionConfig(fusion=ZScore(standout=())).fusion)
    assert configured.standout == () and int(np.argmin(configured.fuse(case))) != 5
    with pytest.raises(InputError, match="alpha"):
        ZScore(alpha=1.5)
    with pytest.raises(InputError, match="sequence of signal names"):
        ZScore(standout="certainty")


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
