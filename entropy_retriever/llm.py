"""LongContextLM: generate, stream and chat with a causal LM, under an attention policy it owns.

The policy (SelfExtend or LM-Infinite, from :mod:`entropy_retriever.attention`) is what
lets the model read past its trained window; ``context_window`` reports the policy's
reach, not the model's ``max_position_embeddings``. The policy is switched on for each call
only, under the model's lock, so several LongContextLMs (with different policies, or none)
can share one model, also from several threads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import transformers
from packaging.version import Version
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from .attention.cache import cache_bytes, make_cache
from .attention.registry import policy_active, validate_policy
from .errors import ContextTooLongError, InputError, check_positive, check_text
from .models import load_model
from .runtime import model_window
from .toolcalls import prepare_messages

__all__ = ["LongContextLM", "Generation"]

Message = dict  # {"role": "user" | "assistant" | "system" | "tool", "content": str, ...}


@dataclass
class Generation:
    """Generated text, the prompt's and the output's sizes in tokens, and the bytes of keys and
    values the decoding cache held at the end (what a bounded LM-Infinite cache keeps flat)."""

    text: str
    prompt_tokens: int
    new_tokens: int
    cache_bytes: int = 0


class _PastTheWindow(logging.Filter):
    """Drops transformers' "friendly reminder" that generation went past max_position_embeddings:
    reading past the trained window is what the policies are for, and without one ``check_fits``
    refuses such a prompt before generating."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "friendly reminder" not in record.getMessage()


logging.getLogger("transformers.generation.stopping_criteria").addFilter(_PastTheWindow())


