from __future__ import annotations

import math

import pytest
import torch

from entropy_retriever import ContextTooLongError, InputError
from entropy_retriever.scoring import (
    METRICS,
    CertaintyScorer,
    PromptTemplate,
    TokenStats,
    entropy_last,
    entropy_mean,
    own_gain,
    own_nll,
    question_nll,
    register_metric,
    weighted_nll,
)


def stats_from_logprobs(logprobs, ids, own=None, prior_nll=None):
    """TokenStats from full log-probabilities (B, Q + 1, V): the plain definitions."""
    q = ids.shape[-1]
    nll = -logprobs[:, :-1].gather(-1, ids.expand(logprobs.shape[0], q).unsqueeze(-1)).squeeze(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    own = torch.ones(q, dtype=torch.bool) if own is None else own
    prior_nll = torch.zeros(q) if prior_nll is None else prior_nll
    return TokenStats(nll, entropy, ids.reshape(-1), own, prior_nll, torch.zeros(q + 1))


def test_metrics_on_known_distributions():
    v = 8
    uniform = torch.full((1, 3, v), -math.log(v))
    peaked = torch.log_softmax(torch.tensor([[[50.0] + [0.0] * (v - 1)] * 3]), -1)
    ids = torch.tensor([0, 0])
    assert entropy_last(stats_from_logprobs(uniform, ids)).item() == pytest.approx(math.log(v))
    assert entropy_mean(stats_from_logprobs(uniform, ids)).item() == pytest.approx(math.log(v))
    assert entropy_last(stats_from_logprobs(peaked, ids)).item() == pytest.approx(0.0, abs=1e-6)
    assert question_nll(stats_from_logprobs(uniform, ids)).item() == pytest.approx(math.log(v))
    assert question_nll(stats_from_logprobs(peaked, ids)).item() == pytest.approx(0.0, abs=1e-6)
    assert question_nll(stats_from_logprobs(peaked, torch.tensor([1, 1]))).item() == pytest.approx(50.0, abs=1e-3)
    # entropy_mean averages the positions after each question token (rows 1..Q), not row 0
    mixed = torch.cat([uniform[:, :1], peaked[:, 1:]], dim=1)
    assert entropy_mean(stats_from_logprobs(mixed, ids)).item() == pytest.approx(0.0, abs=1e-6)


def test_own_token_metrics_ignore_the_template_and_count_what_the_segment_adds():
    # question part of 4 tokens; tokens 1 and 2 are the question's own
    nll = torch.tensor([[9.0, 1.0, 2.0, 9.0],    # segment 0: own tokens well predicted, template badly
                        [0.1, 3.0, 4.0, 0.1],    # segment 1: template well predicted, own tokens badly
                        [0.1, 5.0, 0.5, 0.1]])   # segment 2: only token 2 made likelier than with no segment
    own = torch.tensor([False, True, True, False])
    prior = torch.tensor([1.0, 4.0, 4.0, 1.0])
    stats = TokenStats(nll, torch.zeros(3, 5), torch.arange(4), own, prior, torch.zeros(5))
    assert question_nll(stats).tolist() == pytest.approx([5.25, 1.8, 1.425])  # the template decides
    assert own_nll(stats).tolist() == pytest.approx([1.5, 3.5, 2.75])
    # gains over the prior, negatives clipped: (3 + 2) / 2, (1 + 0) / 2, (0 + 3.5) / 2
    assert own_gain(stats).tolist() == pytest.approx([-2.5, -0.5, -1.75])
    # weights 4 and 4: the same as own_nll here; unequal priors weight the telling token more
    assert weighted_nll(stats).tolist() == pytest.approx([1.5, 3.5, 2.75])
    skewed = TokenStats(nll, torch.zeros(3, 5), torch.arange(4), own, torch.tensor([1.0, 1.0, 3.0, 1.0]), torch.zeros(5))
    assert weighted_nll(skewed).tolist() == pytest.approx([1.75, 3.75, 1.625])


def test_the_question_s_own_tokens_are_told_from_the_template(tiny, tokenizer):
    scorer = CertaintyScorer(tiny, tokenizer)
    q = scorer.prepare("Where is the milk?")
    pieces = [tokenizer.decode([t]) for t, own in zip(q.ids, q.own.tolist()) if own]
    assert "".join(pieces).strip() == "Where is the milk?"
    template = [tokenizer.decode([t]) for t, own in zip(q.ids, q.own.tolist()) if not own]
    assert "".join(template) == "\n\nQuestion:\nAnswer:"
    # the prior is the question part read with no segment: one pass, the same for every segment
    alone = tokenizer("\n\nQuestion: Where is the milk?\nAnswer:", add_special_tokens=False)["input_ids"]
    assert q.ids == alone and q.prior_nll.shape == (len(alone),)


def test_a_metric_returning_the_wrong_shape_or_nan_is_reported(tiny, tokenizer):
    @register_metric("scalar_test")
    def scalar(stats):
        return stats.nll.mean()

    @register_metric("nan_test")
    def nan(stats):
        return torch.full((stats.nll.shape[0],), float("nan"))

    try:
        with pytest.raises(InputError, match="must return a tensor of shape \\(2,\\)"):
            CertaintyScorer(tiny, tokenizer, metric="scalar_test").score(["a", "b"], "what?")
        with pytest.raises(InputError, match="not a finite number \\(nan\\) for 2 of 2 segments"):
            CertaintyScorer(tiny, tokenizer, metric="nan_test").score(["a", "b"], "what?")
    finally:
        METRICS.pop("scalar_test")
        METRICS.pop("nan_test")


def test_registering_a_taken_name_needs_replace():
    original = METRICS["weighted_nll"]
    with pytest.raises(InputError, match="already registered.*replace=True"):
        register_metric("weighted_nll")(lambda stats: stats.nll.mean(-1))
    assert METRICS["weighted_nll"] is original
    try:
        register_metric("weighted_nll", replace=True)(own_nll)
        assert METRICS["weighted_nll"] is own_nll
    finally:
        METRICS["weighted_nll"] = original


def reference_scores(model, tokenizer, scorer, texts, question, metric):
    """One sequence at a time, no padding, full logits: the plain definition."""
    q = scorer.prepare(question)
    out = []
    for text in texts:
        ids = scorer.bos + tokenizer(scorer.template.prefix + text, add_special_tokens=False)["input_ids"] + q.ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits, -1)[-len(q.ids) - 1:].unsqueeze(0)
        stats = stats_from_logprobs(logprobs, torch.tensor(q.ids), q.own, q.prior_nll)
        out.append(METRICS[metric](stats).item())
    return out


