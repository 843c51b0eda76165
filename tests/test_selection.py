from __future__ import annotations

import pytest

from entropy_retriever import InputError
from entropy_retriever.segments import Segment
from entropy_retriever.selection import GAP, Selection, select_key_context, splice, token_counter

TEXT = "".join(f"[{i:02d} some words here] " for i in range(10))


def segs(spans, source=""):
    return [Segment(i, source, a, b, TEXT[a:b], (b - a) // 4) for i, (a, b) in enumerate(spans)]


TILED = segs([(i * 21, (i + 1) * 21) for i in range(10)])
by_chars = lambda text: len(text) // 4  # noqa: E731


def test_top_k_keeps_lowest_scores_in_document_order_with_gaps_marked():
    scores = [5, 1, 9, 9, 0.5, 9, 9, 9, 2, 9]
    key = select_key_context(TILED, scores, Selection(top_k=3), count=by_chars, metric="m", question="q")
    assert [s.segment_indices for s in key.spans] == [(1,), (4,), (8,)]
    assert key.text == GAP.join(TILED[i].text for i in (1, 4, 8))
    assert [s.selected for s in key.segments] == [i in (1, 4, 8) for i in range(10)]
    assert [s.score for s in key.segments] == scores  # every score is kept


def test_adjacent_and_overlapping_spans_merge():
    scores = [0, 0, 9, 9, 9, 9, 9, 9, 9, 9]
    key = select_key_context(TILED, scores, Selection(top_k=2), count=by_chars, metric="m", question="q")
    assert len(key.spans) == 1 and key.spans[0].start == 0 and key.spans[0].end == 42
    overlapping = segs([(0, 30), (20, 50), (45, 80)])
    key = splice(overlapping, [0, 0, 9], {0, 1}, metric="m", question="q")
    assert [(s.start, s.end) for s in key.spans] == [(0, 50)]
    assert key.spans[0].text == TEXT[0:50]


def test_ties_break_by_position():
    key = select_key_context(TILED, [1.0] * 10, Selection(top_k=2), count=by_chars, metric="m", question="q")
    assert key.spans[0].segment_indices == (0, 1)


def test_threshold_and_budget():
    scores = [float(i) for i in range(10)]
    key = select_key_context(TILED, scores, Selection(threshold=2.0), count=by_chars, metric="m", question="q")
    assert key.spans[0].segment_indices == (0, 1, 2)
    budget = 3 * by_chars(TILED[0].text) + 2 * by_chars(GAP)
    key = select_key_context(TILED, scores[::-1], Selection(token_budget=budget), count=by_chars, metric="m", question="q")
    assert [s.selected for s in key.segments].count(True) == 3
    assert key.spans[0].segment_indices == (7, 8, 9)


def test_budget_smaller_than_every_segment_is_an_error():
    with pytest.raises(InputError, match="smaller than every segment"):
        select_key_context(TILED, [0] * 10, Selection(token_budget=2), count=by_chars, metric="m", question="q")


def test_exactly_one_selection_rule():
    for bad in [{}, {"top_k": 1, "token_budget": 10}, {"top_k": 0}, {"token_budget": -5}, {"threshold": float("nan")}]:
        with pytest.raises(InputError):
            Selection(**bad)


def test_budget_counted_in_another_tokenizer(tokenizer):
    hf = token_counter(tokenizer)
    tk = token_counter("cl100k_base")  # offline: tiktoken files from llama-index-core or TIKTOKEN_CACHE_DIR
    text = "Entropy measures the certainty of a distribution."
    assert hf(text) > 0 and tk(text) > 0
    assert tk("hello world") == 2
    with pytest.raises(InputError, match="unknown tiktoken encoding"):
        token_counter("no_such_encoding")
