"""entropy-retriever: let a language model read text far longer than its window.

This is the public API: the names a user needs (a test pins ``__all__``). More lives in the
modules, for those who need it: ``entropy_retriever.scoring`` (custom certainty metrics:
``register_metric``, ``TokenStats``, ``PromptTemplate``, ``CertaintyScorer``),
``entropy_retriever.segments`` (``Segmenter``), ``entropy_retriever.attention`` (the
``Policy`` protocol, ``choose_group_size``), and ``entropy_retriever.integration`` (what
framework adapters build on).
"""

import importlib as _importlib
import warnings as _warnings
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:  # what type checkers, IDEs and the API reference see; at run time, _HOMES below
    from .attention import LMInfinite, SelfExtend, extend_context
    from .errors import ContextTooLongError, EntropyRetrieverError, InputError, ModelLoadError
    from .files import FileAccess, FileAccessError
    from .llm import LongContextLM
    from .models import load_model
    from .reader import Answer, LongContextReader
    from .rerank import CertaintyReranker, Passage, RankedPassage
    from .selection import KeyContext, Selection
    from .tool import LongFileQA

from tqdm import TqdmWarning as _TqdmWarning

# transformers and this package import tqdm.auto, which warns "IProgress not found" in a notebook
# without ipywidgets (its text bars work): a library prints nothing its user did not ask for.
# Imported once here, quietly, so that no later import (of any submodule) says it again.
with _warnings.catch_warnings():
    _warnings.simplefilter("ignore", _TqdmWarning)
    import tqdm.auto as _tqdm_auto  # noqa: F401

# Where each public name lives. They are imported on first use (PEP 562), so that
# ``import entropy_retriever`` (and the command line's launcher) does not import torch:
# a Ctrl-C while torch loads is then the command line's to answer (exit 130, one line).
_HOMES = {
    "Answer": "reader",
    "CertaintyReranker": "rerank",
    "ContextTooLongError": "errors",
    "EntropyRetrieverError": "errors",
    "FileAccess": "files",
    "FileAccessError": "files",
    "InputError": "errors",
    "KeyContext": "selection",
    "LMInfinite": "attention",
    "LongContextLM": "llm",
    "LongContextReader": "reader",
    "LongFileQA": "tool",
    "ModelLoadError": "errors",
    "Passage": "rerank",
    "RankedPassage": "rerank",
    "Selection": "selection",
    "SelfExtend": "attention",
    "extend_context": "attention",
    "load_model": "models",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'entropy_retriever' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Answer",
    "CertaintyReranker",
    "ContextTooLongError",
    "EntropyRetrieverError",
    "FileAccess",
    "FileAccessError",
    "InputError",
    "KeyContext",
    "LMInfinite",
    "LongContextLM",
    "LongContextReader",
    "LongFileQA",
    "ModelLoadError",
    "Passage",
    "RankedPassage",
    "Selection",
    "SelfExtend",
    "extend_context",
    "load_model",
]

__version__ = "0.1.0"
