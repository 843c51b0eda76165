"""The two-branch engine against a dense oracle written from SPEC.md, on tiny random models.

The oracle is deliberately independent of the engine: it undoes RoPE and re-applies it at the
policy's positions with transformers' own rotary embedding and ``rotate_half`` (not our
``rotate``), derives key positions from the padding mask by cumulative sum (not from the
query positions), and builds the full length x length logits with one softmax.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from entropy_retriever import InputError
from entropy_retriever.attention import LMInfinite, SelfExtend, choose_group_size, extend_context, validate_policy
from entropy_retriever.attention.cache import make_cache
from entropy_retriever.attention.flex import flex_available
from entropy_retriever.attention.rope import inv_freq_lookup

VOCAB = 256
WINDOW = 64  # the tiny models' trained length
SE = SelfExtend(group_size=3, window=8)
LMI = LMInfinite(n_local=8, n_global=3)


def _config(family: str):
    from transformers import (
        Gemma3TextConfig,
        LlamaConfig,
        MistralConfig,
        Olmo2Config,
        Phi3Config,
        Qwen2Config,
        Qwen3Config,
    )

    common = dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=WINDOW,
    )
    if family == "llama":
        return LlamaConfig(**common)
    if family == "mistral":
        return MistralConfig(**common, sliding_window=None)
    if family == "qwen2":
        return Qwen2Config(**common)
    if family == "qwen3":
        return Qwen3Config(**common, head_dim=16)
    if family == "gemma3":  # one sliding layer, one full layer: the policy applies to the full one
        return Gemma3TextConfig(**common, head_dim=16, sliding_window=6, layer_types=["sliding_attention", "full_attention"])
    if family == "phi3":  # partial rotary: half of each head's features rotate
        return Phi3Config(**common, partial_rotary_factor=0.5, pad_token_id=0)
    if family == "olmo2":
        return Olmo2Config(**common)
    raise KeyError(family)


FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma3", "phi3", "olmo2"]


def build(family: str, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = _config(family)
    config._attn_implementation = "sdpa"
    return AutoModelForCausalLM.from_config(config).eval()


# ------------------------------------------------------------------ the dense oracle
def _rope(x, positions, model, module):
    """Rotate raw x (B, H, L, D) to ``positions`` (B, L) with the model's own rotary embedding."""
    from transformers.models.llama.modeling_llama import rotate_half

    rotary = next(m for m in model.modules() if m.__class__.__name__.endswith("RotaryEmbedding"))
    layer_types = getattr(model.config, "layer_types", None)
    if getattr(rotary, "inv_freq", None) is not None:
        cos, sin = rotary(x, positions)
    else:
        cos, sin = rotary(x, positions, layer_types[module.layer_idx])
    cos, sin = cos.unsqueeze(1).float(), sin.unsqueeze(1).float()  # (B, 1, L, rd)
    rd = cos.shape[-1]
    xr, xp = x[..., :rd].float(), x[..., rd:].float()
    return torch.cat([xr * cos + rotate_half(xr) * sin, xp], dim=-1)


