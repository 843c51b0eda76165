"""LongDocumentRetriever: the key spans of one very long text or file, as LangChain documents."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Optional, Union

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from entropy_retriever.integration import (
    DEFAULT,
    FUSIONS,
    RETRIEVER_SELECTION,
    SIGNALS,
    Selection,
    selection_kwargs,
)


class LongDocumentRetriever(BaseRetriever):
    """Split one long text into segments, score each against the query (by default the fusion
    of the model's certainty, BM25 and a sentence embedder), keep the best, and return them as
    documents in document order, adjacent kept segments merged into one span.

    Keep the ``k`` best segments (4 when neither is given) or what fits ``token_budget``
    tokens; ``k`` can also be given per call: ``retriever.invoke(query, k=2)``. The same
    document, query and budget give the same spans as the LlamaIndex ``LongDocumentRetriever``.
    Each document's metadata holds ``source``, ``start_index``, ``end_index``, ``segments``
    (the segment numbers the span covers) and ``relevance`` (in (0, 1], 1 for the best).

    >>> retriever = LongDocumentRetriever(document=Path("novel.txt"), k=4)
    >>> retriever.invoke("Who sent the letter?")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    document: Union[str, os.PathLike] = Field(description="The text, or a pathlib.Path to a text file.")
    k: Optional[int] = Field(default=None, description="How many segments to keep (4 when neither k nor token_budget is set).")
    token_budget: Optional[int] = Field(default=None, description="Keep the best segments that fit this many tokens.")
    segment_tokens: int = Field(default=DEFAULT.segment_tokens, description="Tokens per segment.")
    metric: str = Field(default=DEFAULT.metric_name, description="The certainty metric (entropy_retriever.integration.METRICS).")
    signals: tuple[str, ...] = Field(default=DEFAULT.signals, description=f"Signals to fuse, from {tuple(SIGNALS)}.")
    fusion: str = Field(default=DEFAULT.fusion, description=f"How the signals are fused, from {tuple(FUSIONS)}.")
    hops: int = Field(default=DEFAULT.hops, description="Times the best segments are rescored given the first pick (0: off).")
    _reader: Any = PrivateAttr()

    def __init__(self, *, model: Any = None, tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from entropy_retriever import InputError, LongContextReader

        if not isinstance(self.document, (str, os.PathLike)):
            raise InputError("LongDocumentRetriever reads one document: pass its text or a pathlib.Path")
        selection = Selection.of(self.k, self.token_budget, default=RETRIEVER_SELECTION)
        self._reader = LongContextReader(
            model, tokenizer, segment_tokens=self.segment_tokens, metric=self.metric, signals=self.signals,
            fusion=self.fusion, hops=self.hops,
            progress=False, **selection_kwargs(selection),
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: Optional[CallbackManagerForRetrieverRun] = None, k: Optional[int] = None, **kwargs: Any
    ) -> list[Document]:
        selection = None if k is None else Selection(top_k=k)
        key = self._reader.select(self.document, query, selection=selection)
        source = os.fspath(self.document) if isinstance(self.document, os.PathLike) else ""
        return [
            Document(
                page_content=span.text,
                metadata={"source": source, "start_index": span.start, "end_index": span.end,
                          "segments": list(span.segment_indices), "relevance": span.relevance},
            )
            for span in key.spans
        ]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: Optional[AsyncCallbackManagerForRetrieverRun] = None, k: Optional[int] = None, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self._get_relevant_documents, query, k=k)
