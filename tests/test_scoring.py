from __future__ import annotations

import math

import pytest
import torch

from entropy_retriever import CertaintyScorer, ContextTooLongError, InputError, PromptTemplate, register_metric
from entropy_retriever.scoring import METRICS, entropy_last, entropy_mean, question_nll


def test_metrics_on_known_distributions():
    v = 8
    uniform = torch.full((1, 3, v), -math.log(v))
    peaked = torch.log_softmax(torch.tensor([[[50.0] + [0.0] * (v - 1)] * 3]), -1)
    ids = torch.tensor([[0, 0]])
    assert entropy_last(uniform, ids).item() == pytest.approx(math.log(v))
    assert entropy_mean(uniform, ids).item() == pytest.approx(math.log(v))
    assert entropy_last(peaked, ids).item() == pytest.approx(0.0, abs=1e-6)
    assert question_nll(uniform, ids).item() == pytest.approx(math.log(v))
    assert question_nll(peaked, ids).item() == pytest.approx(0.0, abs=1e-6)
    assert question_nll(peaked, torch.tensor([[1, 1]])).item() == pytest.approx(50.0, abs=1e-3)
    # entropy_mean averages the positions after each question token (rows 1..Q), not row 0
    mixed = torch.cat([uniform[:, :1], peaked[:, 1:]], dim=1)
    assert entropy_mean(mixed, ids).item() == pytest.approx(0.0, abs=1e-6)


def reference_scores(model, tokenizer, scorer, texts, question, metric):
    """One sequence at a time, no padding, full logits: the plain definition."""
    q_ids = scorer.encode_question(question)
    out = []
    for text in texts:
        ids = scorer.bos + tokenizer(scorer.template.prefix + text, add_special_tokens=False)["input_ids"] + q_ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits, -1)[-len(q_ids) - 1:].unsqueeze(0)
        out.append(METRICS[metric](logprobs, torch.tensor([q_ids])).item())
    return out


@pytest.mark.parametrize("metric", ["entropy_last", "entropy_mean", "question_nll"])
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
    def negative(logprobs, ids):
        return -torch.full((logprobs.shape[0],), float(ids.shape[1]))

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
