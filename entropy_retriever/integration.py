"""What the LlamaIndex and LangChain packages (and other framework adapters) build on.

The public API (``entropy_retriever``) is for users; this module declares, in one place,
the further names that framework adapters rely on, so that they never import internals. A
test holds the integration packages to it.
"""

from __future__ import annotations

from dataclasses import asdict

from .aio import iterate_in_thread
from .config import DEFAULT
from .files import DEFAULT_MAX_BYTES
from .fusion import FUSIONS
from .models import EMBEDDED_MODEL, model_and_tokenizer
from .scoring import METRICS
from .selection import Selection
from .signals import SIGNALS
from .tool import TOOL_DESCRIPTION, TOOL_NAME
from .toolcalls import parse_tool_calls

__all__ = [
    "DEFAULT",
    "EMBEDDED_MODEL_NAME",
    "DEFAULT_MAX_BYTES",
    "FUSIONS",
    "METRICS",
    "RETRIEVER_SELECTION",
    "SIGNALS",
    "Selection",
    "TOOL_DESCRIPTION",
    "TOOL_NAME",
    "iterate_in_thread",
    "model_and_tokenizer",
    "parse_tool_calls",
    "selection_kwargs",
]

EMBEDDED_MODEL_NAME = f"embedded {EMBEDDED_MODEL}"
"""How both frameworks name the embedded default model (in events, traces and metadata)."""

RETRIEVER_SELECTION = Selection(top_k=4)
"""What both frameworks' ``LongDocumentRetriever`` keep when not told: the 4 best segments."""


def selection_kwargs(selection: Selection) -> dict:
    """``top_k``, ``token_budget`` and ``threshold`` of ``selection``, as LongContextReader takes them."""
    return asdict(selection)
