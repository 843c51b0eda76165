"""Errors raised by entropy-retriever. Every message says what was wrong and what to do."""

from __future__ import annotations

import numbers
import re


class EntropyRetrieverError(Exception):
    """Base class of every error this library raises on purpose."""


class InputError(EntropyRetrieverError, ValueError):
    """The context, question or an option is unusable as given."""


class ModelLoadError(EntropyRetrieverError, RuntimeError):
    """A model or tokenizer could not be found or loaded."""


class ContextTooLongError(InputError):
    """A prompt (or a question) does not fit the reading model's window: an input error, so that
    the agent tools return it as a refusal the agent can act on."""


def check_positive(name: str, value) -> int:
    """``value`` if it is a positive integer (not a bool), else an InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


_SURROGATE = None


def check_text(value, what: str, *, empty_ok: bool = True) -> str:
    """``value`` if it is a string a tokenizer can encode, else an InputError naming ``what``.

    Refuses non-strings (``bytes`` included: decode them first) and strings holding a lone
    UTF-16 surrogate (``"\\ud800"``, the trace of a bad decode), which no tokenizer can encode.
    """
    global _SURROGATE
    if isinstance(value, (bytes, bytearray)):
        raise InputError(f"{what} is bytes: decode it to a string first (for example data.decode('utf-8'))")
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise InputError(f"{what} is empty: pass some text")
    if _SURROGATE is None:

        _SURROGATE = re.compile("[\ud800-\udfff]")
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise InputError(
            f"{what} holds a lone surrogate ({bad.group()!r} at character {bad.start()}), which is not "
            "valid Unicode and cannot be tokenised: it usually comes from decoding bytes with "
            "errors='surrogateescape'; decode with errors='replace' instead"
        )
    return value
