"""GPT: both attention paths agree, the model equals transformers' GPT-2 with converted weights,
the KV cache changes nothing, and save/load keeps the tied weights tied."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from seqkit.generation import generate
from seqkit.models.gpt import GPTLMHeadModel, gpt2_state_dict_to_seqkit, seqkit_state_dict_to_gpt2
from seqkit.models.gpt_config import GPTConfig
from seqkit.models.gpt_network import StandaloneGPT, gelu_new

VOCAB = 50


def tiny_config(**overrides) -> GPTConfig:
    values = dict(
        vocab_size=VOCAB,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPTConfig(**{**values, **overrides})


def tiny_model(seed: int = 0, **overrides) -> GPTLMHeadModel:
    torch.manual_seed(seed)
    return GPTLMHeadModel(tiny_config(**overrides))


def random_ids(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def hf_gpt2(seed: int = 0, attn_implementation: str = "eager") -> GPT2LMHeadModel:
    """A randomly initialised tiny GPT-2 with dropout off."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation=attn_implementation,
    )
    return GPT2LMHeadModel(config).eval()


def seqkit_from_hf(hf: GPT2LMHeadModel) -> GPTLMHeadModel:
    model = GPTLMHeadModel(GPTConfig.from_gpt2_config(hf.config))
    model.load_state_dict(gpt2_state_dict_to_seqkit(hf.state_dict()))
    return model.eval()


# ----------------------------------------------------------------------------- config


def test_config_rejects_width_not_divisible_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)


def test_config_converts_to_and_from_gpt2_config():
    config = tiny_config(n_inner=48, eos_token_id=3)
    back = GPTConfig.from_gpt2_config(config.to_gpt2_config())
    assert back.to_dict() == config.to_dict()


# ----------------------------------------------------------------------------- activation


def test_gelu_new_equals_the_tanh_approximation():
    x = torch.linspace(-8, 8, 2001, requires_grad=True)
    reference_x = x.detach().clone().requires_grad_()
    grad = torch.randn(2001, generator=torch.Generator().manual_seed(0))
    ours, reference = gelu_new(x), F.gelu(reference_x, approximate="tanh")
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)
    ours.backward(grad)
    reference.backward(grad)
    torch.testing.assert_close(x.grad, reference_x.grad, atol=1e-5, rtol=1e-5)
    x64 = torch.randn(40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gelu_new, (x64,))


# ----------------------------------------------------------------------------- attention paths


@pytest.mark.parametrize("training", [False, True])
def test_sdpa_and_explicit_attention_agree(training):
    sdpa = tiny_model(attention="sdpa")
    explicit = tiny_model(attention="explicit")
    explicit.load_state_dict(sdpa.state_dict())
    sdpa.train(training)
    explicit.train(training)
    ids, labels = random_ids(3, 12), random_ids(3, 12, seed=2)

    out_sdpa = sdpa(ids, labels=labels)
    out_explicit = explicit(ids, labels=labels)
    torch.testing.assert_close(out_sdpa.logits, out_explicit.logits, atol=1e-5, rtol=1e-5)
    out_sdpa.loss.backward()
    out_explicit.loss.backward()
    grads_explicit = dict(explicit.named_parameters())
    for name, param in sdpa.named_parameters():
        torch.testing.assert_close(
            param.grad, grads_explicit[name].grad, atol=1e-5, rtol=1e-5, msg=name
        )


def test_switching_the_attention_path_on_a_built_model_takes_effect(monkeypatch):
    import seqkit.models.gpt_network as gpt_module

    model = tiny_model(attention="sdpa").eval()
    paths = []
    shared = gpt_module.scaled_dot_product_attention

    def recording(*args, path, **kwargs):
        paths.append(path)
        return shared(*args, path=path, **kwargs)

    monkeypatch.setattr(gpt_module, "scaled_dot_product_attention", recording)
    model(random_ids(1, 4))
    assert paths == ["sdpa"] * model.config.n_layer
    model.config.attention = "explicit"
    model(random_ids(1, 4))
    assert paths[model.config.n_layer :] == ["explicit"] * model.config.n_layer


@pytest.mark.parametrize("attention", ["sdpa", "explicit"])
def test_cached_forward_equals_full_forward(attention):
    """Prefix, then several tokens at once, then one at a time: every path of the mask logic."""
    model = tiny_model(attention=attention).eval()
    ids = random_ids(2, 12)
    full = model(ids).logits
    first = model(ids[:, :5], use_cache=True)
    middle = model(ids[:, 5:9], past_key_values=first.past_key_values, use_cache=True)
    logits = [first.logits, middle.logits]
    past = middle.past_key_values
    for t in range(9, 12):
        step = model(ids[:, t : t + 1], past_key_values=past, use_cache=True)
        logits.append(step.logits)
        past = step.past_key_values
    torch.testing.assert_close(torch.cat(logits, dim=1), full, atol=1e-5, rtol=1e-5)