def spec_selector(policy):
    """(i, j) -> (near, far, far query position, far key position), straight from SPEC.md."""
    if isinstance(policy, SelfExtend):
        g, w = policy.group_size, policy.window
        return lambda i, j: ((i - j) < w, (i - j) >= w, i // g + w - w // g, j // g)
    n_local, n_global = policy.n_local, policy.n_global
    return lambda i, j: (
        (i - j) < n_local, (j < n_global) & ((i - j) >= n_local), torch.full_like(i, n_local), torch.zeros_like(j)
    )


def make_oracle(model, policy):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    select = spec_selector(policy)

    def oracle(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        if kwargs.get("sliding_window") is not None or getattr(module, "sliding_window", None) is not None:
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
        b, h, lq, d = query.shape
        lk = key.shape[2]
        rep = h // key.shape[1]
        key, value = key.repeat_interleave(rep, dim=1), value.repeat_interleave(rep, dim=1)
        if attention_mask is None:
            valid = torch.ones(b, lk, dtype=torch.bool)
        else:
            row = attention_mask[:, 0, -1, :]
            valid = (row if row.dtype == torch.bool else row == 0).expand(b, lk)
        kpos = valid.long().cumsum(-1) - 1  # positions of the real keys; pads are masked below
        qpos = kpos[:, -lq:]
        raw_q, raw_k = _rope(query, -qpos, model, module), _rope(key, -kpos, model, module)
        i, j = qpos[:, :, None], kpos[:, None, :]
        near, far, fq, fk = select(i, j)
        causal = (i >= j) & valid[:, None, :]
        logits_near = _rope(raw_q, qpos, model, module) @ _rope(raw_k, kpos, model, module).transpose(-1, -2) * scaling
        q_far = _rope(raw_q, fq[:, :, 0].expand(b, lq), model, module)
        k_far = _rope(raw_k, fk[:, 0, :].expand(b, lk), model, module)
        logits_far = q_far @ k_far.transpose(-1, -2) * scaling
        logits = torch.where(
            (near & causal)[:, None], logits_near, torch.where((far & causal)[:, None], logits_far, float("-inf"))
        )
        probs = torch.softmax(logits, dim=-1).nan_to_num(0.0)
        return (probs @ value.float()).transpose(1, 2).contiguous().to(query.dtype), None

    return oracle


_oracle_names = itertools.count()


def _positions(attention_mask):
    return None if attention_mask is None else (attention_mask.cumsum(-1) - 1).clamp(min=0)


def oracle_logits(model, policy, input_ids, attention_mask=None):
    name = f"test_oracle_{next(_oracle_names)}"
    AttentionInterface.register(name, make_oracle(model, policy))
    AttentionMaskInterface.register(name, sdpa_mask)
    previous = model.config._attn_implementation
    model.set_attn_implementation(name)
    try:
        with torch.no_grad():
            return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=_positions(attention_mask)).logits
    finally:
        model.set_attn_implementation(previous)


def ids(batch: int, length: int, seed: int = 1):
    torch.manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length))


POLICIES = [pytest.param(SE, id="selfextend"), pytest.param(LMI, id="lminfinite")]
_NO_FLEX = pytest.mark.skipif(not flex_available(), reason="this torch has no flex_attention with auxiliary outputs")
# The engines every oracle test runs: the two-branch engine ("auto" on CPU) and flex_attention
# (eager flex on CPU builds full score matrices, so its longer cases run in the slow tier).
BACKENDS = ["auto", pytest.param("flex", marks=_NO_FLEX)]
BACKENDS_SLOW_FLEX = ["auto", pytest.param("flex", marks=[_NO_FLEX, pytest.mark.slow])]


