"""LongDocumentRetriever, LongContextLLM and the long-file tool (inside a ReActAgent) on the embedded model."""

from __future__ import annotations

import asyncio
import json

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, LLMMetadata
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from entropy_retriever import SelfExtend
from entropy_retriever.demo import EXPECTED, QUESTION, make_demo_document
from llama_index.llms.entropy_retriever import LongContextLLM
from llama_index.retrievers.entropy_retriever import LongDocumentRetriever
from llama_index.tools.entropy_retriever import long_file_tool
from tests.fixtures import ticks_during


@pytest.fixture(scope="module")
def short_doc(embedded):
    return make_demo_document(embedded.tokenizer, n_tokens=3000, depth=0.6)


def test_retriever_returns_key_spans_with_their_positions(embedded, short_doc):
    retriever = LongDocumentRetriever(short_doc.text, top_k=2, segment_tokens=256,
                                      model=embedded.model, tokenizer=embedded.tokenizer)
    nodes = retriever.retrieve(QUESTION)
    assert any(EXPECTED in n.node.get_content() for n in nodes)
    starts = [n.node.start_char_idx for n in nodes]
    assert starts == sorted(starts)  # document order
    for n in nodes:
        assert short_doc.text[n.node.start_char_idx:n.node.end_char_idx] == n.node.get_content()
        assert n.node.metadata["start_char"] == n.node.start_char_idx and 0 < n.score <= 1
    again = asyncio.run(retriever.aretrieve(QUESTION))
    assert [n.node.get_content() for n in again] == [n.node.get_content() for n in nodes]


def test_llm_reports_the_policys_reach_and_its_paths_agree(embedded):
    llm = LongContextLLM(embedded.model, embedded.tokenizer, policy=SelfExtend(4, 1024), max_new_tokens=12)
    try:
        assert llm.metadata.context_window == (8192 - 1024) * 4 + 1024 > embedded.model.config.max_position_embeddings
        assert llm.metadata.is_chat_model
        prompt = "Name the capital of France in one word."
        done = llm.complete(prompt).text
        assert done and "".join(r.delta for r in llm.stream_complete(prompt)) == done
        messages = [ChatMessage(role="user", content=prompt)]
        said = llm.chat(messages).message.content
        assert said == done  # a raw prompt goes through the chat template like a one-message chat
        assert "".join(r.delta for r in llm.stream_chat(messages)) == said

        async def run_async():
            a = (await llm.achat(messages)).message.content
            b = (await llm.acomplete(prompt)).text
            c = "".join([r.delta async for r in await llm.astream_chat(messages)])
            d = "".join([r.delta async for r in await llm.astream_complete(prompt)])
            return a, b, c, d

        (a, b, c, d), ticks = asyncio.run(ticks_during(run_async()))
        assert a == b == c == d == said
        assert ticks > 5  # the loop ran while the model generated
    finally:
        assert embedded.model.config._attn_implementation == "sdpa"  # nothing stays switched on


class ScriptedReActLLM(CustomLLM):
    """Stands in for the agent's reasoning LLM (a 135M model cannot drive ReAct reliably).

    It calls the tool once with the given path, then answers with the tool's observation.
    The tool itself runs the real embedded model.
    """

    path: str = ""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True)

    def _reply(self, messages) -> str:
        last = messages[-1].content or ""
        if not last.startswith("Observation:"):
            args = json.dumps({"path": self.path, "question": QUESTION})
            return f"Thought: I need to read the file.\nAction: read_long_file\nAction Input: {args}"
        observation = last.removeprefix("Observation:").strip().splitlines()[0]
        return f"Thought: I can answer without using any more tools.\nAnswer: {observation}"

    @llm_completion_callback()
    def complete(self, prompt, formatted=False, **kwargs):
        return CompletionResponse(text=self._reply([ChatMessage(content=prompt)]))

    @llm_completion_callback()
    def stream_complete(self, prompt, formatted=False, **kwargs):
        yield self.complete(prompt)

    @llm_chat_callback()
    def chat(self, messages, **kwargs):
        return ChatResponse(message=ChatMessage(role="assistant", content=self._reply(messages)))


def _run_agent(tool, path: str) -> str:
    from llama_index.core.agent.workflow import ReActAgent

    agent = ReActAgent(tools=[tool], llm=ScriptedReActLLM(path=path), streaming=False)

    async def main() -> str:
        return str(await agent.run(user_msg=QUESTION))

    return asyncio.run(main())


def test_react_agent_reads_a_file_longer_than_the_window(embedded, tmp_path):
    from entropy_retriever import LongContextReader

    doc = make_demo_document(embedded.tokenizer, n_tokens=10000, depth=0.4)
    assert doc.n_tokens > embedded.model.config.max_position_embeddings
    (tmp_path / "manual.txt").write_text(doc.text)
    reader = LongContextReader(embedded.model, embedded.tokenizer, progress=False)
    tool = long_file_tool(roots=[tmp_path], reader=reader)
    assert EXPECTED in _run_agent(tool, "manual.txt")


def test_the_agent_reads_refusals_as_tool_output(embedded, tmp_path):
    from entropy_retriever import LongContextReader

    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.txt").write_text("the launch code is 0000")
    reader = LongContextReader(embedded.model, embedded.tokenizer, progress=False)
    tool = long_file_tool(roots=[tmp_path / "inside"], reader=reader)
    out = tool.call(path="../secret.txt", question=QUESTION)
    assert "not allowed" in str(out) and "0000" not in str(out)
    assert "not allowed" in _run_agent(tool, "../secret.txt")
