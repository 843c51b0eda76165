"""LongDocumentRetriever: the key spans of one very long text or file, as LangChain documents."""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any, Optional, Union

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr


class LongDocumentRetriever(BaseRetriever):
    """Split one long text into segments, score each against the query by the model's
    certainty, and return the ``k`` most certain segments as documents, in document order.

    ``k`` can be set in the constructor or per call: ``retriever.invoke(query, k=2)``.
    Each document's metadata holds ``source``, ``start_index``, ``end_index`` and ``certainty``.

    >>> retriever = LongDocumentRetriever(document=Path("novel.txt"), k=4)
    >>> retriever.invoke("Who sent the letter?")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    document: Union[str, os.PathLike] = Field(description="The text, or a pathlib.Path to a text file.")
    k: int = Field(default=4, description="How many segments to return.")
    segment_tokens: int = Field(default=512, description="Tokens per segment.")
    metric: str = Field(default="question_nll", description="question_nll, entropy_mean or entropy_last.")
    _scorer: Any = PrivateAttr()
    _segmenter: Any = PrivateAttr()

    def __init__(self, *, model: Any = None, tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from entropy_retriever import CertaintyReranker, Segmenter

        reranker = CertaintyReranker(model, tokenizer, top_n=max(1, self.k), metric=self.metric)
        self._scorer = reranker
        self._segmenter = Segmenter(reranker.scorer.tokenizer, self.segment_tokens)

    def _get_relevant_documents(
        self, query: str, *, run_manager: Optional[CallbackManagerForRetrieverRun] = None, k: Optional[int] = None, **kwargs: Any
    ) -> list[Document]:
        from entropy_retriever import InputError

        k = self.k if k is None else k
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        segments = list(self._segmenter.split(self.document))
        scores = self._scorer.score([s.text for s in segments], query)
        best = sorted(range(len(segments)), key=lambda i: (scores[i], i))[:k]
        source = os.fspath(self.document) if isinstance(self.document, os.PathLike) else ""
        return [
            Document(
                page_content=segments[i].text,
                metadata={"source": source, "start_index": segments[i].start, "end_index": segments[i].end,
                          "segment": segments[i].index, "certainty": math.exp(-scores[i])},
            )
            for i in sorted(best)
        ]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: Optional[AsyncCallbackManagerForRetrieverRun] = None, k: Optional[int] = None, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self._get_relevant_documents, query, k=k)
