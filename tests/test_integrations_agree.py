"""Both frameworks' LongDocumentRetrievers keep the same spans for the same document, query and budget."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.retrievers.entropy_retriever")
pytest.importorskip("langchain_entropy_retriever")

from entropy_retriever import InputError, LongContextReader, Selection  # noqa: E402
from langchain_entropy_retriever import LongDocumentRetriever as LangChainRetriever  # noqa: E402
from llama_index.retrievers.entropy_retriever import LongDocumentRetriever as LlamaIndexRetriever  # noqa: E402

TEXT = "".join(
    f"Paragraph {i}. The harbour log for day {i} records {('calm water', 'a storm', 'fog at dawn')[i % 3]} "
    f"and {i % 5 + 1} ships leaving for the islands.\n\n"
    for i in range(40)
)
QUESTION = "On which day was there fog, and how many ships left?"


@pytest.mark.parametrize("budget", [{}, {"top_k": 2}, {"top_k": 5}, {"token_budget": 300}])
def test_same_spans_in_both_frameworks(tiny, tokenizer, budget):
    common = dict(segment_tokens=64, model=tiny, tokenizer=tokenizer)
    llama = LlamaIndexRetriever(TEXT, **budget, **common)
    chain_budget = {"k": budget["top_k"]} if "top_k" in budget else budget
    chain = LangChainRetriever(document=TEXT, **chain_budget, **common)
    nodes = llama.retrieve(QUESTION)
    docs = chain.invoke(QUESTION)
    spans = [(n.node.start_char_idx, n.node.end_char_idx) for n in nodes]
    assert spans == [(d.metadata["start_index"], d.metadata["end_index"]) for d in docs]
    assert [n.node.get_content() for n in nodes] == [d.page_content for d in docs]
    assert [n.score for n in nodes] == [d.metadata["relevance"] for d in docs]
    reader = LongContextReader(tiny, tokenizer, segment_tokens=64, progress=False,
                               **(budget or {"top_k": 4}))
    key = reader.select(TEXT, QUESTION)
    assert spans == [(s.start, s.end) for s in key.spans]  # the product's one rule
    kept = sum(len(n.node.metadata["segments"]) for n in nodes)
    if "token_budget" in budget:
        assert key.n_tokens <= budget["token_budget"]
    else:
        assert kept == budget.get("top_k", 4)
    assert spans == sorted(spans)


def test_per_call_k_and_a_given_reader(tiny, tokenizer):
    reader = LongContextReader(tiny, tokenizer, segment_tokens=64, top_k=3, progress=False)
    llama = LlamaIndexRetriever(TEXT, reader=reader)
    assert sum(len(n.node.metadata["segments"]) for n in llama.retrieve(QUESTION)) == 3
    llama_two = LlamaIndexRetriever(TEXT, reader=reader, top_k=2)  # a rule given with a reader applies per call
    assert sum(len(n.node.metadata["segments"]) for n in llama_two.retrieve(QUESTION)) == 2
    chain = LangChainRetriever(document=TEXT, k=3, segment_tokens=64, model=tiny, tokenizer=tokenizer)
    assert sum(len(d.metadata["segments"]) for d in chain.invoke(QUESTION, k=1)) == 1
    with pytest.raises(InputError, match="exactly one"):
        LangChainRetriever(document=TEXT, k=2, token_budget=300, model=tiny, tokenizer=tokenizer)
    with pytest.raises(InputError, match="exactly one"):
        LlamaIndexRetriever(TEXT, top_k=2, token_budget=300, model=tiny, tokenizer=tokenizer)
    with pytest.raises(InputError, match="positive integer"):
        chain.invoke(QUESTION, k=0)
    assert Selection.of(default=Selection(top_k=4)) == Selection(top_k=4)