def test_explicit_position_ids_equal_the_default_positions():
    model = tiny_model().eval()
    ids = random_ids(2, 10)
    full = model(ids).logits
    torch.testing.assert_close(model(ids, position_ids=torch.arange(10)).logits, full)
    batched = torch.arange(10).expand(2, 10)
    torch.testing.assert_close(model(ids, position_ids=batched).logits, full)


def test_sequence_longer_than_context_is_rejected():
    with pytest.raises(ValueError, match="context"):
        tiny_model()(random_ids(1, 17))


# ----------------------------------------------------------------------------- GPT-2 parity


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_logits_equal_transformers_gpt2(attn_implementation):
    hf = hf_gpt2(attn_implementation=attn_implementation)
    model = seqkit_from_hf(hf)
    ids = random_ids(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, hf(ids).logits, atol=1e-5, rtol=1e-5)


def test_greedy_generation_equals_transformers_gpt2():
    hf = hf_gpt2()
    model = seqkit_from_hf(hf)
    prompt = random_ids(2, 4)
    expected = hf.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        do_sample=False,
        max_new_tokens=10,
        min_new_tokens=10,
        pad_token_id=0,
    )
    ours = generate(model, prompt, max_new_tokens=10, temperature=0.0)
    assert torch.equal(ours, expected)


def test_state_dict_conversion_round_trips_bit_for_bit():
    hf = hf_gpt2()
    original = hf.state_dict()
    back = seqkit_state_dict_to_gpt2(gpt2_state_dict_to_seqkit(original))
    assert back.keys() == original.keys()
    for name, tensor in original.items():
        assert torch.equal(back[name], tensor), name
    # And the converted weights load into a stock GPT-2 without complaint.
    fresh = hf_gpt2(seed=1)
    fresh.load_state_dict(seqkit_state_dict_to_gpt2(seqkit_from_hf(hf).state_dict()))


# ----------------------------------------------------------------------------- KV cache


@pytest.mark.parametrize("prompt_length", [3, 16])
def test_cached_generation_equals_recomputation_past_the_context(prompt_length):
    model = tiny_model(seed=3)
    prompt = random_ids(2, prompt_length)
    # 16 positions of context, 30 tokens in all: the last ones use the sliding window.
    cached = generate(model, prompt, max_new_tokens=30, temperature=0.0)
    recomputed = generate(model, prompt, max_new_tokens=30, temperature=0.0, use_cache=False)
    assert cached.shape == (2, prompt_length + 30)
    assert torch.equal(cached, recomputed)

    # The reference loop, written out: every step reads only the last 16 tokens.
    ids = prompt
    with torch.no_grad():
        for _ in range(30):
            next_token = model(ids[:, -16:]).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat((ids, next_token), dim=1)
    assert torch.equal(cached, ids)


# ----------------------------------------------------------------------------- standalone


def standalone_twin(model: GPTLMHeadModel) -> StandaloneGPT:
    """The same weights in the plain-PyTorch network, configured from the saved config's
    values (what a model folder's config.json holds)."""
    settings = StandaloneGPT.config_from(model.config.to_dict())
    assert settings is not None
    twin = StandaloneGPT(settings)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


