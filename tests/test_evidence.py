"""The evidence of an answer: kept spans with their lines, and the sentences that support it."""

from __future__ import annotations

from entropy_retriever import LongContextReader

HARBOUR_LOG = "".join(
    f"Entry {i}. The harbour log notes calm water, {i % 7} boats and a crew of {i % 5 + 2}.\n"
    + ("The lighthouse keeper is named Ortega.\n" if i == 41 else "")
    for i in range(90)
)


def test_kept_spans_carry_line_numbers_and_answers_quote_their_support(tiny, tokenizer, tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(HARBOUR_LOG, encoding="utf-8")
    reader = LongContextReader(tiny, tokenizer, signals=("bm25",), segment_tokens=48, top_k=2, progress=False)
    for context in (HARBOUR_LOG, path):
        key = reader.select(context, "Who keeps the lighthouse? Ortega?")
        lines = HARBOUR_LOG.split("\n")
        for span in key.spans:
            assert span.line_start >= 1 and span.line_end >= span.line_start
            assert HARBOUR_LOG.count("\n", 0, span.start) + 1 == span.line_start
            first = span.text.strip("\n").split("\n")[0]
            assert first in lines[span.line_start - 1 + (len(span.text) - len(span.text.lstrip("\n")))]
    from entropy_retriever.reader import Answer

    answer = Answer("The keeper is Ortega.", key)
    quotes = answer.quotes()
    assert quotes and "Ortega" in quotes[0].text and "ortega" in quotes[0].shared
    assert lines[quotes[0].line - 1].strip() == quotes[0].text
    assert Answer("Zanzibar", key).quotes() == []  # nothing in the key context backs it