def _stop_strings(stop) -> tuple[str, ...]:
    """``stop`` (None, a string or a list of strings) as a tuple of non-empty strings."""
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    try:
        stop = tuple(stop)
    except TypeError:
        raise InputError(f"stop must be a string or a list of strings, got {type(stop).__name__}") from None
    for s in stop:
        if not isinstance(s, str) or not s:
            raise InputError(f"stop must hold non-empty strings, got {s!r}")
        check_text(s, "a stop string")
    return stop


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first of the stop strings, and whether one was found."""
    first = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text, False) if first < 0 else (text[:first], True)


class LongContextLM:
    """A model, its tokenizer and an optional attention policy, ready to generate.

    >>> lm = LongContextLM.from_pretrained()            # the embedded default
    >>> lm.chat([{"role": "user", "content": "Hi"}]).text
    """

    def __init__(self, model, tokenizer, policy=None, *, max_new_tokens: int = 128, backend: str = "auto") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.policy = policy
        self.backend = backend
        self.max_new_tokens = check_positive("max_new_tokens", max_new_tokens)
        self.trained_window = model_window(model)
        if policy is not None:
            validate_policy(model, policy, backend=backend)  # once per (model, policy): a clear error now

    @classmethod
    def from_pretrained(cls, name_or_path=None, *, policy=None, device="auto", dtype="auto", **kwargs):

        check_positive("max_new_tokens", kwargs.get("max_new_tokens", 128))  # before the slow load
        model, tokenizer = load_model(name_or_path, device=device, dtype=dtype)
        return cls(model, tokenizer, policy, **kwargs)

    def running(self):
        """A block in which the model runs with this LM's policy (or none), holding the model's lock."""
        return policy_active(self.model, self.policy, backend=self.backend)

    # --------------------------------------------------------------- windows
    @property
    def context_window(self) -> int:
        """How many tokens the model can read: the policy's reach, else the trained window."""
        if self.policy is not None and self.trained_window is not None:
            return self.policy.reach(self.trained_window)
        return self.trained_window or 2048

    # --------------------------------------------------------------- prompts
    def chat_prompt(self, messages: Sequence[Message], tools: list | None = None) -> list[int]:
        if isinstance(messages, (str, dict)) or not messages:
            raise InputError("chat needs a list of at least one message, such as [{'role': 'user', 'content': 'Hi'}]")
        for number, m in enumerate(messages):
            if not isinstance(m, dict) or "role" not in m:
                raise InputError(f"message {number} must be a dict with 'role' and 'content', got {m!r:.80}")
            if m.get("content") is not None:
                check_text(m["content"], f"the content of message {number}")

        rendered, tools = prepare_messages(list(messages), tools, self.tokenizer)
        if getattr(self.tokenizer, "chat_template", None):
            kwargs = {"tools": tools} if tools else {}
            ids = self.tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=True, **kwargs)
            if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
                ids = ids["input_ids"]
            return list(ids)
        text = "\n".join(f"{m['role']}: {m['content']}" for m in rendered) + "\nassistant:"
        return self.tokenizer(text)["input_ids"]

    def encode(self, prompt: str) -> list[int]:
        check_text(prompt, "the prompt")
        return self.tokenizer(prompt)["input_ids"]

    def check_fits(self, n_prompt: int, max_new_tokens: int) -> None:
        limit = self.context_window
        if n_prompt + max_new_tokens > limit:
            how = (
                "use a larger SelfExtend group size or LM-Infinite"
                if self.policy is not None
                else "pass policy=SelfExtend(...) or LMInfinite(...) to read past the trained window, "
                "or select a smaller key context (lower token_budget / top_k)"
            )
            raise ContextTooLongError(
                f"the prompt takes {n_prompt} tokens and {max_new_tokens} more are to be generated, "
                f"but the model reads at most {limit} tokens: {how}"
            )

    # ------------------------------------------------------------ generation
    def _generate_kwargs(self, ids: list[int], max_new_tokens: int | None, streamer=None, max_time: float | None = None,
                         stop: tuple[str, ...] = ()) -> dict:
        max_new = self.max_new_tokens if max_new_tokens is None else check_positive("max_new_tokens", max_new_tokens)
        if not ids:
            raise InputError("the prompt is empty: pass some text to continue (or a chat message)")
        self.check_fits(len(ids), max_new)
        input_ids = torch.tensor([ids], device=self.model.device)
        kwargs = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if streamer is not None:
            kwargs["streamer"] = streamer
        if max_time is not None:  # transformers stops generating after this many seconds
            kwargs["max_time"] = float(max_time)
        cache = None if self.policy is None else make_cache(self.model, self.policy)
        if cache is not None:
            kwargs[_cache_kwarg(self.model)] = cache
        if stop:  # transformers' StopStringCriteria: generation ends at the token that completes one
            kwargs["stop_strings"] = list(stop)
            kwargs["tokenizer"] = self.tokenizer
        return kwargs

    def generate_ids(self, ids: list[int], max_new_tokens: int | None = None, *, max_time: float | None = None,
                     stop=None) -> Generation:
        """Greedy generation from token ids.

        Generation ends after ``max_new_tokens``, after ``max_time`` seconds if given, or as soon as
        the text holds one of the ``stop`` strings (a string or a list); the text is cut before it.
        """
        stop = _stop_strings(stop)
        kwargs = self._generate_kwargs(ids, max_new_tokens, max_time=max_time, stop=stop)
        with self.running(), torch.inference_mode():
            out = self.model.generate(**kwargs, return_dict_in_generate=True)
        new = out.sequences[0, len(ids):]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        text, _ = cut_at_stop(text, stop)
        return Generation(text=text.strip(), prompt_tokens=len(ids), new_tokens=int(new.numel()),
                          cache_bytes=cache_bytes(_output_cache(out)))

    def generate(self, prompt: str, max_new_tokens: int | None = None, *, stop=None) -> Generation:
        return self.generate_ids(self.encode(prompt), max_new_tokens, stop=stop)

    def chat(self, messages: Sequence[Message], max_new_tokens: int | None = None, tools=None, *, stop=None) -> Generation:
        return self.generate_ids(self.chat_prompt(messages, tools), max_new_tokens, stop=stop)

    def stream_ids(self, ids: list[int], max_new_tokens: int | None = None, *, max_time: float | None = None,
                   stop=None) -> Iterator[str]:
        """Yield text pieces as they are generated (generation runs in a worker thread).

        Closing the iterator early (``break``, ``close()``, garbage collection) stops the
        generation at its next token instead of letting it run to ``max_new_tokens``. With
        ``stop`` strings, generation ends at the token that completes one, and the text before it
        is all that is yielded (a piece that may begin a stop string is held back until it is clear).
        """

        stops = _stop_strings(stop)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs(ids, max_new_tokens, streamer, max_time=max_time, stop=stops)
        closed = threading.Event()

        class _StopWhenClosed(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), closed.is_set(), dtype=torch.bool, device=input_ids.device)

        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopWhenClosed()])
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self.running(), torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # surfaced to the reader below, never swallowed
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            pieces = (piece for piece in streamer if piece)
            yield from (_until_stop(pieces, stops) if stops else pieces)
        finally:
            closed.set()  # a no-op when generation has ended; otherwise it ends at the next token
            worker.join()
        if failure:
            raise failure[0]

    def stream(self, prompt: str, max_new_tokens: int | None = None, *, stop=None) -> Iterator[str]:
        return self.stream_ids(self.encode(prompt), max_new_tokens, stop=stop)

    def stream_chat(self, messages: Sequence[Message], max_new_tokens: int | None = None, tools=None, *,
                    stop=None) -> Iterator[str]:
        return self.stream_ids(self.chat_prompt(messages, tools), max_new_tokens, stop=stop)


def _until_stop(pieces: Iterator[str], stops: tuple[str, ...]) -> Iterator[str]:
    """The text of ``pieces`` up to the first stop string; what may begin one is held back."""
    held = ""
    for piece in pieces:
        held += piece
        text, found = cut_at_stop(held, stops)
        if found:
            if text:
                yield text
            return
        # Keep the longest tail of ``held`` that is the start of a stop string.
        keep = max((n for s in stops for n in range(1, min(len(s), len(held)) + 1) if held.endswith(s[:n])), default=0)
        if len(held) > keep:
            yield held[: len(held) - keep]
            held = held[len(held) - keep:]
    if held:
        yield held


def _output_cache(out):
    """The cache a ``generate`` output holds: ``cache`` from transformers 5.25 on (reading the old
    ``past_key_values`` name there prints a deprecation notice), ``past_key_values`` before."""
    names = getattr(out, "__dataclass_fields__", {})
    return getattr(out, "cache" if "cache" in names else "past_key_values", None)


def _cache_kwarg(model) -> str:
    """``generate``'s name for a cache object: ``cache`` from transformers 5.25 on (it deprecates
    ``past_key_values``), ``past_key_values`` before."""

    return "cache" if Version(transformers.__version__).release >= (5, 25) else "past_key_values"
