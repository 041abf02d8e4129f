"""Decoding: the logits filters, greedy and seeded sampling, eos handling and mode restoring."""

from __future__ import annotations

import math

import pytest
import torch

from seqkit.generation import apply_temperature, generate, top_k_filter, top_p_filter
from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig

NEG_INF = float("-inf")


@pytest.fixture(scope="module")
def model() -> GPTLMHeadModel:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2)
    return GPTLMHeadModel(config)


def prompt() -> torch.Tensor:
    return torch.tensor([[1, 2, 3], [4, 5, 6]])


# ----------------------------------------------------------------------------- filters


def test_apply_temperature_divides_and_rejects_zero():
    logits = torch.tensor([[1.0, 2.0, 4.0]])
    assert torch.equal(apply_temperature(logits, 2.0), torch.tensor([[0.5, 1.0, 2.0]]))
    assert apply_temperature(logits, 1.0) is logits
    with pytest.raises(ValueError):
        apply_temperature(logits, 0.0)


def test_top_k_keeps_the_k_largest_per_row():
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0], [4.0, 1.0, 0.0, 9.0]])
    filtered = top_k_filter(logits, 2)
    expected = torch.tensor([[NEG_INF, 5.0, 3.0, NEG_INF], [4.0, NEG_INF, NEG_INF, 9.0]])
    assert torch.equal(filtered, expected)
    assert torch.equal(top_k_filter(logits, 4), logits)
    assert torch.equal(top_k_filter(logits, 100), logits)
    with pytest.raises(ValueError):
        top_k_filter(logits, 0)


def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    probs = torch.tensor([[0.5, 0.1, 0.3, 0.1]])
    logits = probs.log()
    # 0.5 alone < 0.7; 0.5 + 0.3 = 0.8 ≥ 0.7: keep exactly those two.
    kept = top_p_filter(logits, 0.7).isfinite()
    assert kept.tolist() == [[True, False, True, False]]
    # 0.5 + 0.3 = 0.8 < 0.85: one of the 0.1 tokens is needed too (and only one).
    assert top_p_filter(logits, 0.85).isfinite().sum().item() == 3
    assert top_p_filter(logits, 0.4).isfinite().tolist() == [[True, False, False, False]]
    # p = 1 keeps everything.
    assert top_p_filter(logits, 1.0).isfinite().all()


def test_top_p_always_keeps_at_least_the_likeliest_token():
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 2.0, -1.0]])
    filtered = top_p_filter(logits, 1e-6)
    assert filtered.isfinite().sum(dim=-1).tolist() == [1, 1]
    assert filtered[0, 1] == 3.0
    with pytest.raises(ValueError):
        top_p_filter(logits, 0.0)


def test_filters_keep_the_surviving_logits_unchanged():
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
    for filtered in (top_k_filter(logits, 5), top_p_filter(logits, 0.5)):
        kept = filtered.isfinite()
        assert torch.equal(filtered[kept], logits[kept])
        assert math.isinf(filtered[~kept].max().item()) if (~kept).any() else True


# ----------------------------------------------------------------------------- generate


def test_temperature_zero_is_greedy(model):
    out = generate(model, prompt(), max_new_tokens=6, temperature=0.0)
    assert out.shape == (2, 9)
    assert torch.equal(out[:, :3], prompt())
    ids = prompt()
    with torch.no_grad():
        for _ in range(6):
            ids = torch.cat((ids, model.eval()(ids).logits[:, -1].argmax(-1, keepdim=True)), 1)
    assert torch.equal(out, ids)
    # do_sample=False is greedy whatever the temperature.
    assert torch.equal(generate(model, prompt(), max_new_tokens=6, do_sample=False), out)


def test_same_seed_gives_the_same_sample(model):
    def sample(seed: int, **kwargs) -> torch.Tensor:
        return generate(
            model,
            prompt(),
            max_new_tokens=20,
            temperature=1.5,
            generator=torch.Generator().manual_seed(seed),
            **kwargs,
        )

    assert torch.equal(sample(7), sample(7))
    assert torch.equal(sample(7, top_k=5, top_p=0.9), sample(7, top_k=5, top_p=0.9))
    assert not torch.equal(sample(7), sample(8))


def test_top_k_one_sampling_is_greedy(model):
    greedy = generate(model, prompt(), max_new_tokens=8, temperature=0.0)
    sampled = generate(
        model, prompt(), max_new_tokens=8, top_k=1, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(sampled, greedy)


def test_generation_stops_when_every_row_reached_eos(model):
    greedy = generate(model, prompt(), max_new_tokens=8, temperature=0.0)
    eos = int(greedy[0, 4])  # the second token row 0 generates
    out = generate(model, prompt(), max_new_tokens=8, temperature=0.0, eos_token_id=eos)
    row_1_ends = (greedy[1, 3:] == eos).nonzero()
    if len(row_1_ends) == 0:
        assert out.shape == greedy.shape
    # Row 0 ends at its eos and is padded with eos from then on.
    assert torch.equal(out[0, :5], greedy[0, :5])
    assert (out[0, 5:] == eos).all()


def test_generate_restores_training_mode_and_leaves_no_graph(model):
    model.train()
    out = generate(model, prompt(), max_new_tokens=2, temperature=0.0)
    assert model.training
    assert not out.requires_grad
    model.eval()


def test_generate_rejects_bad_arguments(model):
    with pytest.raises(ValueError):
        generate(model, prompt(), max_new_tokens=2, temperature=-1.0)
    with pytest.raises(ValueError):
        generate(model, torch.zeros(2, 0, dtype=torch.long), max_new_tokens=2)
