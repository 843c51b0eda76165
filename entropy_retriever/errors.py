"""Errors raised by entropy-retriever. Every message says what was wrong and what to do."""

from __future__ import annotations


class EntropyRetrieverError(Exception):
    """Base class of every error this library raises on purpose."""


class InputError(EntropyRetrieverError, ValueError):
    """The context, question or an option is unusable as given."""


class ModelLoadError(EntropyRetrieverError, RuntimeError):
    """A model or tokenizer could not be found or loaded."""


class ContextTooLongError(EntropyRetrieverError, ValueError):
    """A prompt does not fit the reading model's window."""
