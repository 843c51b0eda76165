"""End to end on the embedded model: compression retriever, chat model (streaming, async, tool messages), agent."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.vectorstores import InMemoryVectorStore

from entropy_retriever import LongContextReader
from entropy_retriever.demo import EXPECTED, QUESTION, make_demo_document
from langchain_entropy_retriever import CertaintyCompressor, ChatEntropyRetriever, LongDocumentRetriever, LongFileTool
from tests.fixtures import DOCS, bag_of_words, ticks_during
from tests.fixtures import QUESTION as ASK


class BagOfWords(Embeddings):
    """A real (if weak) lexical retriever's embedding: hashed word counts. Offline and deterministic."""

    def embed_documents(self, texts):
        return [bag_of_words(t) for t in texts]

    def embed_query(self, text):
        return bag_of_words(text)


def test_contextual_compression_keeps_the_needle_the_retriever_ranks_last(embedded):
    from langchain_classic.retrievers import ContextualCompressionRetriever

    store = InMemoryVectorStore(BagOfWords())
    store.add_documents([Document(page_content=t, metadata={"source": f"doc{i}"}) for i, t in enumerate(DOCS)])
    base = store.as_retriever(search_kwargs={"k": 5})
    ranked = base.invoke(ASK)
    assert "58213" in ranked[-1].page_content  # the lexical retriever ranks the needle last
    compressor = CertaintyCompressor(top_n=2, model=embedded.model, tokenizer=embedded.tokenizer)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    kept = retriever.invoke(ASK)
    assert len(kept) == 2 and any("58213" in d.page_content for d in kept)
    assert all(0 < d.metadata["relevance"] <= 1 and d.metadata["source"].startswith("doc") for d in kept)
    assert all(set(d.metadata["signals"]) == {"certainty", "bm25", "dense"} for d in kept)
    assert "relevance" not in ranked[0].metadata  # the originals are untouched
    again = asyncio.run(retriever.ainvoke(ASK))
    assert [d.page_content for d in again] == [d.page_content for d in kept]


def test_retriever_honours_k_and_returns_spans(embedded):
    doc = make_demo_document(embedded.tokenizer, n_tokens=2500, depth=0.5)
    retriever = LongDocumentRetriever(document=doc.text, k=2, segment_tokens=256, model=embedded.model, tokenizer=embedded.tokenizer)
    found = retriever.invoke(QUESTION)
    assert sum(len(d.metadata["segments"]) for d in found) == 2 and any(EXPECTED in d.page_content for d in found)
    one = retriever.invoke(QUESTION, k=1)
    assert len(one) == 1 and len(one[0].metadata["segments"]) == 1
    starts = [d.metadata["start_index"] for d in found]
    assert starts == sorted(starts)  # document order
    for d in found:
        assert doc.text[d.metadata["start_index"]:d.metadata["end_index"]] == d.page_content
        assert 0 < d.metadata["relevance"] <= 1


@pytest.fixture(scope="module")
def chat(embedded):
    from entropy_retriever import LongContextLM

    return ChatEntropyRetriever(lm=LongContextLM(embedded.model, embedded.tokenizer), max_tokens=16)


def test_invoke_stream_and_async_agree_and_async_leaves_the_loop_free(chat):
    prompt = "Name the capital of France in one word."
    said = chat.invoke(prompt)
    assert said.content and said.usage_metadata["output_tokens"] > 0
    assert "".join(c.content for c in chat.stream(prompt)) == said.content

    async def run():
        a = (await chat.ainvoke(prompt)).content
        b = "".join([c.content async for c in chat.astream(prompt)])
        return a, b

    (a, b), ticks = asyncio.run(ticks_during(run()))
    assert a == b == said.content and ticks > 5


def test_stop_strings_cut_the_output(chat):
    prompt = "Write one sentence about the sea."
    full = chat.invoke(prompt).content
    stop = full[len(full) // 2: len(full) // 2 + 2]  # a string from the middle of the greedy output
    cut = chat.invoke(prompt, stop=[stop]).content
    assert cut == full[: full.index(stop)] and len(cut) < len(full)
    assert "".join(c.content for c in chat.stream(prompt, stop=[stop])) == cut


def test_a_conversation_ending_in_a_tool_message_gets_an_answer(chat):
    from langchain_core.tools import tool

    @tool
    def weather(city: str) -> str:
        """Current weather in a city."""
        return "12 C and rain"

    bound = chat.bind_tools([weather])
    messages = [
        HumanMessage("What is the weather in Oslo?"),
        AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "call_1"}]),
        ToolMessage("12 C and rain", tool_call_id="call_1", name="weather"),
    ]
    reply = bound.invoke(messages)
    assert isinstance(reply, AIMessage) and (reply.content.strip() or reply.tool_calls)


class ScriptedAgentModel(BaseChatModel):
    """Stands in for the agent's reasoning model (a 135M model cannot drive tools reliably):
    it calls read_long_file once, then answers with the tool's result. The tool runs the real model."""

    path: str = ""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        last = messages[-1]
        if isinstance(last, ToolMessage):
            message = AIMessage(content=str(last.content).splitlines()[0])
        else:
            message = AIMessage("", tool_calls=[{"name": "read_long_file", "args": {"path": self.path, "question": QUESTION}, "id": "c1"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


def _agent_answer(tool, path: str) -> str:
    from langchain.agents import create_agent

    agent = create_agent(ScriptedAgentModel(path=path), tools=[tool])
    state = agent.invoke({"messages": [HumanMessage(QUESTION)]})
    return state["messages"][-1].content


def test_create_agent_reads_a_file_longer_than_the_window(embedded, tmp_path):
    doc = make_demo_document(embedded.tokenizer, n_tokens=10000, depth=0.4)
    assert doc.n_tokens > embedded.model.config.max_position_embeddings
    (tmp_path / "manual.txt").write_text(doc.text)
    tool = LongFileTool(roots=[tmp_path], reader=LongContextReader(embedded.model, embedded.tokenizer, progress=False))
    assert EXPECTED in _agent_answer(tool, "manual.txt")


def test_the_agent_sees_refusals_as_tool_output(embedded, tmp_path):
    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.txt").write_text("the launch code is 0000")
    tool = LongFileTool(roots=[tmp_path / "inside"], reader=LongContextReader(embedded.model, embedded.tokenizer, progress=False))
    answer = _agent_answer(tool, "../secret.txt")
    assert "not allowed" in answer and "0000" not in answer
