"""The answer's focus: the key context's sentences that bear most on the question."""

from __future__ import annotations

import pytest

from entropy_retriever import LongContextReader
from entropy_retriever.cli import build_parser, reader_options
from entropy_retriever.errors import InputError
from entropy_retriever.focus import focus_sentences
from entropy_retriever.reader import ANSWER_FOCUS
from tests.test_reader import HARBOUR_LOG

ESSAY = (
    "The committee met on a grey morning and\nspent an hour on the budget. Nobody mentioned the roof.\n\n"
    "Minutes were taken by the secretary, who\nlater filed them in the blue cabinet. "
    "Dmitri practises the cello before dinner. "
    "The coffee machine was broken again. A new printer was ordered for the second floor. "
    "Several members asked for the meeting to end early."
)


def test_focus_keeps_the_best_sentences_in_document_order_and_joins_wrapped_lines():
    kept = focus_sentences(ESSAY, "Who filed the minutes in the blue cabinet?", 2, dense=False)
    assert len(kept) == 2
    assert "Minutes were taken by the secretary, who later filed them in the blue cabinet." in kept  # one sentence, unwrapped
    order = [ESSAY.replace("\n", " ").index(s) for s in kept]
    assert order == sorted(order)


def test_the_embedder_finds_the_sentence_that_shares_no_word_with_the_question():
    question = "Which person plays a stringed instrument?"
    kept = focus_sentences(ESSAY, question, 1)  # BM25 sees no shared word; the embedder knows what a cello is
    assert kept == ["Dmitri practises the cello before dinner."]
    assert focus_sentences(ESSAY, question, 1, dense=False) != kept  # BM25 alone cannot tell


def test_a_short_text_is_kept_whole_and_a_bad_count_is_refused():
    assert focus_sentences("One fact. Another fact.", "Which fact?", 5, dense=False) == ["One fact.", "Another fact."]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="how many sentences"):
            focus_sentences(ESSAY, "Who?", bad)


def test_the_reader_answers_from_the_focus_and_says_what_it_read(tiny, tokenizer):
    options = dict(signals=("bm25",), segment_tokens=48, top_k=3, progress=False, max_new_tokens=2)
    focused = LongContextReader(tiny, tokenizer, **options)
    assert focused.answer_focus == ANSWER_FOCUS == 3
    answer = focused.answer(HARBOUR_LOG, "Who keeps the lighthouse?")
    lines = answer.read.split("\n")
    assert len(lines) == 3 and "The lighthouse keeper is named Ortega." in lines
    assert all(line in answer.key_context.text.replace("\n", " ") for line in lines)
    prompt = focused.answer_messages(answer.key_context, "Who keeps the lighthouse?")[0]["content"]
    assert answer.read in prompt and answer.key_context.text not in prompt
    assert answer.prompt_tokens == len(focused.answer_lm.chat_prompt(focused.answer_messages(answer.key_context, "Who keeps the lighthouse?")))

    whole = LongContextReader(tiny, tokenizer, answer_focus=None, **options).answer(HARBOUR_LOG, "Who keeps the lighthouse?")
    assert whole.read == whole.key_context.text and whole.prompt_tokens > answer.prompt_tokens


@pytest.mark.parametrize("bad", [0, -2, 1.5, "3", True])
def test_a_bad_answer_focus_is_refused_before_a_model_loads(bad):
    with pytest.raises(InputError, match="answer_focus is how many"):
        LongContextReader(answer_focus=bad)


def test_the_command_line_focus_option():
    parser = build_parser()
    assert parser.parse_args(["ask", "f.txt", "q"]).focus == ANSWER_FOCUS
    assert parser.parse_args(["ask", "f.txt", "q", "--focus", "5"]).focus == 5
    assert parser.parse_args(["demo", "--focus", "2"]).focus == 2
    assert reader_options(parser.parse_args(["ask", "f.txt", "q", "--focus", "0"]))["answer_focus"] is None  # all of it
    assert reader_options(parser.parse_args(["ask", "f.txt", "q"]))["answer_focus"] == ANSWER_FOCUS