def left_padded(lengths: list[int]):
    """A batch of rows of these lengths, left-padded to the first (the longest): (ids, mask)."""
    total = lengths[0]
    x = ids(len(lengths), total)
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, total - n :] = 1
        x[row, : total - n] = 0
    return x, mask


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("policy", POLICIES)
def test_below_the_window_logits_equal_the_unpatched_model(family, policy):
    model = build(family)
    x = ids(2, 7)  # every distance < W = n_local = 8
    with torch.no_grad():
        plain = model(x).logits
        with extend_context(model, policy):
            patched = model(x).logits
    torch.testing.assert_close(patched, plain, rtol=0, atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_prefill_beyond_the_window_equals_the_oracle(family, policy, backend):
    model = build(family)
    x = ids(1, 40)
    expected = oracle_logits(model, policy, x)
    with torch.no_grad():
        with extend_context(model, policy, backend=backend):
            got = model(x).logits
        plain = model(x).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    assert (plain - expected).abs().max().item() > 1e-3  # the policy really changes the result here


@pytest.mark.parametrize("policy", POLICIES)
def test_many_blocks_equal_the_oracle(monkeypatch, policy):
    """Real inputs span many band and query blocks (256 and 512 by default); shrink the blocks so
    that the tiny model's 60 tokens cross several of each, including ragged last blocks."""
    from entropy_retriever.attention.engine import TwoBranchEngine

    monkeypatch.setattr(TwoBranchEngine.__init__, "__defaults__", (3, 7))
    model = build("llama")
    for x, mask in [(ids(1, 60), None), (ids(2, 50), torch.tensor([[0] * 9 + [1] * 41, [1] * 50]))]:
        expected = oracle_logits(model, policy, x, mask)
        with torch.no_grad(), extend_context(model, policy):
            got = model(input_ids=x, attention_mask=mask, position_ids=_positions(mask)).logits
        valid = slice(None) if mask is None else mask.bool()
        torch.testing.assert_close(got[valid], expected[valid], rtol=0, atol=1e-4)


@pytest.mark.parametrize("family", ["llama", "qwen3", "gemma3", "phi3"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("cache_kind", ["dynamic", "policy"])
@pytest.mark.parametrize("backend", BACKENDS_SLOW_FLEX)
def test_decode_and_chunked_prefill_with_cache_equal_the_oracle(family, policy, cache_kind, backend):
    from transformers import DynamicCache

    model = build(family)
    x = ids(1, 36)
    expected = oracle_logits(model, policy, x)

    def new_cache():  # transformers' own cache, or the one the policy generates with
        return DynamicCache(config=model.config) if cache_kind == "dynamic" else make_cache(model, policy)

    with torch.no_grad(), extend_context(model, policy, backend=backend):
        out = model(x[:, :20], past_key_values=new_cache(), use_cache=True)  # prefill 20
        steps = [out.logits[:, -1]]
        for t in range(20, 36):  # then one token at a time
            out = model(x[:, t : t + 1], past_key_values=out.past_key_values, use_cache=True)
            steps.append(out.logits[:, -1])
        first = model(x[:, :18], past_key_values=new_cache(), use_cache=True)
        second = model(x[:, 18:], past_key_values=first.past_key_values, use_cache=True)
    decoded = torch.stack(steps, dim=1)
    torch.testing.assert_close(decoded, expected[:, 19:36], rtol=0, atol=1e-4)
    chunked = torch.cat([first.logits, second.logits], dim=1)
    torch.testing.assert_close(chunked, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "olmo2"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("backend", BACKENDS_SLOW_FLEX)
def test_batch_of_three_with_left_padding_equals_the_oracle(family, policy, backend):
    model = build(family)
    lengths = [40, 29, 17]
    x, mask = left_padded(lengths)
    expected = oracle_logits(model, policy, x, mask)
    with torch.no_grad(), extend_context(model, policy, backend=backend):
        got = model(input_ids=x, attention_mask=mask, position_ids=_positions(mask)).logits
        alone = model(x[2:3, 40 - 17 :]).logits
    for row, n in enumerate(lengths):  # real tokens only
        torch.testing.assert_close(got[row, 40 - n :], expected[row, 40 - n :], rtol=0, atol=1e-4, msg=lambda m: f"{row}: {m}")
    torch.testing.assert_close(alone[0], got[2, 40 - 17 :], rtol=0, atol=1e-4)  # padding changes nothing


@pytest.mark.parametrize("family", ["llama", "gemma3"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("cache_kind", ["dynamic", "policy"])
def test_greedy_generation_with_cache_equals_recomputing_the_prefix(family, policy, cache_kind):
    model = build(family)
    prompt = ids(1, 30)
    with torch.no_grad(), extend_context(model, policy):
        cache = make_cache(model, policy) if cache_kind == "policy" else None
        cached = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=True, pad_token_id=0, past_key_values=cache)
        sequence = prompt
        for _ in range(12):
            nxt = model(sequence, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            sequence = torch.cat([sequence, nxt], dim=1)
    assert torch.equal(cached, sequence)


def test_switching_is_reversible_and_a_with_block_restores():
    model = build("llama")
    x = ids(1, 30)
    with torch.no_grad():
        before = model(x).logits
        with extend_context(model, SE):
            assert model.config._attn_implementation.startswith("entropy_retriever_")
            inside = model(x).logits
        assert model.config._attn_implementation == "sdpa"
        after = model(x).logits
    assert torch.equal(before, after) and not torch.allclose(before, inside)
    with torch.no_grad(), extend_context(model, LMI):  # blocks nest: the innermost wins, each restores
        lambda_out = model(x).logits
        with extend_context(model, SE):
            assert torch.equal(model(x).logits, inside)
        assert torch.equal(model(x).logits, lambda_out)
    assert model.config._attn_implementation == "sdpa"


def test_models_the_policy_cannot_apply_to_get_a_clear_error():
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, MistralConfig

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=VOCAB)).eval()
    with pytest.raises(InputError, match="rotary"):
        validate_policy(gpt2, SE)
    windowed = AutoModelForCausalLM.from_config(
        MistralConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, sliding_window=16, max_position_embeddings=WINDOW)
    ).eval()
    before = windowed.config._attn_implementation
    with pytest.raises(InputError, match="sliding window"):
        validate_policy(windowed, SE)
    assert windowed.config._attn_implementation == before  # restored after the refusal


def test_policy_validation_and_group_size_choice():
    for bad in [dict(group_size=0), dict(window=-1), dict(group_size=1.5)]:
        with pytest.raises(InputError):
            SelfExtend(**bad)
    with pytest.raises(InputError):
        LMInfinite(n_local=0)
    model = build("llama")
    with pytest.raises(InputError, match="below the model's trained length"):
        validate_policy(model, SelfExtend(2, WINDOW))
    with pytest.raises(InputError, match="exceeds the model's trained length"):
        validate_policy(model, LMInfinite(n_local=WINDOW + 1))
    chosen = choose_group_size(32_000, 8192, window=1024)
    assert chosen.group_size == 5 and chosen.reach(8192) >= 32_000 > SelfExtend(4, 1024).reach(8192)
    assert choose_group_size(4000, 8192).group_size == 1


def test_layer_types_pick_per_layer_frequencies():
    """Gemma-3 rotates sliding and full layers with different RoPE bases: each layer gets its own."""
    model = build("gemma3")
    lookup = inv_freq_lookup(model)
    rotary = next(m for m in model.modules() if m.__class__.__name__.endswith("RotaryEmbedding"))
    types = model.config.layer_types
    assert {"sliding_attention", "full_attention"} <= set(types)
    for layer_idx, kind in enumerate(types):
        expected = getattr(rotary, f"{kind}_inv_freq")
        assert torch.equal(lookup(layer_idx), expected)
    full = lookup(types.index("full_attention"))
    sliding = lookup(types.index("sliding_attention"))
    assert full.shape == sliding.shape == (8,)  # head_dim 16 -> 8 frequencies
    assert not torch.equal(full, sliding)  # rope_theta 1e6 against the local base 1e4


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_bounded_lminfinite_cache_generates_the_same_tokens_in_constant_memory(family):
    from entropy_retriever.attention.cache import LambdaCache

    model = build(family)
    sizes = []
    with torch.no_grad(), extend_context(model, LMI):
        for length in (40, 200):
            prompt = ids(1, length)
            full = model.generate(prompt, max_new_tokens=16, do_sample=False, pad_token_id=0)
            cache = LambdaCache(model.config, LMI)
            bounded = model.generate(prompt, max_new_tokens=16, do_sample=False, pad_token_id=0, past_key_values=cache)
            assert torch.equal(full, bounded)
            assert cache.get_seq_length() == length + 15
            sizes.append(cache.stored_bytes())
    assert sizes[0] == sizes[1] > 0


def test_grouped_key_cache_rotates_each_key_once(monkeypatch):
    """Decoding with SelfExtend's cache rotates only queries and the newest key per step."""
    from entropy_retriever.attention import engine

    model = build("llama")
    prompt = ids(1, 30)
    rotated_rows = []
    original = engine.rotate
    monkeypatch.setattr(engine, "rotate", lambda x, shift, f: rotated_rows.append(x.shape[2]) or original(x, shift, f))
    with torch.no_grad(), extend_context(model, SE):
        cache = make_cache(model, SE)
        model(prompt, past_key_values=cache, use_cache=True)
        rotated_rows.clear()
        model(ids(1, 1, seed=5), past_key_values=cache, use_cache=True)  # one decoding step
    assert rotated_rows and max(rotated_rows) == 1  # the query alone; the 30 cached keys were not re-rotated


def test_grouped_key_cache_with_left_padding_generates_like_each_row_alone():
    model = build("llama")
    long, short = ids(1, 34, seed=2), ids(1, 21, seed=3)
    batch = torch.cat([long, torch.cat([torch.zeros(1, 13, dtype=torch.long), short], dim=1)])
    mask = torch.cat([torch.ones(1, 34), torch.cat([torch.zeros(1, 13), torch.ones(1, 21)], dim=1)]).long()
    with torch.no_grad(), extend_context(model, SE):
        together = model.generate(batch, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0,
                                  past_key_values=make_cache(model, SE))
        alone = [model.generate(row, max_new_tokens=8, do_sample=False, pad_token_id=0, past_key_values=make_cache(model, SE))
                 for row in (long, short)]
    assert torch.equal(together[0, 34:], alone[0][0, 34:])
    assert torch.equal(together[1, 34:], alone[1][0, 21:])


def test_the_bounded_cache_answers_both_transformers_signatures_of_get_mask_sizes():
    """transformers 5.0 asks a cache layer for its mask sizes with cache_position (a tensor), later
    5.x releases with the query's length: the same answer either way."""
    from entropy_retriever.attention.cache import LambdaLayer, query_length_of

    layer = LambdaLayer(4, 8)
    keys = torch.randn(1, 2, 20, 16)
    layer.update(keys, keys.clone())
    assert query_length_of(torch.arange(20, 23)) == query_length_of(3) == 3
    assert layer.get_mask_sizes(torch.arange(20, 23)) == layer.get_mask_sizes(3) == (4 + 7 + 3, 20 - 11)
