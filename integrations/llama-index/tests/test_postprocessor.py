"""CertaintyRerank inside a real RetrieverQueryEngine, its events, and its async path."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeRelationship, NodeWithScore, RelatedNodeInfo, TextNode

from llama_index.llms.entropy_retriever import LongContextLLM
from llama_index.postprocessor.entropy_retriever import CertaintyRerank
from tests.fixtures import DOCS, NEEDLE_DOC, QUESTION, bag_of_words, ticks_during


class BagOfWordsEmbedding(BaseEmbedding):
    """A real (if weak) lexical retriever: hashed word counts, cosine similarity. Offline and deterministic."""

    def _get_query_embedding(self, query: str) -> list[float]:
        return bag_of_words(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return bag_of_words(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return bag_of_words(query)


@pytest.fixture(scope="module")
def index():
    return VectorStoreIndex.from_documents([Document(text=t, doc_id=f"doc{i}") for i, t in enumerate(DOCS)],
                                           embed_model=BagOfWordsEmbedding())


@pytest.fixture(scope="module")
def rerank(embedded):
    return CertaintyRerank(top_n=2, model=embedded.model, tokenizer=embedded.tokenizer)


def test_query_engine_answers_a_needle_the_retriever_alone_ranks_too_low(index, rerank, embedded):
    llm = LongContextLLM(embedded.model, embedded.tokenizer, max_new_tokens=24)
    alone = index.as_retriever(similarity_top_k=2).retrieve(QUESTION)
    assert all("58213" not in n.node.get_content() for n in alone)  # the lexical retriever misses it

    engine = RetrieverQueryEngine.from_args(
        index.as_retriever(similarity_top_k=5), llm=llm, node_postprocessors=[rerank]
    )
    response = engine.query(QUESTION)
    assert any("58213" in n.node.get_content() for n in response.source_nodes)
    assert len(response.source_nodes) == 2
    assert "58213" in str(response)


def test_scores_metadata_and_document_order(embedded):
    nodes = [
        NodeWithScore(node=TextNode(text=DOCS[0], metadata={"k": "a0"}, start_char_idx=500), score=0.9),
        NodeWithScore(node=TextNode(text=NEEDLE_DOC, metadata={"k": "b"}), score=0.1),
        NodeWithScore(node=TextNode(text=DOCS[1], metadata={"k": "a1"}, start_char_idx=100), score=0.8),
    ]
    for n in (nodes[0], nodes[2]):  # two chunks of one source document
        n.node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id="docA")
    out = CertaintyRerank(top_n=3, model=embedded.model, tokenizer=embedded.tokenizer).postprocess_nodes(nodes, query_str=QUESTION)
    assert out[0].node.get_content() == NEEDLE_DOC  # the most certain document first
    assert [n.node.metadata["k"] for n in out[1:]] == ["a1", "a0"]  # then docA by position, not by input order
    assert all(0.0 < n.score <= 1.0 for n in out)
    assert out[0].score == max(n.score for n in out)


def test_rerank_events_are_dispatched(rerank):
    seen = []

    class Collect(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "Collect"

        def handle(self, event, **kwargs):
            seen.append(event.class_name())

    root = get_dispatcher()
    handler = Collect()
    root.add_event_handler(handler)
    try:
        rerank.postprocess_nodes([NodeWithScore(node=TextNode(text=t)) for t in DOCS], query_str=QUESTION)
    finally:
        root.event_handlers.remove(handler)
    assert "ReRankStartEvent" in seen and "ReRankEndEvent" in seen


async def test_async_postprocessing_is_concurrent_safe_and_leaves_the_loop_free(rerank):
    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}")) for i, t in enumerate(DOCS)]
    queries = [QUESTION, "When is the museum open?", "What is a postal code?", QUESTION]
    sequential = [[(n.node.node_id, n.score) for n in rerank.postprocess_nodes(nodes, query_str=q)] for q in queries]

    gathered = asyncio.gather(*(rerank.apostprocess_nodes(nodes, query_str=q) for q in queries))
    results, ticks = await ticks_during(gathered, period=0.01)
    assert [[(n.node.node_id, n.score) for n in r] for r in results] == sequential
    assert ticks > 10  # the loop kept running while four scorings queued on the model's lock


def test_missing_query_is_a_clear_error(rerank):
    with pytest.raises(ValueError, match="needs the query"):
        rerank.postprocess_nodes([NodeWithScore(node=TextNode(text="x"))])