@pytest.mark.parametrize("metric", ["entropy_last", "entropy_mean", "question_nll", "own_nll", "own_gain", "weighted_nll"])
def test_batched_left_padded_scores_equal_one_at_a_time(tiny, tokenizer, metric):
    texts = ["short one.", "a much longer segment " * 12, "medium length text here " * 4, "x"]
    scorer = CertaintyScorer(tiny, tokenizer, metric=metric, batch_tokens=10_000)
    batched = scorer.score(texts, "what is it?")
    expected = reference_scores(tiny, tokenizer, scorer, texts, "what is it?", metric)
    assert batched == pytest.approx(expected, abs=1e-4)


def test_score_metrics_equals_one_scorer_per_metric(tiny, tokenizer):
    texts = [f"segment number {i} " * (1 + i % 5) for i in range(40)]  # > one window at max_batch_size=2
    scorer = CertaintyScorer(tiny, tokenizer, batch_tokens=300, max_batch_size=2)
    together = scorer.score_metrics(texts, "which?", ["entropy_last", "question_nll", entropy_mean])
    assert set(together) == {"entropy_last", "question_nll", "entropy_mean"}
    for metric, values in together.items():
        alone = CertaintyScorer(tiny, tokenizer, metric=metric, batch_tokens=300, max_batch_size=2)
        assert values == pytest.approx(alone.score(texts, "which?"), abs=1e-5)
    with pytest.raises(InputError, match="at least one metric"):
        scorer.score_metrics(texts, "which?", [])
    with pytest.raises(InputError, match="unknown metric"):
        scorer.score_metrics(texts, "which?", ["entropy_lsat"])


def test_scores_are_deterministic_and_in_input_order(tiny, tokenizer):
    texts = [f"segment number {i} " * (1 + i % 5) for i in range(23)]
    scorer = CertaintyScorer(tiny, tokenizer, batch_tokens=300, max_batch_size=4)
    first = scorer.score(texts, "which?")
    assert first == scorer.score(texts, "which?")
    reordered = scorer.score(list(reversed(texts)), "which?")
    assert list(reversed(reordered)) == pytest.approx(first, abs=1e-4)


def test_only_question_positions_reach_the_lm_head(tiny, tokenizer):
    seen = []
    handle = tiny.lm_head.register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape)))
    try:
        scorer = CertaintyScorer(tiny, tokenizer)
        q = scorer.encode_question("what?")
        scorer.score(["a long segment " * 30, "b"], "what?")
    finally:
        handle.remove()
    assert seen and all(shape[1] == len(q) + 1 for shape in seen)


def test_custom_metric_and_template(tiny, tokenizer):
    @register_metric("negative_length_test")
    def negative(stats):
        return -torch.full((stats.nll.shape[0],), float(stats.ids.shape[0]))

    scorer = CertaintyScorer(tiny, tokenizer, metric="negative_length_test", template=PromptTemplate("", " Q: ", " A:"))
    assert scorer.score(["abc"], "one two three") == [-len(scorer.encode_question("one two three"))]
    METRICS.pop("negative_length_test")


def test_chat_template_puts_the_question_after_the_segment(tokenizer, tiny):
    scorer = CertaintyScorer(tiny, tokenizer, template="chat")
    assert "<|im_start|>user" in scorer.template.prefix
    assert scorer.template.suffix.endswith("<|im_start|>assistant\n")


def test_bad_metric_template_and_questions(tiny, tokenizer):
    with pytest.raises(InputError, match="unknown metric 'perplexity'.*question_nll"):
        CertaintyScorer(tiny, tokenizer, metric="perplexity")
    with pytest.raises(InputError, match="unknown template"):
        CertaintyScorer(tiny, tokenizer, template="fancy")
    scorer = CertaintyScorer(tiny, tokenizer)
    for empty in ["", "  \n"]:
        with pytest.raises(InputError, match="question is empty"):
            scorer.score(["text"], empty)
    with pytest.raises(ContextTooLongError, match="window is 512"):
        scorer.score(["text"], "why " * 600)
    with pytest.raises(ContextTooLongError, match="smaller segment_tokens"):
        scorer.score(["word " * 600], "why?")
