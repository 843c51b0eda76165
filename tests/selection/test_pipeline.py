"""The ranking stages as the reader and the reranker run them, and a new signal added in one class."""

from __future__ import annotations

import numpy as np
import pytest

from entropy_retriever import CertaintyReranker, LongContextReader
from entropy_retriever.config import DEFAULT
from entropy_retriever.pipeline import Ranked, choose, rank
from entropy_retriever.selection import Selection
from entropy_retriever.signals import SIGNALS, Signal, register_signal

TEXT = "".join(f"Paragraph {i} talks about the weather in town number {i}. " * 6 + "\n\n" for i in range(12))


class Exclaims(Signal):
    """A toy signal: the more exclamation marks, the more relevant (per segment, free)."""

    name, kind, cost = "exclaims", "segment", "lexical"

    def score(self, state, segments):
        return [-float((s if isinstance(s, str) else s.text).count("!")) for s in segments]


@pytest.fixture
def exclaims():
    register_signal(Exclaims)  # the one line a new signal needs, beside its class
    yield Exclaims
    SIGNALS.pop("exclaims")


def test_a_new_signal_is_one_class_and_its_registration(tiny, tokenizer, exclaims):
    text = TEXT.replace("town number 7.", "town number 7!!!")
    reader = LongContextReader(tiny, tokenizer, signals=("exclaims",), segment_tokens=48, top_k=1, progress=False)
    key = reader.select(text, "Which town?")
    assert "town number 7!!!" in key.text and key.metric == f"{DEFAULT.fusion}(exclaims)"
    fused = LongContextReader(tiny, tokenizer, signals=("bm25", "exclaims"), segment_tokens=48, top_k=1, progress=False)
    assert "!!!" in fused.select(text, "Which town?").text
    reranker = CertaintyReranker(tiny, tokenizer, signals=("exclaims",), top_n=1)
    assert reranker.rerank(["calm.", "loud!!", "quiet."], "Which one?")[0].index == 1


def test_rank_and_choose_keep_the_budget_in_ranking_order():
    values = {"a": [3.0, 1.0, 2.0, 0.0], "b": [3.0, 1.0, 2.0, 0.5]}
    ranked = rank(values, "q", DEFAULT.but(signals=("bm25", "dense"), hops=0), lambda idx: ["x"] * len(idx))
    assert ranked.order.tolist() == [3, 1, 2, 0]
    assert ranked.relevance[3] == 1.0 and all(ranked.relevance[i] < 1 for i in (0, 1, 2))
    assert choose(Selection(token_budget=25), ranked, [10, 10, 10, 10], 2) == {3, 1}
    assert choose(Selection(top_k=1), ranked, None, 0) == {3}
    alone = Ranked(np.array([0.5, 0.1, 0.9]), np.array([1, 0, 2]))
    assert choose(Selection(threshold=0.5), alone, None, 0) == {0, 1}
