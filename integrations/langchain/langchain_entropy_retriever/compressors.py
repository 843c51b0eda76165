"""CertaintyCompressor: a LangChain document compressor over entropy_retriever's CertaintyReranker."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr

from entropy_retriever.integration import DEFAULT, FUSIONS, SIGNALS


class CertaintyCompressor(BaseDocumentCompressor):
    """Keep the retrieved documents that matter most for the query: by default the fusion of a local model's certainty (it reads each document with the query), BM25 and a
    sentence embedder; ``signals=("certainty",)`` uses the model alone.

    Returns copies of the kept documents in document order (by ``metadata["source"]``, the
    source holding the best document first, then by ``metadata["start_index"]``, which
    text splitters add with ``add_start_index=True``), with ``metadata["relevance"]`` (in
    (0, 1], 1 for the best) and ``metadata["signals"]`` (each signal's own score, lower =
    better) added; the originals are not modified.

    >>> compressor = CertaintyCompressor(top_n=3)
    >>> retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    top_n: Optional[int] = Field(default=None, description="Documents to keep (3 when neither top_n nor token_budget is set).")
    token_budget: Optional[int] = Field(default=None, description="Keep the most certain documents that fit this many tokens.")
    metric: str = Field(default=DEFAULT.metric_name, description="The certainty metric (entropy_retriever.scoring.METRICS).")
    signals: tuple[str, ...] = Field(default=DEFAULT.signals, description=f"Signals to fuse, from {tuple(SIGNALS)}.")
    fusion: str = Field(default=DEFAULT.fusion, description=f"How the signals are fused, from {tuple(FUSIONS)}.")
    hops: int = Field(default=DEFAULT.hops, description="Times the best documents are rescored given the first pick (0: off).")
    _reranker: Any = PrivateAttr()

    def __init__(self, *, model: Any = None, tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from entropy_retriever import CertaintyReranker

        self._reranker = CertaintyReranker(model, tokenizer, top_n=self.top_n, token_budget=self.token_budget,
                                           metric=self.metric, signals=self.signals, fusion=self.fusion, hops=self.hops)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Optional[Callbacks] = None
    ) -> Sequence[Document]:
        from entropy_retriever import Passage

        passages = [
            Passage(
                text=d.page_content,
                source=str(d.metadata.get("source", "")),
                position=d.metadata.get("start_index", i) if isinstance(d.metadata.get("start_index", i), (int, float)) else i,
            )
            for i, d in enumerate(documents)
        ]
        kept = self._reranker.rerank(passages, query)
        return [
            Document(
                page_content=documents[k.index].page_content,
                metadata={**documents[k.index].metadata, "relevance": k.relevance, "signals": k.signals},
                id=documents[k.index].id,
            )
            for k in kept
        ]

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Optional[Callbacks] = None
    ) -> Sequence[Document]:
        return await asyncio.to_thread(self.compress_documents, documents, query, callbacks)
