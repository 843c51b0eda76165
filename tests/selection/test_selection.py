from __future__ import annotations

import pytest

from entropy_retriever import InputError
from entropy_retriever.segments import Segment
from entropy_retriever.selection import GAP, Selection, build_spans, join_spans, token_counter

TEXT = "".join(f"[{i:02d} some words here] " for i in range(10))


def segs(spans, source=""):
    return [Segment(i, source, a, b, TEXT[a:b], (b - a) // 4) for i, (a, b) in enumerate(spans)]


TILED = segs([(i * 21, (i + 1) * 21) for i in range(10)])
by_chars = lambda text: len(text) // 4  # noqa: E731


def select_key_context(segments, scores, selection, *, count):
    """What the reader does after scoring, on a list: choose, then splice in document order."""
    kept = selection.choose(segments, scores, count)
    order = sorted(kept)
    spans = build_spans([segments[i] for i in order], [scores[i] for i in order], [1.0] * len(order))
    return kept, spans, join_spans(spans)


def test_top_k_keeps_lowest_scores_in_document_order_with_gaps_marked():
    scores = [5, 1, 9, 9, 0.5, 9, 9, 9, 2, 9]
    kept, spans, text = select_key_context(TILED, scores, Selection(top_k=3), count=by_chars)
    assert [s.segment_indices for s in spans] == [(1,), (4,), (8,)] and kept == {1, 4, 8}
    assert text == GAP.join(TILED[i].text for i in (1, 4, 8))
    assert [s.scores for s in spans] == [(1,), (0.5,), (2,)]


def test_adjacent_and_overlapping_spans_merge():
    scores = [0, 0, 9, 9, 9, 9, 9, 9, 9, 9]
    _, spans, _ = select_key_context(TILED, scores, Selection(top_k=2), count=by_chars)
    assert len(spans) == 1 and spans[0].start == 0 and spans[0].end == 42
    overlapping = segs([(0, 30), (20, 50), (45, 80)])
    _, spans, _ = select_key_context(overlapping, [0, 0, 9], Selection(top_k=2), count=by_chars)
    assert [(s.start, s.end) for s in spans] == [(0, 50)]
    assert spans[0].text == TEXT[0:50]


def test_ties_break_by_position():
    _, spans, _ = select_key_context(TILED, [1.0] * 10, Selection(top_k=2), count=by_chars)
    assert spans[0].segment_indices == (0, 1)


def test_threshold_and_budget():
    scores = [float(i) for i in range(10)]
    _, spans, _ = select_key_context(TILED, scores, Selection(threshold=2.0), count=by_chars)
    assert spans[0].segment_indices == (0, 1, 2)
    budget = 3 * by_chars(TILED[0].text) + 2 * by_chars(GAP)
    kept, spans, _ = select_key_context(TILED, scores[::-1], Selection(token_budget=budget), count=by_chars)
    assert len(kept) == 3 and spans[0].segment_indices == (7, 8, 9)
    # a ranking instead of scores keeps the same, best first, and a threshold needs scores
    assert Selection(token_budget=budget).choose_order([by_chars(s.text) for s in TILED], [9, 8, 7, 0], by_chars(GAP)) == kept
    with pytest.raises(InputError, match="a threshold compares scores"):
        Selection(threshold=1.0).choose_order(None, [0, 1], 0)


def test_budget_smaller_than_every_segment_is_an_error():
    with pytest.raises(InputError, match="smaller than every segment"):
        select_key_context(TILED, [0] * 10, Selection(token_budget=2), count=by_chars)


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
