"""The multi-hop stage: the second fact, which shares no word with the question, is found from the first."""

from __future__ import annotations

import numpy as np
import pytest

from entropy_retriever.errors import InputError
from entropy_retriever.hops import FeedbackHops, key_sentences

QUESTION = "Where was the director of the film Ronnie Rocket born?"
FILLER = "The harbour committee discussed tides, ferry timetables and the price of diesel at length. "
TEXTS = [
    FILLER * 3 + "Ronnie Rocket is an unfinished film written and directed by David Lynch. " + FILLER,  # the first hop
    FILLER * 4 + "The film festival in the city shows films about rockets every summer. ",  # shares words, no answer
    FILLER * 4 + "David Lynch was born in Missoula, Montana, in 1946. ",  # the second hop: no word of the question
    FILLER * 5,
    FILLER * 4 + "The director of the harbour was born on a ferry. ",
]


def texts_of(indices):
    return [TEXTS[i] for i in indices]


def test_the_second_fact_is_picked_second_once_the_first_is_read():
    fused = np.array([-2.0, -1.0, -0.5, 0.6, -0.9])  # the first hop is first; the second fact is fourth
    without = np.argsort(fused, kind="stable").tolist()
    assert without.index(2) > 2
    order, hop_scores = FeedbackHops(1).order(fused, QUESTION, ("certainty", "bm25", "dense"), texts_of)
    assert order.tolist()[:2] == [0, 2]
    assert sorted(order.tolist()) == list(range(len(TEXTS))) and set(hop_scores) == {1, 2, 3, 4}
    assert FeedbackHops(1).order(fused, QUESTION, ("bm25",), texts_of)[0].tolist()[:2] == [0, 2]
    # the embedder alone, asked with the first pick's sentence, prefers the look-alike about films
    # and rockets: why it has no weight in the stage by default
    dense_only = FeedbackHops(1, weights={"fused": 1.0, "dense": 1.0})
    assert dense_only.order(fused, QUESTION, ("dense",), texts_of)[0].tolist()[:2] == [0, 1]


def test_no_stage_without_a_cheap_signal_or_with_hops_zero():
    fused = np.array([-2.0, -1.0, 0.5, 0.6, -0.9])
    plain = np.argsort(fused, kind="stable").tolist()
    for hops, signals in ((0, ("certainty", "bm25", "dense")), (1, ("certainty",))):
        order, scores = FeedbackHops(hops).order(fused, QUESTION, signals, texts_of)
        assert order.tolist() == plain and scores == {}


def test_a_first_pick_that_shares_no_word_with_the_question_changes_nothing():
    fused = np.array([0.1, -1.0, 0.5, 0.6, -0.9])  # segment 3, all filler, first
    fused[3] = -5.0
    order, scores = FeedbackHops(1).order(fused, QUESTION, ("bm25", "dense"), texts_of)
    assert order.tolist() == np.argsort(fused, kind="stable").tolist() and scores == {}


def test_key_sentences_are_those_that_share_most_of_the_question():
    text = "Nothing here. Ronnie Rocket was directed by David Lynch. The film was never made. Rockets fly."
    assert key_sentences(text, QUESTION, 1) == ["Ronnie Rocket was directed by David Lynch."]
    assert key_sentences(text, QUESTION, 2) == ["Ronnie Rocket was directed by David Lynch.", "The film was never made."]
    assert key_sentences("No shared words at all.", QUESTION, 2) == []


def test_hops_must_be_a_whole_number():
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(InputError, match="hops must be a whole number"):
            FeedbackHops(bad)
