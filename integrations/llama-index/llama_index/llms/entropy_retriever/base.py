"""LongContextLLM: a LlamaIndex LLM over entropy_retriever's LongContextLM (SelfExtend / LM-Infinite inside)."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from entropy_retriever.integration import EMBEDDED_MODEL_NAME


class LongContextLLM(CustomLLM):
    """A local Hugging Face model that reads past its trained window, as a LlamaIndex LLM.

    ``metadata.context_window`` is the policy's reach (for SelfExtend(4, 1024) on an 8k model,
    29,696 tokens), not the model's ``max_position_embeddings``, so LlamaIndex packs prompts
    up to what the model can really read. ``chat`` uses the model's chat template; the async
    methods run the model in a worker thread and never block the event loop.

    >>> from entropy_retriever import SelfExtend
    >>> llm = LongContextLLM(policy=SelfExtend(group_size=4, window=1024))
    >>> llm.complete("Summarise: ...").text
    """

    model_name: str = Field(default=EMBEDDED_MODEL_NAME, description="The model's name or path.")
    max_new_tokens: int = Field(default=256, description="Tokens to generate per call.")
    _lm: Any = PrivateAttr()

    def __init__(
        self,
        model: Any = None,
        tokenizer: Any = None,
        *,
        policy: Any = None,
        max_new_tokens: int = 256,
        lm: Any = None,
        model_name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        from entropy_retriever import LongContextLM
        from entropy_retriever.integration import model_and_tokenizer

        if lm is None:
            model, tokenizer = model_and_tokenizer(model, tokenizer, "LongContextLLM")
            lm = LongContextLM(model, tokenizer, policy, max_new_tokens=max_new_tokens)
        name = model_name or getattr(lm.model.config, "name_or_path", "") or EMBEDDED_MODEL_NAME
        super().__init__(model_name=name, max_new_tokens=max_new_tokens, **kwargs)
        self._lm = lm

    @classmethod
    def class_name(cls) -> str:
        return "LongContextLLM"

    @property
    def lm(self):
        """The core LongContextLM."""
        return self._lm

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self._lm.context_window,
            num_output=self.max_new_tokens,
            is_chat_model=True,
            model_name=self.model_name,
        )

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _messages(messages: Sequence[ChatMessage]) -> list[dict]:
        out = []
        for m in messages:
            role = m.role.value if isinstance(m.role, MessageRole) else str(m.role)
            out.append({"role": role, "content": m.content or ""})
        return out

    def _prompt_ids(self, prompt: str, formatted: bool) -> list[int]:
        # A raw completion prompt is sent through the chat template unless it is already formatted.
        if formatted or not getattr(self._lm.tokenizer, "chat_template", None):
            return self._lm.encode(prompt)
        return self._lm.chat_prompt([{"role": "user", "content": prompt}])

    def _max_new(self, kwargs: dict) -> int:
        """The call's ``max_new_tokens`` (or ``max_tokens``), else the LLM's; a bad value is an error, never the default."""
        for name in ("max_new_tokens", "max_tokens"):
            if kwargs.get(name) is not None:
                return kwargs[name]  # LongContextLM checks it (a positive integer)
        return self.max_new_tokens

    @staticmethod
    def _stop(kwargs: dict):
        """The call's ``stop`` strings: generation ends at the first of them (a stopping criterion)."""
        return kwargs.get("stop")

    # ----------------------------------------------------------- completion
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        out = self._lm.generate_ids(self._prompt_ids(prompt, formatted), self._max_new(kwargs), stop=self._stop(kwargs))
        return CompletionResponse(text=out.text, raw={"prompt_tokens": out.prompt_tokens, "new_tokens": out.new_tokens})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        pieces = self._lm.stream_ids(self._prompt_ids(prompt, formatted), self._max_new(kwargs), stop=self._stop(kwargs))

        def gen() -> CompletionResponseGen:
            text = ""
            for piece in pieces:
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        ids = self._prompt_ids(prompt, formatted)
        stop = self._stop(kwargs)
        out = await asyncio.to_thread(lambda: self._lm.generate_ids(ids, self._max_new(kwargs), stop=stop))
        return CompletionResponse(text=out.text, raw={"prompt_tokens": out.prompt_tokens, "new_tokens": out.new_tokens})

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        from entropy_retriever.integration import iterate_in_thread

        ids = self._prompt_ids(prompt, formatted)
        max_new, stop = self._max_new(kwargs), self._stop(kwargs)

        async def gen() -> CompletionResponseAsyncGen:
            text = ""
            async for piece in iterate_in_thread(lambda: self._lm.stream_ids(ids, max_new, stop=stop)):
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return gen()

    # ----------------------------------------------------------------- chat
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        out = self._lm.chat(self._messages(messages), self._max_new(kwargs), stop=self._stop(kwargs))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=out.text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        pieces = self._lm.stream_chat(self._messages(messages), self._max_new(kwargs), stop=self._stop(kwargs))

        def gen() -> ChatResponseGen:
            text = ""
            for piece in pieces:
                text += piece
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=piece)

        return gen()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        converted, max_new, stop = self._messages(messages), self._max_new(kwargs), self._stop(kwargs)
        out = await asyncio.to_thread(lambda: self._lm.chat(converted, max_new, stop=stop))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=out.text))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        from entropy_retriever.integration import iterate_in_thread

        converted, max_new, stop = self._messages(messages), self._max_new(kwargs), self._stop(kwargs)

        async def gen() -> ChatResponseAsyncGen:
            text = ""
            async for piece in iterate_in_thread(lambda: self._lm.stream_chat(converted, max_new, stop=stop)):
                text += piece
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=piece)

        return gen()
