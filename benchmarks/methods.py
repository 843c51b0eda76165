"""The four ways a benchmark reads a long prompt: bare (truncated), SelfExtend, LM-Infinite, XL3M.

``open_method`` gives back a reader whose ``LongContextLM`` switches its policy on for each call
(nothing stays switched on the shared model), with two entry points: ``raw(prompt)`` reads a plain-text prompt
whole (the passkey template has no chat turns) and ``ask(context, question, system)``
asks a question about a context through the chat template. The XL3M reader answers both
by selecting a key context first (and reads that with SelfExtend if it exceeds the window).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

METHODS = ("bare", "selfextend", "lminfinite", "xl3m")


@dataclass(frozen=True)
class MethodSettings:
    group_size: int = 4
    window: int = 1024
    n_local: int = 4096
    n_global: int = 64
    max_new_tokens: int = 32

    def label(self, method: str) -> str:
        return {
            "bare": "bare (truncated to its window)",
            "selfextend": f"SelfExtend({self.group_size}, {self.window})",
            "lminfinite": f"LMInfinite({self.n_local}, {self.n_global})",
            "xl3m": "XL3M reader",
        }[method]


class _Reader:
    def __init__(self, model, tokenizer, method: str, settings: MethodSettings) -> None:
        from entropy_retriever.attention import LMInfinite, SelfExtend
        from entropy_retriever.llm import LongContextLM
        from entropy_retriever.reader import LongContextReader

        self.method, self.tokenizer = method, tokenizer
        self.new = settings.max_new_tokens
        policy = {"selfextend": SelfExtend(settings.group_size, settings.window),
                  "lminfinite": LMInfinite(settings.n_local, settings.n_global)}.get(method)
        self.lm = LongContextLM(model, tokenizer, policy, max_new_tokens=self.new)
        self.window = model.config.max_position_embeddings
        self.reader = (LongContextReader(model, tokenizer, max_new_tokens=self.new, progress=False)
                       if method == "xl3m" else None)

    def _fit(self, ids: list[int]) -> list[int]:
        """The bare model keeps the first token (BOS) and the newest ones that fit."""
        room = self.window - self.new - 1
        if self.method != "bare" or len(ids) <= room:
            return ids
        return ids[:1] + ids[-(room - 1):]

    def raw(self, prompt: str, context: str, question: str) -> str:
        if self.reader is not None:
            return self.reader.answer(context, question).text
        ids = self.tokenizer(prompt)["input_ids"]
        return self.lm.generate_ids(self._fit(ids), self.new).text

    def ask(self, context: str, question: str, system: str, suffix: str = "") -> str:
        if self.reader is not None:
            return self.reader.answer(context, question).text

        def prompt(text: str) -> list[int]:
            return self.lm.chat_prompt([
                {"role": "system", "content": system},
                {"role": "user", "content": f"{text}\n\n{question}{suffix}"},
            ])

        ids = prompt(context)
        if self.method == "bare" and len(ids) + self.new > self.window:
            # Keep the newest context tokens that fit beside the system turn and the question.
            offsets = self.tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            overhead = len(ids) - len(offsets) + 8  # 8 tokens of slack for merges at the joins
            keep = self.window - self.new - overhead
            ids = prompt(context[offsets[len(offsets) - keep][0]:])
        return self.lm.generate_ids(ids, self.new).text


@contextmanager
def open_method(model, tokenizer, method: str, settings: MethodSettings):
    """A reader for ``method`` on ``model`` (its LM switches its policy on per call, so nothing is left to undo)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")
    yield _Reader(model, tokenizer, method, settings)
