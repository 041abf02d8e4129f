"""The decoder-only model: its parts against their formulas, both attention paths equal, the KV
cache equal to recomputation for every grouping of heads, save/load, and a tiny training run.
(tests/export/test_llama.py holds it equal to transformers' LlamaForCausalLM.)"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from seqkit.errors import UserError
from seqkit.generation import generate
from seqkit.models.attention import MultiHeadAttention, apply_rotary
from seqkit.models.decoder import (
    DecoderConfig,
    DecoderForCausalLM,
    RMSNorm,
    RotaryEmbedding,
    swiglu_hidden_size,
)

VOCAB = 23
N_HEAD = 4


def tiny_config(**overrides) -> DecoderConfig:
    values = dict(
        vocab_size=VOCAB,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=N_HEAD,
        n_kv_head=2,
        intermediate_size=48,
    )
    return DecoderConfig(**{**values, **overrides})


def tiny_model(seed: int = 0, **overrides) -> DecoderForCausalLM:
    torch.manual_seed(seed)
    model = DecoderForCausalLM(tiny_config(**overrides)).eval()
    # Larger than initial weights, so that a wrong rotation or grouping shows in the logits.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model


def random_ids(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the parts


def test_rms_norm_is_x_over_its_root_mean_square_times_the_gain():
    norm = RMSNorm(6, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 7.0))
    x = torch.randn(3, 6)
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    torch.testing.assert_close(norm(x), expected)


def test_rotary_is_the_roformer_complex_rotation_in_the_half_layout():
    """Pair (x_i, x_{i+hs/2}) as the complex number x_i + i·x_{i+hs/2}; RoPE multiplies it by
    e^{i·p·θ_i}, θ_i = theta^(-2i/hs) (Su et al. 2021, eq. 34 in complex form)."""
    hs, P, theta = 8, 12, 100.0
    rotary = RotaryEmbedding(hs, P, theta)
    x = torch.randn(2, 3, P, hs)  # (B, nh, T, hs)
    rotated = apply_rotary(x, *rotary(0, P))

    as_complex = torch.complex(x[..., : hs // 2], x[..., hs // 2 :])  # (B, nh, T, hs/2)
    theta_i = theta ** (-torch.arange(0, hs, 2).double() / hs)
    angles = torch.arange(P).double()[:, None] * theta_i[None, :]  # (T, hs/2)
    turned = as_complex * torch.polar(torch.ones_like(angles), angles).to(torch.complex64)
    expected = torch.cat((turned.real, turned.imag), dim=-1)
    torch.testing.assert_close(rotated, expected, atol=1e-5, rtol=1e-5)


def test_rotary_scores_depend_only_on_the_distance_between_positions():
    hs = 8
    cos, sin = RotaryEmbedding(hs, 20)(0, 20)
    q, k = torch.randn(hs), torch.randn(hs)

    def score(p: int, r: int) -> torch.Tensor:
        rotated_q = apply_rotary(q, cos[p], sin[p])
        rotated_k = apply_rotary(k, cos[r], sin[r])
        return rotated_q @ rotated_k

    torch.testing.assert_close(score(7, 3), score(15, 11), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(score(2, 2), q @ k, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(score(7, 3), score(7, 4), atol=1e-3)


def test_default_intermediate_size_is_two_thirds_of_four_widths_rounded():
    assert DecoderConfig(n_embd=4096, n_head=32).intermediate_size == 11008  # LLaMA-7B
    assert DecoderConfig(n_embd=768).intermediate_size == 2048
    assert swiglu_hidden_size(48, 8) == 128
    assert DecoderConfig(n_embd=32, n_head=4, intermediate_size=40).intermediate_size == 40


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_embd": 30}, r"n_embd \(30\) must be divisible by n_head \(4\)"),
        ({"n_kv_head": 3}, r"n_kv_head \(3\) must divide n_head \(4\)"),
        ({"n_embd": 12, "n_head": 4, "n_kv_head": 4}, r"head size .* \(3\) must be even"),
        ({"attention": "flash"}, "attention must be one of sdpa, explicit"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"n_layer": 0}, "n_layer must be at least 1"),
        ({"rope_theta": 0}, "rope_theta must be positive"),
    ],
)
def test_config_refuses_bad_sizes_in_one_line(overrides, message):
    with pytest.raises(UserError, match=message) as caught:
        tiny_config(**overrides)
    assert "\n" not in str(caught.value)


def test_config_answers_to_llama_names():
    config = tiny_config()
    assert config.hidden_size == 32 and config.num_key_value_heads == 2
    assert config.max_position_embeddings == 16 and config.num_hidden_layers == 2
    assert DecoderConfig(n_head=6, n_embd=48).n_kv_head == 6  # None means one per query head


def test_grouped_attention_shrinks_the_key_value_projections():
    attention = MultiHeadAttention(32, 8, bias=False, n_kv_head=2)
    assert attention.query.weight.shape == (32, 32)
    assert attention.key.weight.shape == attention.value.weight.shape == (8, 32)  # 2 heads · 4
    with pytest.raises(ValueError, match="must divide"):
        MultiHeadAttention(32, 8, n_kv_head=3)


# ----------------------------------------------------------------------------- the model


def test_shapes_loss_and_backward_reach_every_parameter():
    model = tiny_model().train()
    ids = random_ids(3, 10)
    labels = random_ids(3, 10, seed=2)
    output = model(ids, labels=labels, use_cache=True)
    assert output.logits.shape == (3, 10, VOCAB)
    assert len(output.past_key_values) == 2
    assert output.past_key_values[0][0].shape == (3, 2, 10, 8)  # (B, nkv, S, hs): 2 kv heads
    expected = torch.nn.functional.cross_entropy(output.logits.reshape(-1, VOCAB), labels.view(-1))
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("n_kv_head", [1, 2, N_HEAD])
def test_explicit_attention_equals_sdpa_values_and_gradients(n_kv_head):
    fast = tiny_model(n_kv_head=n_kv_head).train()
    slow = tiny_model(n_kv_head=n_kv_head, attention="explicit").train()
    ids, labels = random_ids(2, 12), random_ids(2, 12, seed=3)
    fast_out, slow_out = fast(ids, labels=labels), slow(ids, labels=labels)
    torch.testing.assert_close(fast_out.logits, slow_out.logits, atol=1e-4, rtol=1e-4)
    fast_out.loss.backward()
    slow_out.loss.backward()
    slow_grads = dict(slow.named_parameters())
    for name, parameter in fast.named_parameters():
        torch.testing.assert_close(parameter.grad, slow_grads[name].grad, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("attention", ["sdpa", "explicit"])
@pytest.mark.parametrize("n_kv_head", [1, 2, N_HEAD])
def test_cached_forward_equals_full_forward(n_kv_head, attention):
    model = tiny_model(n_kv_head=n_kv_head, attention=attention)
    ids = random_ids(2, 11)
    with torch.no_grad():
        full = model(ids).logits
        # A prompt of 5, then 3 tokens at once (a masked block after the cache), then 1 by 1.
        first = model(ids[:, :5], use_cache=True)
        block = model(ids[:, 5:8], past_key_values=first.past_key_values, use_cache=True)
        pieces, past = [first.logits, block.logits], block.past_key_values
        for t in range(8, 11):
            step = model(ids[:, t : t + 1], past_key_values=past, use_cache=True)
            pieces.append(step.logits)
            past = step.past_key_values
    assert past[0][0].shape == (2, n_kv_head, 11, 8)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_kv_head", [1, 2, N_HEAD])
def test_cached_generation_equals_recomputation_greedy_and_sampled(n_kv_head):
    model = tiny_model(n_kv_head=n_kv_head)
    prompt = random_ids(2, 4)
    # 4 + 20 tokens pass the 16-position context: the window slides and the cache restarts.
    greedy = generate(model, prompt, max_new_tokens=20, temperature=0.0)
    assert torch.equal(
        greedy, generate(model, prompt, max_new_tokens=20, temperature=0.0, use_cache=False)
    )

    def sample(use_cache: bool) -> torch.Tensor:
        generator = torch.Generator().manual_seed(7)
        return generate(
            model, prompt, max_new_tokens=10, top_k=10, generator=generator, use_cache=use_cache
        )

    sampled = sample(use_cache=True)
    assert torch.equal(sampled, sample(use_cache=False))
    assert sampled.shape == (2, 14) and not torch.equal(sampled, greedy[:, :14])


def test_explicit_position_ids_equal_the_default_positions():
    model = tiny_model()
    ids = random_ids(2, 6)
    with torch.no_grad():
        default = model(ids).logits
        explicit = model(ids, position_ids=torch.arange(6).expand(2, 6)).logits
        shifted = model(ids, position_ids=torch.arange(3, 9)).logits
    torch.testing.assert_close(default, explicit)
    # Rotary attention sees only distances: the same tokens moved together give the same logits.
    torch.testing.assert_close(default, shifted, atol=1e-4, rtol=1e-4)


def test_sequence_longer_than_context_and_padding_are_rejected():
    model = tiny_model()
    with pytest.raises(ValueError, match="longer than the context"):
        model(random_ids(1, 17))
    with pytest.raises(ValueError, match="padding"):
        model(random_ids(1, 4), attention_mask=torch.tensor([[0, 1, 1, 1]]))


@pytest.mark.parametrize("tie", [True, False])
def test_save_and_load_round_trip_through_the_auto_classes(tmp_path: Path, tie: bool):
    model = tiny_model(tie_word_embeddings=tie)
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is DecoderConfig
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is DecoderForCausalLM
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    # The rotary tables are not saved; loading must rebuild them, not leave memory garbage.
    for name in ("cos_cached", "sin_cached"):
        assert torch.equal(
            getattr(loaded.model.rotary_emb, name), getattr(model.model.rotary_emb, name)
        )
    assert (loaded.lm_head.weight is loaded.model.embed_tokens.weight) == tie
    ids = random_ids(2, 9)
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_training_on_a_toy_sequence_lowers_the_loss():
    torch.manual_seed(0)
    model = DecoderForCausalLM(tiny_config(n_layer=1, tie_word_embeddings=True)).train()
    sequence = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3]])
    ids, labels = sequence[:, :-1], sequence[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = model(ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.9 * math.log(VOCAB)  # starts near uniform guessing
    assert losses[-1] < 0.2 * losses[0]
