"""The model-signal probes of ``benchmarks evidence-probes``, checked against transformers' own
attention weights and on small cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import probes
from tests.fixtures import tiny_llama


@pytest.fixture(scope="module")
def tiny_and_tokenizer():
    from transformers import AutoTokenizer

    from entropy_retriever.models import embedded_model_path

    tok = AutoTokenizer.from_pretrained(embedded_model_path())
    return tiny_llama(vocab_size=len(tok), window=1024), tok


def _eager_shares(model, ids: list[int], spans, n_question: int) -> np.ndarray:
    """(layers, heads, segments): transformers' eager attention weights from the last ``n_question``
    tokens, averaged over them and summed over each segment."""
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    finally:
        model.set_attn_implementation("sdpa")
    rows = torch.stack(out.attentions)[:, 0, :, -n_question:, :].mean(2)  # (layers, H, L)
    return torch.stack([rows[..., a:b].sum(-1) for a, b in spans], -1).numpy()


def test_attention_probe_matches_transformers_eager_attention(tiny_and_tokenizer):
    model, tok = tiny_and_tokenizer
    texts = ["The harbour was quiet that morning. ", "Ada sailed to Lisbon in May. ", "Bread rose in the oven."]
    question = "Where did Ada sail?"
    probe = probes.AttentionProbe(model, tok)
    got = probe.head_scores(texts, question)
    assert model.config._attn_implementation == "sdpa"  # restored after the probe
    ids, spans = [], []
    for t in texts:
        piece = tok(t, add_special_tokens=False)["input_ids"]
        spans.append((len(ids), len(ids) + len(piece)))
        ids += piece
    asked = tok(probe.middle + question + probe.suffix, add_special_tokens=False)["input_ids"]
    empty = tok(probe.middle + probes.CONTENT_FREE + probe.suffix, add_special_tokens=False)["input_ids"]
    want = _eager_shares(model, ids + asked, spans, len(asked)) - _eager_shares(model, ids + empty, spans, len(empty))
    assert got.shape == (2, 4, 3)  # layers, heads (4 query heads over 2 key heads), segments
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got).max() > 1e-4  # the question and the content-free one attend differently


def test_attention_probe_refuses_a_document_longer_than_the_model_reads(tiny_and_tokenizer):
    model, tok = tiny_and_tokenizer
    with pytest.raises(ValueError, match="does not fit the model's 1024 positions"):
        probes.AttentionProbe(model, tok).head_scores(["word " * 1200], "Which word?")
    assert model.config._attn_implementation == "sdpa"


def test_best_heads_are_those_that_rank_the_evidence_first():
    rng = np.random.default_rng(0)
    docs, targets = [], []
    for _ in range(6):
        scores = rng.normal(size=(2, 3, 5))  # layers, heads, segments
        target = np.zeros(5, bool)
        target[rng.integers(5)] = True
        scores[1, 2, target] = 10.0  # layer 1, head 2 always finds it
        scores[0, 0, target] = -10.0  # layer 0, head 0 always ranks it last
        docs.append(scores)
        targets.append(target)
    best = probes.best_heads(docs, targets, 2)
    assert best[0] == (1, 2) and (0, 0) not in best
    one = probes.heads_score(docs[0], [(1, 2)])
    assert int(np.argmax(one)) == int(np.flatnonzero(targets[0])[0])


def test_halves_cut_at_the_sentence_end_nearest_the_middle():
    a, b = probes.halves("One two three. Four five six. Seven eight nine.")
    assert (a, b) == ("One two three. Four five six. ", "Seven eight nine.")
    assert probes.halves("no sentence end here at all!") == ("no sentence en", "d here at all!")  # the middle


def test_question_first_gain_is_the_likelihood_the_question_adds(tiny_and_tokenizer):
    model, tok = tiny_and_tokenizer
    gain = probes.QuestionFirstGain(model, tok, window=4, batch=2)
    texts = ["Ada sailed to Lisbon.", "Bread rose in the oven today.", "The harbour was quiet."]
    got = gain.scores(texts, "Where did Ada sail?")
    # each segment scored alone (no batch padding) gives the same best window
    alone = np.array([gain.scores([t], "Where did Ada sail?")[0] for t in texts])
    np.testing.assert_allclose(got, alone, atol=1e-4)
    asked = tok("Question: Where did Ada sail?\nRelevant text:\n", add_special_tokens=False)["input_ids"]
    plain = tok("Text:\n", add_special_tokens=False)["input_ids"]
    piece = tok(texts[0], add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        nll = []
        for prefix in (asked, plain):
            logits = model(input_ids=torch.tensor([prefix + piece])).logits[0, len(prefix) - 1: -1]
            nll.append(torch.nn.functional.cross_entropy(logits, torch.tensor(piece), reduction="none").numpy())
    per_token = nll[1] - nll[0]
    assert got[0] == pytest.approx(np.convolve(per_token, np.ones(4) / 4, mode="valid").max(), abs=1e-4)
