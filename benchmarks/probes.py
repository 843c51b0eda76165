"""Other ways to read the model's view of a segment, measured against the default (none ships).

Each probe gives one score per segment of a document (higher = more relevant):

- :class:`AttentionProbe`: in-context reranking (Chen et al., arXiv 2410.02642). The document is
  read once, whole, in order; then the question. Each attention head's weight from the question's
  tokens to each segment's tokens, summed over the segment, less the same with a content-free
  question ("N/A") in place, so that the pull of the first tokens, of recent text and of long
  segments cancels. Scored with every head, or with the heads that best found the evidence on
  other documents (query-focused heads, arXiv 2506.09944).
- :func:`half_certainty`: the certainty signal on each half of a segment (cut at the sentence
  nearest its middle), the better half's, so that the question follows the fact closely.
- :class:`QuestionFirstGain`: the question read *before* the segment; how much it raises the
  likelihood of the segment's tokens, over the best 16-token window (the contrast of LongLLMLingua's
  question-aware perplexity, arXiv 2310.06839, taken the other way round).

They are benchmark code, not product code: ``python -m benchmarks evidence-probes`` runs them on
the development halves, and the selection guide reports what they gave.
"""

from __future__ import annotations

import numpy as np
import torch

from entropy_retriever.llm import _cache_kwarg
from entropy_retriever.scoring import METRICS, CertaintyScorer

CONTENT_FREE = "N/A"


