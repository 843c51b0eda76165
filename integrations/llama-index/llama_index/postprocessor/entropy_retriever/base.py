"""CertaintyRerank: a LlamaIndex node postprocessor over entropy_retriever's CertaintyReranker."""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from entropy_retriever.integration import DEFAULT, EMBEDDED_MODEL_NAME, FUSIONS, SIGNALS

dispatcher = get_dispatcher(__name__)


class CertaintyRerank(BaseNodePostprocessor):
    """Rescore retrieved nodes for the query; keep the best, in document order.

    By default a node's rank fuses (by reciprocal rank) a local model's certainty about the
    query after reading the node, BM25 and a sentence embedder; ``signals=("certainty",)``
    uses the model alone. The kept nodes come back grouped by source document (the one
    holding the best node first) and by position inside it, with their metadata untouched;
    ``score`` is the relevance in (0, 1], 1 for the best node.

    >>> rerank = CertaintyRerank(top_n=3)                 # the embedded SmolLM2 model
    >>> engine = index.as_query_engine(similarity_top_k=10, node_postprocessors=[rerank])
    """

    top_n: Optional[int] = Field(default=None, description="Number of nodes to keep (3 when neither top_n nor token_budget is set).")
    token_budget: Optional[int] = Field(default=None, description="Keep the most certain nodes that fit this many tokens.")
    metric: str = Field(default=DEFAULT.metric_name, description="The certainty metric (entropy_retriever.scoring.METRICS).")
    signals: tuple[str, ...] = Field(default=DEFAULT.signals, description=f"Signals to fuse, from {tuple(SIGNALS)}.")
    fusion: str = Field(default=DEFAULT.fusion, description=f"How the signals are fused, from {tuple(FUSIONS)}.")
    hops: int = Field(default=DEFAULT.hops, description="Times the best nodes are rescored given the first pick (0: off).")
    model_name: str = Field(default=EMBEDDED_MODEL_NAME, description="The scoring model, for events.")
    _reranker: Any = PrivateAttr()

    def __init__(
        self,
        top_n: Optional[int] = None,
        *,
        token_budget: Optional[int] = None,
        metric: str = DEFAULT.metric_name,
        signals: tuple[str, ...] = DEFAULT.signals,
        fusion: str = DEFAULT.fusion,
        hops: int = DEFAULT.hops,
        model: Any = None,
        tokenizer: Any = None,
        model_name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        try:
            from entropy_retriever import CertaintyReranker
        except ImportError as exc:  # pragma: no cover - the package depends on it
            raise ImportError("CertaintyRerank needs entropy-retriever: pip install entropy-retriever") from exc
        reranker = CertaintyReranker(model, tokenizer, top_n=top_n, token_budget=token_budget, metric=metric,
                                     signals=signals, fusion=fusion, hops=hops)
        name = model_name or (getattr(getattr(model, "config", None), "name_or_path", None) or EMBEDDED_MODEL_NAME)
        super().__init__(top_n=top_n, token_budget=token_budget, metric=metric, signals=tuple(signals), fusion=fusion, hops=hops,
                         model_name=name, **kwargs)
        self._reranker = reranker

    @classmethod
    def class_name(cls) -> str:
        return "CertaintyRerank"

    def _postprocess_nodes(
        self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None
    ) -> List[NodeWithScore]:
        from entropy_retriever import Passage

        if query_bundle is None:
            raise ValueError("CertaintyRerank needs the query: call postprocess_nodes(nodes, query_str=...)")
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self._reranker.selection.top_k or 0, model_name=self.model_name)
        )
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        passages = [
            Passage(
                text=n.node.get_content(metadata_mode=MetadataMode.NONE),
                source=n.node.ref_doc_id or n.node.node_id,
                position=_start(n.node, i),
            )
            for i, n in enumerate(nodes)
        ]
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model_name,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self._reranker.selection.top_k,
            },
        ) as event:
            kept = self._reranker.rerank(passages, query_bundle.query_str)
            result = [NodeWithScore(node=nodes[k.index].node, score=k.relevance) for k in kept]
            event.on_end(payload={EventPayload.NODES: result})
        dispatcher.event(ReRankEndEvent(nodes=result))
        return result

    async def _apostprocess_nodes(
        self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None
    ) -> List[NodeWithScore]:
        # Scoring is thread-safe (the reranker holds the model's lock), so a worker thread is safe
        # and keeps the event loop free while the model runs.
        return await asyncio.to_thread(self._postprocess_nodes, nodes, query_bundle)


def _start(node, i: int) -> float:
    """Where a node starts in its document (text nodes know), else its place in the list."""
    start = getattr(node, "start_char_idx", None)  # TextNode has it; BaseNode does not
    return start if start is not None else float(i)
