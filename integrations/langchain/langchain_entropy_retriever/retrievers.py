"""LongDocumentRetriever: the key spans of one very long text or file, as LangChain documents."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Optional, Union

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from entropy_retriever.fusion import DEFAULT_SIGNALS, SIGNALS
from entropy_retriever.scoring import DEFAULT_METRIC


class LongDocumentRetriever(BaseRetriever):
    """Split one long text into segments, score each against the query (by default the fusion
    of the model's certainty, BM25 and a sentence embedder), and return the ``k`` best
    segments as documents, in document order.

    ``k`` can be set in the constructor or per call: ``retriever.invoke(query, k=2)``.
    Each document's metadata holds ``source``, ``start_index``, ``end_index``, ``segment``,
    ``relevance`` (in (0, 1], 1 for the best) and ``signals`` (each signal's own score).

    >>> retriever = LongDocumentRetriever(document=Path("novel.txt"), k=4)
    >>> retriever.invoke("Who sent the letter?")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    document: Union[str, os.PathLike] = Field(description="The text, or a pathlib.Path to a text file.")
    k: int = Field(default=4, description="How many segments to return.")
    segment_tokens: int = Field(default=512, description="Tokens per segment.")
    metric: str = Field(default=DEFAULT_METRIC, description="The certainty metric (entropy_retriever.scoring.METRICS).")
    signals: tuple[str, ...] = Field(default=DEFAULT_SIGNALS, description=f"Signals to fuse, from {SIGNALS}.")
    _scorer: Any = PrivateAttr()
    _segmenter: Any = PrivateAttr()

    def __init__(self, *, model: Any = None, tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from entropy_retriever import CertaintyReranker, Segmenter

        reranker = CertaintyReranker(model, tokenizer, top_n=max(1, self.k), metric=self.metric, signals=self.signals)
        self._scorer = reranker
        self._segmenter = Segmenter(reranker.scorer.tokenizer, self.segment_tokens)

    def _get_relevant_documents(
        self, query: str, *, run_manager: Optional[CallbackManagerForRetrieverRun] = None, k: Optional[int] = None, **kwargs: Any
    ) -> list[Document]:
        from entropy_retriever import InputError, Passage

        k = self.k if k is None else k
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        segments = list(self._segmenter.split(self.document))
        kept = self._scorer.rerank([Passage(s.text, "", s.start) for s in segments], query, top_n=k)
        source = os.fspath(self.document) if isinstance(self.document, os.PathLike) else ""
        return [
            Document(
                page_content=segments[p.index].text,
                metadata={"source": source, "start_index": segments[p.index].start, "end_index": segments[p.index].end,
                          "segment": segments[p.index].index, "relevance": p.relevance, "signals": p.signals},
            )
            for p in kept
        ]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: Optional[AsyncCallbackManagerForRetrieverRun] = None, k: Optional[int] = None, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self._get_relevant_documents, query, k=k)