class AttentionProbe:
    """Per head, the calibrated attention from a question to each segment of a document read whole."""

    NAME = "entropy-retriever-benchmark-attention-probe"

    def __init__(self, model, tokenizer, middle: str = "\n\nQuestion: ", suffix: str = "\nAnswer:") -> None:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        self.model, self.tokenizer = model, tokenizer
        self.middle, self.suffix = middle, suffix
        self._rows: list[torch.Tensor] | None = None
        AttentionInterface.register(self.NAME, self._attend)
        AttentionMaskInterface.register(self.NAME, sdpa_mask)  # the masks SDPA takes (without it: none, and no causality)

    def _attend(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        out = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
        if self._rows is not None:  # the question's rows: (H, Lq, Lk) probabilities, causal over the cache
            heads, lq, dim = query.shape[1], query.shape[2], query.shape[3]
            keys = key.repeat_interleave(heads // key.shape[1], dim=1).float()
            logits = (query.float() @ keys.transpose(-1, -2))[0] * (scaling if scaling is not None else dim ** -0.5)
            lk = keys.shape[2]
            future = torch.arange(lk).unsqueeze(0) > torch.arange(lk - lq, lk).unsqueeze(-1)
            self._rows.append(logits.masked_fill(future, float("-inf")).softmax(-1))
        return out

    @torch.inference_mode()
    def _question_rows(self, cache, past: int, text: str) -> torch.Tensor:
        ids = self.tokenizer(self.middle + text + self.suffix, add_special_tokens=False)["input_ids"]
        self._rows = []
        try:
            self.model(input_ids=torch.tensor([ids]), **{_cache_kwarg(self.model): cache}, use_cache=True,
                       attention_mask=torch.ones(1, past + len(ids), dtype=torch.long),
                       position_ids=torch.arange(past, past + len(ids)).unsqueeze(0))
            rows = torch.stack(self._rows)  # (layers, H, Lq, Lk)
        finally:
            self._rows = None
            cache.crop(-len(ids))
        return rows[..., :past].mean(2)  # (layers, H, past): the mean over the question's tokens

    @torch.inference_mode()
    def head_scores(self, texts: list[str], question: str) -> np.ndarray:
        """(layers, heads, segments): each head's attention to each segment, less its content-free share."""
        from transformers import DynamicCache

        spans, ids = [], []
        for text in texts:
            piece = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            spans.append((len(ids), len(ids) + len(piece)))
            ids += piece
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and len(ids) + 64 > limit:
            raise ValueError(f"a {len(ids)}-token document does not fit the model's {limit} positions: use shorter documents")
        before = self.model.config._attn_implementation
        self.model.set_attn_implementation(self.NAME)
        try:
            cache = DynamicCache()
            self.model(input_ids=torch.tensor([ids]), **{_cache_kwarg(self.model): cache}, use_cache=True)
            asked = self._question_rows(cache, len(ids), question)
            empty = self._question_rows(cache, len(ids), CONTENT_FREE)
        finally:
            self.model.set_attn_implementation(before)
        diff = asked - empty
        return torch.stack([diff[..., a:b].sum(-1) for a, b in spans], -1).numpy()


def best_heads(head_scores: list[np.ndarray], targets: list[np.ndarray], k: int) -> list[tuple[int, int]]:
    """The ``k`` heads whose ranking puts an evidence segment highest (mean reciprocal rank) over
    these documents; ``targets`` marks each document's evidence segments."""
    total = 0.0
    for scores, target in zip(head_scores, targets):
        position = (-scores).argsort(-1).argsort(-1)  # each segment's place in each head's ranking
        total = total + 1.0 / (1.0 + position[..., target].min(-1))
    flat = np.argsort(-total, axis=None, kind="stable")[:k]
    return [tuple(int(x) for x in np.unravel_index(i, total.shape)) for i in flat]


def heads_score(scores: np.ndarray, heads: list[tuple[int, int]] | None = None) -> np.ndarray:
    """One score per segment: the chosen heads' (every head's when None), each scaled to unit total."""
    chosen = scores.reshape(-1, scores.shape[-1]) if heads is None else np.stack([scores[layer, head] for layer, head in heads])
    return (chosen / (np.abs(chosen).sum(-1, keepdims=True) + 1e-9)).mean(0)


def halves(text: str) -> tuple[str, str]:
    """``text`` cut at the sentence end nearest its middle (the middle itself when it has none)."""
    mid = len(text) // 2
    ends = [i + 2 for i in (text.rfind(". ", 0, mid), text.find(". ", mid)) if i > 0]
    cut = min(ends, key=lambda i: abs(i - mid)) if ends else mid
    return text[:cut], text[cut:]


def half_certainty(scorer: CertaintyScorer, texts: list[str], question: str, metric: str) -> np.ndarray:
    """Minus the better half's certainty metric, per segment (higher = more relevant)."""
    parts = [part for text in texts for part in halves(text)]
    values = np.asarray(METRICS[metric](scorer.token_stats(parts, question)).tolist()).reshape(-1, 2)
    return -values.min(1)


class QuestionFirstGain:
    """How much reading the question first raises the likelihood of a segment's best 16-token window."""

    def __init__(self, model, tokenizer, window: int = 16, batch: int = 4) -> None:
        self.model, self.tokenizer, self.window, self.batch = model, tokenizer, window, batch
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @torch.inference_mode()
    def _nll(self, prefix: list[int], pieces: list[list[int]]) -> list[np.ndarray]:
        rows = [prefix + p for p in pieces]
        length = max(map(len, rows))
        ids = torch.full((len(rows), length), self.pad)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for b, r in enumerate(rows):  # right padding: every row starts at position 0
            ids[b, : len(r)], mask[b, : len(r)] = torch.tensor(r), 1
        logits = self.model(input_ids=ids, attention_mask=mask).logits
        out = []
        for b, r in enumerate(rows):
            targets = torch.tensor(r[len(prefix):]).unsqueeze(-1)
            logprobs = torch.log_softmax(logits[b, len(prefix) - 1: len(r) - 1].float(), -1)
            out.append(-logprobs.gather(-1, targets).squeeze(-1).numpy())
        return out

    def scores(self, texts: list[str], question: str) -> np.ndarray:
        encode = lambda s: self.tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        asked, plain = encode(f"Question: {question}\nRelevant text:\n"), encode("Text:\n")
        pieces = [encode(t) for t in texts]
        result = []
        for start in range(0, len(pieces), self.batch):
            chunk = pieces[start: start + self.batch]
            for with_q, without in zip(self._nll(asked, chunk), self._nll(plain, chunk)):
                gain = without - with_q
                w = min(self.window, len(gain))
                result.append(float(np.convolve(gain, np.ones(w) / w, mode="valid").max()) if w else 0.0)
        return np.asarray(result)