@pytest.mark.parametrize("overrides", [{}, {"activation_function": "relu", "n_inner": 48}])
def test_standalone_network_computes_what_the_hub_model_does(overrides):
    model = tiny_model(seed=5, **overrides).eval()
    twin = standalone_twin(model)
    assert twin.lm_head.weight is twin.transformer.wte.weight  # tied, like GPT-2
    ids = random_ids(2, 12)
    with torch.no_grad():
        assert torch.equal(twin(ids).logits, model(ids).logits)
    # Sampled generation past the context (sliding window) with the cache: the same tokens.
    for seed in (0, 1):
        ours = generate(twin, ids[:, :5], max_new_tokens=25, temperature=0.9, top_k=10,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
        theirs = generate(model, ids[:, :5], max_new_tokens=25, temperature=0.9, top_k=10,
                          generator=torch.Generator().manual_seed(seed))  # fmt: skip
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize(
    "change",
    [
        {"n_head": 3},  # does not divide n_embd
        {"n_layer": 0},
        {"n_embd": 32.0},
        {"vocab_size": True},
        {"attention": "flash"},
        {"activation_function": "swish"},
        {"resid_pdrop": 1.5},
        {"layer_norm_epsilon": 0},
        {"n_inner": -1},
        {"tie_word_embeddings": "yes"},
        {"activation_function": ["gelu"]},
        {"dtype": "float16"},
    ],
)
def test_standalone_config_declines_what_it_cannot_build(change):
    values = {**tiny_config().to_dict(), **change}
    assert StandaloneGPT.config_from(values) is None
    for missing in ("n_positions", "n_inner", "activation_function", "tie_word_embeddings"):
        values = tiny_config().to_dict()
        del values[missing]
        assert StandaloneGPT.config_from(values) is None


# ----------------------------------------------------------------------------- loss


def test_loss_is_cross_entropy_on_already_shifted_labels():
    model = tiny_model()
    ids, labels = random_ids(2, 10), random_ids(2, 10, seed=2)
    labels[0, :3] = -100
    out = model(ids, labels=labels)
    keep = labels != -100
    expected = F.cross_entropy(out.logits[keep], labels[keep])
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fully_ignored_labels_do_not_contribute():
    model = tiny_model()
    ids, labels = random_ids(2, 10), random_ids(2, 10, seed=2)
    partial = labels.clone()
    partial[1] = -100
    torch.testing.assert_close(
        model(ids, labels=partial).loss, model(ids[:1], labels=labels[:1]).loss
    )


# ----------------------------------------------------------------------------- save / load


def test_save_and_load_keeps_tied_weights_without_warnings(tmp_path: Path, caplog):
    model = tiny_model(eos_token_id=1)
    assert model.lm_head.weight is model.transformer.wte.weight

    caplog.set_level(logging.WARNING, logger="transformers")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.save_pretrained(tmp_path)
        loaded = GPTLMHeadModel.from_pretrained(tmp_path)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        names = set(f.keys())
    # One tensor for the tied pair.
    assert "transformer.wte.weight" in names
    assert "lm_head.weight" not in names

    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    assert loaded.config.to_diff_dict() == {**model.config.to_diff_dict(), "dtype": "float32"}
    original = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name


def test_auto_model_loads_a_saved_gpt(tmp_path: Path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, GPTLMHeadModel)
    ids = random_ids(1, 8)
    torch.testing.assert_close(loaded.eval()(ids).logits, model.eval()(ids).logits)


# ----------------------------------------------------------------------------- trained standalone


@pytest.mark.parametrize(("tied", "scaled"), [(True, False), (False, False), (True, True)])
def test_a_fresh_standalone_network_starts_from_the_hub_models_weights(tied, scaled):
    """One seed gives both classes the same initialisation, GPT-2's scaled residual
    projections included when asked for (N(0, 0.02/√(2·n_layer))), so a recipe's run does not
    depend on which class it trains."""
    sizes = {"n_layer": 8, "n_embd": 64, "tie_word_embeddings": tied, "scale_residual_init": scaled}
    torch.manual_seed(3)
    ours = StandaloneGPT.fresh(tiny_config(**sizes))
    hub = tiny_model(seed=3, **sizes)
    theirs = hub.state_dict()
    assert ours.state_dict().keys() == theirs.keys()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, theirs[name]), name
    assert (ours.lm_head.weight is ours.transformer.wte.weight) == tied
    # Measured through the transformers class, whose initialisation skips parent modules.
    residual = torch.cat([b.attn.c_proj.weight.flatten() for b in hub.transformer.h])
    plain = torch.cat([b.attn.c_attn.weight.flatten() for b in hub.transformer.h])
    expected = 0.02 / 4 if scaled else 0.02  # 0.02 / √16
    assert abs(residual.std().item() - expected) < 0.05 * expected
    assert 0.019 < plain.std().item() < 0.021


def test_the_standalone_network_trains_as_the_hub_model_does():
    torch.manual_seed(4)
    ours = StandaloneGPT.fresh(tiny_config())
    hub = tiny_model(seed=4)
    ids, labels = random_ids(2, 10), random_ids(2, 10, seed=2)
    labels[0, :3] = -100
    mine, reference = ours(ids, labels=labels), hub(ids, labels=labels)
    assert torch.equal(mine.logits, reference.logits)
    assert torch.equal(mine.loss, reference.loss)
    mine.loss.backward()
    reference.loss.backward()
    grads = dict(hub.named_parameters())
    for name, parameter in ours.named_parameters():
        assert torch.equal(parameter.grad, grads[name].grad), name
    assert ours.num_parameters() == hub.num_parameters()


@pytest.mark.parametrize("tied", [True, False])
def test_the_standalone_network_writes_the_hub_models_folder(tmp_path: Path, tied):
    torch.manual_seed(6)
    ours = StandaloneGPT.fresh(tiny_config(tie_word_embeddings=tied, eos_token_id=1))
    hub = GPTLMHeadModel(tiny_config(tie_word_embeddings=tied, eos_token_id=1))
    hub.load_state_dict(ours.state_dict())
    ours.save_pretrained(tmp_path / "ours")
    hub.save_pretrained(tmp_path / "hub")

    config = (tmp_path / "ours" / "config.json").read_text()
    assert config == (tmp_path / "hub" / "config.json").read_text()
    with (
        safe_open(tmp_path / "ours" / "model.safetensors", "pt") as mine,
        safe_open(tmp_path / "hub" / "model.safetensors", "pt") as reference,
    ):
        assert mine.metadata() == reference.metadata() == {"format": "pt"}
        names = set(mine.keys())
        assert names == set(reference.keys())
        assert ("lm_head.weight" in names) != tied  # a tied pair is stored once
        for name in names:
            assert torch.equal(mine.get_tensor(name), reference.get_tensor(name)), name
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ours")
    assert isinstance(loaded, GPTLMHeadModel)
    ids = random_ids(1, 8)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(ids).logits, ours.eval()(ids).logits)
