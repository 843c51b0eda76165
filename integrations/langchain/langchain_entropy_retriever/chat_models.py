"""ChatEntropyRetriever: a LangChain chat model over entropy_retriever's LongContextLM."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Iterator, Literal, Optional, Sequence, Union

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call as make_tool_call
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from entropy_retriever.integration import EMBEDDED_MODEL_NAME


def _chosen_tools(tools: Optional[list], tool_choice) -> tuple[Optional[list], str]:
    """The tools to offer under ``tool_choice``, and the instruction it adds to the prompt ("" for none)."""
    from entropy_retriever import InputError

    if not tools or tool_choice in (None, "auto"):
        return tools, ""
    if tool_choice == "none":
        return None, ""
    if tool_choice in ("any", "required", True):
        return tools, "Answer with a call to one of the tools."
    name = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else tool_choice
    chosen = [t for t in tools if t["function"]["name"] == name]
    if not chosen:
        raise InputError(f"tool_choice={tool_choice!r} names no bound tool; the tools are "
                         f"{', '.join(t['function']['name'] for t in tools)} (or use 'auto', 'any' or 'none')")
    return chosen, f"Answer with a call to the tool {name}."


class ChatEntropyRetriever(BaseChatModel):
    """A local Hugging Face chat model that reads past its trained window, for LangChain.

    Generation is greedy; ``policy`` (``SelfExtend(...)`` or ``LMInfinite(...)``) lets the
    model read past its trained window. Tool calling works through the model's chat template
    (``bind_tools``; calls are parsed from the output), including conversations that end in a
    tool message. Async methods run the model in a worker thread, so the event loop stays free.

    >>> chat = ChatEntropyRetriever()                           # the embedded SmolLM2-135M-Instruct
    >>> chat.invoke("What is 2 + 2?").content
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model_name: Optional[str] = Field(default=None, alias="model", description="Local model path; None = the embedded model.")
    policy: Any = Field(default=None, description="SelfExtend(...) or LMInfinite(...), or None.")
    max_tokens: int = Field(default=256, description="Tokens to generate per call.")
    temperature: Optional[float] = Field(default=0, description="Only 0 / None (greedy) is supported.")
    stop: Optional[list[str]] = Field(default=None, description="Stop generating at the first of these strings (a stopping criterion; the text is cut before it).")
    timeout: Optional[float] = Field(default=None, description="Stop generating after this many seconds.")
    max_retries: int = Field(default=0, description="Accepted for API compatibility; a local model is not retried.")
    api_key: Optional[SecretStr] = Field(default=None, description="Accepted for API compatibility; unused (local model).")
    streaming: bool = Field(default=False, description="Stream by default in invoke().")
    _lm: Any = PrivateAttr(default=None)

    def __init__(self, *, lm: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.temperature not in (0, 0.0, None):
            from entropy_retriever import InputError

            raise InputError("ChatEntropyRetriever generates greedily: pass temperature=0 (or leave it out)")
        self._lm = lm

    @property
    def lm(self):
        """The core LongContextLM, loaded on first use."""
        if self._lm is None:
            from entropy_retriever import LongContextLM, load_model

            model, tokenizer = load_model(self.model_name)  # one copy per process, shared
            self._lm = LongContextLM(model, tokenizer, self.policy, max_new_tokens=self.max_tokens)
        return self._lm

    @property
    def _llm_type(self) -> str:
        return "entropy-retriever"

    @property
    def _identifying_params(self) -> dict:
        return {"model_name": self.model_name or EMBEDDED_MODEL_NAME, "policy": repr(self.policy)}

    def _get_ls_params(self, stop: Optional[list[str]] = None, **kwargs: Any):
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "entropy-retriever"
        params["ls_model_name"] = kwargs.get("model") or self.model_name or EMBEDDED_MODEL_NAME
        params["ls_max_tokens"] = self.max_tokens
        params["ls_temperature"] = self.temperature
        return params

    # ------------------------------------------------------------------ tools
    def bind_tools(
        self,
        tools: Sequence[Union[dict[str, Any], type, Callable, BaseTool]],
        *,
        tool_choice: Optional[Union[str, Literal["auto", "any", "none"]]] = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` to the model; its calls come back as ``AIMessage.tool_calls``.

        ``tool_choice``: ``None`` or ``"auto"`` (the model decides), ``"none"`` (no tool is
        offered), ``"any"`` / ``"required"`` (the prompt asks for a call to one of them), or a
        tool's name (only that tool is offered, and the prompt asks for a call to it). A local
        model's output is not constrained: a prompt that asks for a call is all it gets.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    # -------------------------------------------------------------- messages
    @staticmethod
    def _to_dicts(messages: list[BaseMessage]) -> list[dict]:
        from entropy_retriever import InputError

        out: list[dict[str, Any]] = []
        for m in messages:
            content = m.content if isinstance(m.content, str) else "".join(
                part.get("text", "") if isinstance(part, dict) else str(part) for part in m.content
            )
            if isinstance(m, SystemMessage):
                out.append({"role": "system", "content": content})
            elif isinstance(m, HumanMessage):
                out.append({"role": "user", "content": content})
            elif isinstance(m, AIMessage):
                calls = [{"name": c["name"], "arguments": c["args"], "id": c.get("id")} for c in m.tool_calls]
                out.append({"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})})
            elif isinstance(m, ToolMessage):
                out.append({"role": "tool", "content": content, "name": getattr(m, "name", None) or "", "tool_call_id": m.tool_call_id})
            else:
                raise InputError(f"cannot send a {type(m).__name__} to a local chat model: use system, human, ai or tool messages")
        return out

    def _prompt(self, messages: list[BaseMessage], kwargs: dict) -> tuple[list[int], Optional[set]]:
        tools, choice = _chosen_tools(kwargs.get("tools"), kwargs.get("tool_choice"))
        dicts = self._to_dicts(messages)
        if choice and dicts and dicts[-1]["role"] in ("user", "tool"):
            dicts[-1] = dict(dicts[-1], content=f"{dicts[-1]['content']}\n\n({choice})")
        ids = self.lm.chat_prompt(dicts, tools=tools)
        names = {t["function"]["name"] for t in tools} if tools else None
        return ids, names

    def _stops(self, stop: Optional[list[str]]) -> list[str]:
        """The call's stop strings and the model's own: generation ends at the first of them."""
        return list(stop or []) + list(self.stop or [])

    def _message(self, text: str, names: Optional[set], usage: dict) -> AIMessage:
        from entropy_retriever.integration import parse_tool_calls

        if names:
            content, calls = parse_tool_calls(text, names)
            tool_calls = [make_tool_call(name=c.name, args=c.arguments, id=c.id) for c in calls]
        else:
            content, tool_calls = text, []
        return AIMessage(content=content, tool_calls=tool_calls, usage_metadata=usage)

    # ------------------------------------------------------------ generation
    def _run(self, ids: list[int], stop: Optional[list[str]] = None):
        return self.lm.generate_ids(ids, self.max_tokens, max_time=self.timeout, stop=self._stops(stop))

    def _result(self, out, names: Optional[set]) -> ChatResult:
        usage = {"input_tokens": out.prompt_tokens, "output_tokens": out.new_tokens,
                 "total_tokens": out.prompt_tokens + out.new_tokens}
        return ChatResult(generations=[ChatGeneration(message=self._message(out.text, names, usage))])

    def _whole_chunk(self, out, names: Optional[set]) -> ChatGenerationChunk:
        """The whole output as one chunk: tool calls are only known once all of it is read."""
        msg = self._message(out.text, names, {})
        return ChatGenerationChunk(message=AIMessageChunk(content=msg.content, tool_call_chunks=_chunks(msg)))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        ids, names = self._prompt(messages, kwargs)
        return self._result(self._run(ids, stop), names)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[AsyncCallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        ids, names = self._prompt(messages, kwargs)
        return self._result(await asyncio.to_thread(self._run, ids, stop), names)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        ids, names = self._prompt(messages, kwargs)
        if names:
            yield self._whole_chunk(self._run(ids, stop), names)
            return
        yield from self._pieces(self._stream_ids(ids, stop), run_manager)

    def _stream_ids(self, ids: list[int], stop: Optional[list[str]]):
        return self.lm.stream_ids(ids, self.max_tokens, max_time=self.timeout, stop=self._stops(stop))

    @staticmethod
    def _pieces(pieces, run_manager) -> Iterator[ChatGenerationChunk]:
        for piece in pieces:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[AsyncCallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        from entropy_retriever.integration import iterate_in_thread

        ids, names = self._prompt(messages, kwargs)
        if names:
            yield self._whole_chunk(await asyncio.to_thread(self._run, ids, stop), names)
            return
        async for chunk in iterate_in_thread(lambda: self._pieces(self._stream_ids(ids, stop), None)):
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _chunks(msg: AIMessage) -> list:
    import json

    return [
        {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i, "type": "tool_call_chunk"}
        for i, c in enumerate(msg.tool_calls)
    ]
