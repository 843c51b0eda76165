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

    Keep the ``top_k`` best segments (4 when no rule is given), what fits ``token_budget``
    tokens, or (with ``signals=("certainty",)``) those scored below ``threshold``; the same
    document, query and budget give the same spans as the LangChain ``LongDocumentRetriever``.
    Any other keyword the core ``LongContextReader`` takes (``segment_tokens``, ``metric``,
    ``template``, ``signals``, a ``model`` and ``tokenizer``) is passed through.
    """

    def __init__(
        self,
        document: Union[str, os.PathLike],
        *,
        top_k: Optional[int] = None,
        token_budget: Optional[int] = None,
        threshold: Optional[float] = None,
        reader: Any = None,
        callback_manager: Optional[CallbackManager] = None,
        **reader_kwargs: Any,
    ) -> None:
        from entropy_retriever import InputError, LongContextReader
        from entropy_retriever.integration import RETRIEVER_SELECTION, Selection, selection_kwargs

        if not isinstance(document, (str, os.PathLike)):
            raise InputError("LongDocumentRetriever reads one document: pass its text or a pathlib.Path")
        self._selection = None  # the reader's own
        if reader is None:
            selection = Selection.of(top_k, token_budget, threshold, default=RETRIEVER_SELECTION)
            reader = LongContextReader(progress=False, **selection_kwargs(selection), **reader_kwargs)
        elif reader_kwargs:
            raise InputError(f"pass either reader=... or reader settings, not both ({', '.join(reader_kwargs)})")
        else:
            self._selection = Selection.of(top_k, token_budget, threshold, default=reader.selection)
        self._document = document
        self._reader = reader
        self._source = os.fspath(document) if isinstance(document, os.PathLike) else ""
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        key = self._reader.select(self._document, query_bundle.query_str, selection=self._selection)
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
                    "relevance": span.relevance,
                    "metric": key.metric,
                },
                excluded_llm_metadata_keys=["start_char", "end_char", "segments", "relevance", "metric"],
                excluded_embed_metadata_keys=["start_char", "end_char", "segments", "relevance", "metric"],
            )
            nodes.append(NodeWithScore(node=node, score=span.relevance))
        return nodes

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)
