"""entropy-retriever: let a language model read text far longer than its window.

This is the public API: the names a user needs (a test pins ``__all__``). More lives in the
modules, for those who need it: ``entropy_retriever.scoring`` (custom certainty metrics:
``register_metric``, ``TokenStats``, ``PromptTemplate``, ``CertaintyScorer``),
``entropy_retriever.segments`` (``Segmenter``), ``entropy_retriever.attention`` (the
``Policy`` protocol, ``choose_group_size``), and ``entropy_retriever.integration`` (what
framework adapters build on).
"""

import warnings as _warnings

from tqdm import TqdmWarning as _TqdmWarning

# transformers imports tqdm.auto, which warns "IProgress not found" in a notebook without
# ipywidgets (its text bars work): a library prints nothing its user did not ask for.
with _warnings.catch_warnings():
    _warnings.simplefilter("ignore", _TqdmWarning)
    from .attention import LMInfinite, SelfExtend, extend_context
    from .errors import ContextTooLongError, EntropyRetrieverError, InputError, ModelLoadError
    from .files import FileAccess, FileAccessError
    from .llm import LongContextLM
    from .models import load_model
    from .reader import Answer, LongContextReader
    from .rerank import CertaintyReranker, Passage, RankedPassage
    from .selection import KeyContext, Selection
    from .tool import LongFileQA

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
