"""CertaintyReranker on the embedded model: keeps the needle, returns document order, is thread-safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from entropy_retriever import CertaintyReranker, InputError, Passage

FILLER = [
    "The museum opens at nine and closes at five. Visitors may buy tickets at the front desk or online.",
    "Rainfall in the valley was higher than usual this spring, and the river rose above its banks twice.",
    "The bakery on the corner sells rye bread, croissants and a cherry tart that sells out by noon.",
    "Our team meets every Tuesday to review the roadmap and to plan the next release of the app.",
    "The train to the coast leaves from platform four; the journey takes about two hours.",
]
NEEDLE = "The archive door code is 58213. Only the night guard and the head archivist know it."
QUESTION = "What is the archive door code?"


@pytest.fixture(scope="module")
def reranker(embedded):
    return CertaintyReranker(embedded.model, embedded.tokenizer, top_n=2)


def passages():
    # two documents; the needle sits in document "b" at position 2
    texts = FILLER[:3] + [NEEDLE] + FILLER[3:]
    sources = ["a", "a", "a", "b", "b", "b"]
    positions = [0, 1, 2, 2, 0, 1]
    return [Passage(t, s, p) for t, s, p in zip(texts, sources, positions)]


def test_the_needle_is_kept_and_the_kept_passages_come_in_document_order(reranker):
    items = passages()
    kept = reranker.rerank(items, QUESTION)
    assert len(kept) == 2
    assert any(k.passage.text == NEEDLE for k in kept)
    assert kept[0].passage.source == "b"  # the needle's document comes first ...
    needle_score = next(k.score for k in kept if k.passage.text == NEEDLE)
    scores = reranker.score([p.text for p in items], QUESTION)
    assert needle_score == pytest.approx(min(scores))  # ... because it holds the best passage
    assert kept[0].relevance == 1.0 and all(0 < k.relevance <= 1 for k in kept)
    assert all(set(k.signals) == {"certainty", "bm25", "dense"} for k in kept)
    for a, b in zip(kept, kept[1:]):  # inside a document, by position
        if a.passage.source == b.passage.source:
            assert a.passage.position < b.passage.position


def test_a_token_budget_keeps_what_fits(embedded):
    reranker = CertaintyReranker(embedded.model, embedded.tokenizer, token_budget=30)
    kept = reranker.rerank(passages(), QUESTION)
    assert [k.passage.text for k in kept] == [NEEDLE]  # each passage is ~20 tokens: only one fits


def test_plain_strings_empty_lists_and_bad_input(reranker):
    kept = reranker.rerank(FILLER + [NEEDLE], QUESTION)
    assert NEEDLE in [k.passage.text for k in kept]
    assert [k.index for k in kept] == sorted(k.index for k in kept)  # one source: input order
    assert reranker.rerank([], QUESTION) == []
    with pytest.raises(InputError, match="passage 1 is a int"):
        reranker.rerank(["text", 3], QUESTION)
    with pytest.raises(InputError, match="question"):
        reranker.rerank(FILLER, "   ")
    with pytest.raises(InputError, match="exactly one"):
        CertaintyReranker(reranker.scorer.model, reranker.scorer.tokenizer, top_n=2, token_budget=10)


def test_concurrent_calls_from_threads_equal_sequential_calls(reranker):
    questions = [QUESTION, "When does the museum open?", "Which platform does the train leave from?", QUESTION]
    sequential = [reranker.score([p.text for p in passages()], q) for q in questions]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda q: reranker.score([p.text for p in passages()], q), questions))
    assert concurrent == sequential
