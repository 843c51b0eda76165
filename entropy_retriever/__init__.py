"""entropy-retriever: let a language model read text far longer than its window.

This is the public API.
"""

from .attention import LMInfinite, SelfExtend, choose_group_size, extend_context
from .errors import ContextTooLongError, EntropyRetrieverError, InputError, ModelLoadError
from .files import FileAccess, FileAccessError
from .llm import LongContextLM
from .models import load_model
from .reader import Answer, LongContextReader
from .rerank import CertaintyReranker, Passage, RankedPassage
from .scoring import CertaintyScorer, PromptTemplate, TokenStats, register_metric
from .segments import Document, Segment, Segmenter
from .selection import KeyContext
from .tool import LongFileQA

__all__ = [
    "Answer",
    "CertaintyReranker",
    "CertaintyScorer",
    "ContextTooLongError",
    "Document",
    "EntropyRetrieverError",
    "FileAccess",
    "FileAccessError",
    "InputError",
    "LMInfinite",
    "KeyContext",
    "LongContextLM",
    "LongContextReader",
    "LongFileQA",
    "ModelLoadError",
    "Passage",
    "PromptTemplate",
    "RankedPassage",
    "Segment",
    "Segmenter",
    "SelfExtend",
    "TokenStats",
    "choose_group_size",
    "extend_context",
    "load_model",
    "register_metric",
]

__version__ = "0.1.0"
