"""LongDocumentRetriever: the key segments of one very long document or file, as LlamaIndex nodes."""

from __future__ import annotations

import asyncio
import os
from typing import Any, List, Optional, Union

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode


class LongDocumentRetriever(BaseRetriever):
    """Split one long text (a string or a file path) into segments, score each against the
    query (by default the fusion of the model's certainty, BM25 and a sentence embedder), and
    return the kept spans as nodes, in document order.

    Each node carries ``start_char_idx``/``end_char_idx`` and, in its metadata, the source,
    the character span and the segment numbers it covers. ``score`` is the span's relevance
    in (0, 1], 1 for the best segment.

    >>> retriever = LongDocumentRetriever(Path("novel.txt"), top_k=4)
    >>> nodes = retriever.retrieve("Who sent the letter?")

    Any keyword the core ``LongContextReader`` takes (``segment_tokens``, ``token_budget``,
    ``metric``, ``template``, ``signals``, a ``model`` and ``tokenizer``) is passed through.
    """

    def __init__(
        self,
        document: Union[str, os.PathLike],
        *,
        top_k: Optional[int] = 4,
        reader: Any = None,
        callback_manager: Optional[CallbackManager] = None,
        **reader_kwargs: Any,
    ) -> None:
        from entropy_retriever import InputError, LongContextReader

        if not isinstance(document, (str, os.PathLike)):
            raise InputError("LongDocumentRetriever reads one document: pass its text or a pathlib.Path")
        if reader is None:
            if "token_budget" in reader_kwargs or "threshold" in reader_kwargs:
                top_k = None
            reader = LongContextReader(top_k=top_k, progress=False, **reader_kwargs)
        elif reader_kwargs:
            raise InputError(f"pass either reader=... or reader settings, not both ({', '.join(reader_kwargs)})")
        self._document = document
        self._reader = reader
        self._source = os.fspath(document) if isinstance(document, os.PathLike) else ""
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        key = self._reader.select(self._document, query_bundle.query_str)
        nodes = []
        for span in key.spans:
            node = TextNode(
                text=span.text,
                start_char_idx=span.start,
                end_char_idx=span.end,
                metadata={
                    "source": self._source,
                    "start_char": span.start,
                    "end_char": span.end,
                    "segments": list(span.segment_indices),
                    "metric": key.metric,
                },
                excluded_llm_metadata_keys=["start_char", "end_char", "segments", "metric"],
                excluded_embed_metadata_keys=["start_char", "end_char", "segments", "metric"],
            )
            nodes.append(NodeWithScore(node=node, score=span.relevance))
        return nodes

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)
