"""Recurrent layers and models: the explicit (gate-by-gate) path equals torch.nn.RNN/LSTM/GRU
with copied weights — outputs, final states and gradients — for every option; the language model's
recurrent cache changes nothing; checkpoints load bit for bit, into either path."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from seqkit.generation import generate
from seqkit.models.rnn import (
    GRU,
    LSTM,
    RNN,
    RecurrentClassifierConfig,
    RecurrentForSequenceClassification,
    RecurrentLMConfig,
    RecurrentLMForCausalLM,
    recurrent_stack,
)

TOLERANCE = 1e-5
INPUT, HIDDEN, BATCH, STEPS = 3, 5, 4, 6
LENGTHS = torch.tensor([6, 2, 5, 3])  # unsorted on purpose: packing must restore the order

CELLS = {
    "rnn-tanh": (RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, nn.LSTM, {}),
    "gru": (GRU, nn.GRU, {}),
}
# (num_layers, bidirectional, batch_first): every value of every option, and each pair of
# options in both agreeing and differing settings (a pairwise cover of the 8 combinations).
OPTIONS = [(1, False, False), (1, True, True), (2, False, True), (2, True, False)]


def pair(cell: str, num_layers: int, bidirectional: bool, batch_first: bool, **extra):
    """(seqkit layer on the explicit path, torch layer with the same weights)."""
    ours_class, torch_class, kwargs = CELLS[cell]
    kwargs = {**kwargs, **extra}
    torch.manual_seed(0)
    reference = torch_class(
        INPUT, HIDDEN, num_layers, batch_first=batch_first, bidirectional=bidirectional, **kwargs
    )
    ours = ours_class(
        INPUT, HIDDEN, num_layers, batch_first=batch_first, bidirectional=bidirectional,
        implementation="explicit", **kwargs,
    )  # fmt: skip
    # Same class underneath, same parameter names: the state dict copies as it is.
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def inputs(num_layers: int, bidirectional: bool, batch_first: bool, lstm: bool, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = torch.randn(shape, generator=generator)
    layers = num_layers * (2 if bidirectional else 1)
    h0 = torch.randn(layers, BATCH, HIDDEN, generator=generator)
    hx = (h0, torch.randn(layers, BATCH, HIDDEN, generator=generator)) if lstm else h0
    return x, hx


def leaves(x, hx):
    """Fresh leaf copies that record gradients."""
    x = x.clone().requires_grad_()
    if isinstance(hx, tuple):
        return x, tuple(h.clone().requires_grad_() for h in hx)
    return x, (None if hx is None else hx.clone().requires_grad_())


def flat(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def assert_close(ours, reference, what):
    assert ours.shape == reference.shape, what
    difference = (ours - reference).abs().max().item() if ours.numel() else 0.0
    assert difference <= TOLERANCE, f"{what}: max difference {difference:.2e}"


def compare(ours_layer, reference_layer, run_ours, run_reference, x, hx):
    """Run both, backpropagate the same random weighting of outputs and states, compare all."""
    x1, hx1 = leaves(x, hx)
    x2, hx2 = leaves(x, hx)
    out1, state1 = run_ours(x1, hx1)
    out2, state2 = run_reference(x2, hx2)
    assert_close(out1, out2, "output")
    for i, (s1, s2) in enumerate(zip(flat(state1), flat(state2), strict=True)):
        assert_close(s1, s2, f"final state {i}")
    generator = torch.Generator().manual_seed(2)
    weights = [torch.randn(t.shape, generator=generator) for t in [out2, *flat(state2)]]
    loss1 = sum((w * t).sum() for w, t in zip(weights, [out1, *flat(state1)], strict=True))
    loss2 = sum((w * t).sum() for w, t in zip(weights, [out2, *flat(state2)], strict=True))
    loss1.backward()
    loss2.backward()
    assert_close(x1.grad, x2.grad, "input gradient")
    for i, (h1, h2) in enumerate(zip(flat(hx1), flat(hx2), strict=True)):
        if h1 is not None:
            assert_close(h1.grad, h2.grad, f"initial state {i} gradient")
    reference_grads = dict(reference_layer.named_parameters())
    for name, parameter in ours_layer.named_parameters():
        assert_close(parameter.grad, reference_grads[name].grad, f"gradient of {name}")
    ours_layer.zero_grad()
    reference_layer.zero_grad()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"), OPTIONS)
def test_explicit_path_equals_torch(cell, num_layers, bidirectional, batch_first):
    ours, reference = pair(cell, num_layers, bidirectional, batch_first)
    x, hx = inputs(num_layers, bidirectional, batch_first, lstm=cell == "lstm")

    # Full-length batch, with zero and with given initial states.
    compare(ours, reference, lambda x, h: ours(x), lambda x, h: reference(x), x, None)
    compare(ours, reference, ours, reference, x, hx)

    # Right-padded batch with lengths; torch's reference is pack → run → pad.
    def run_reference_padded(x, h):
        packed = pack_padded_sequence(x, LENGTHS, batch_first=batch_first, enforce_sorted=False)
        out, state = reference(packed, h)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=STEPS)
        return out, state

    compare(ours, reference, lambda x, h: ours(x, h, lengths=LENGTHS), run_reference_padded, x, hx)

    # A PackedSequence in, a PackedSequence out (compared through its flat data).
    def packed_runner(layer):
        def run(x, h):
            packed = pack_padded_sequence(x, LENGTHS, batch_first=batch_first, enforce_sorted=False)
            out, state = layer(packed, h)
            assert torch.equal(out.batch_sizes, packed.batch_sizes)
            assert torch.equal(out.unsorted_indices, packed.unsorted_indices)
            return out.data, state

        return run

    compare(ours, reference, packed_runner(ours), packed_runner(reference), x, hx)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_unbatched_input_and_the_fused_path(cell):
    ours, reference = pair(cell, 2, True, False)
    x, hx = inputs(2, True, False, lstm=cell == "lstm")
    single = x[:, 0]  # (T, I)
    single_hx = tuple(h[:, 0] for h in hx) if cell == "lstm" else hx[:, 0]
    compare(ours, reference, ours, reference, single, single_hx)
    ours.implementation = "fused"
    compare(ours, reference, lambda x, h: ours(x, h, lengths=LENGTHS), lambda x, h: _padded(
        reference, x, h), x, hx)  # fmt: skip


def _padded(layer, x, h):
    packed = pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
    out, state = layer(packed, h)
    return pad_packed_sequence(out, total_length=STEPS)[0], state


@pytest.mark.parametrize("cell", ["rnn-tanh", "lstm", "gru"])
def test_dropout_between_layers_draws_the_same_masks_as_torch(cell):
    # Both paths draw one Bernoulli mask per layer boundary from the global generator, in the
    # same order, so with the same seed even training-mode dropout gives the same numbers.
    ours, reference = pair(cell, 3, True, True, dropout=0.5)
    x, hx = inputs(3, True, True, lstm=cell == "lstm")

    def seeded(layer):
        def run(x, h):
            torch.manual_seed(7)
            return layer(x, h)

        return run

    compare(ours, reference, seeded(ours), seeded(reference), x, hx)
    ours.eval()
    assert_close(ours(x, hx)[0], reference.eval()(x, hx)[0], "eval output")


def test_bad_arguments():
    with pytest.raises(ValueError, match="implementation"):
        LSTM(2, 3, implementation="fast")
    with pytest.raises(ValueError, match="cell"):
        recurrent_stack("transformer", 2, 3)
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(2, 3, proj_size=2)
    layer = GRU(2, 3)
    with pytest.raises(ValueError, match="at least one step"):
        layer(torch.zeros(4, 2, 2), lengths=torch.tensor([4, 0]))


# ----------------------------------------------------------------------------- language model

VOCAB = 11


def tiny_lm(cell: str = "lstm", seed: int = 0, **overrides) -> RecurrentLMForCausalLM:
    torch.manual_seed(seed)
    values = dict(vocab_size=VOCAB, cell=cell, embedding_size=8, hidden_size=12, num_layers=2)
    config = RecurrentLMConfig(**{**values, **overrides})
    return RecurrentLMForCausalLM(config).eval()


def random_ids(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_lm_paths_agree_and_the_cache_is_the_state(cell):
    model = tiny_lm(cell)
    ids = random_ids(2, 9)
    out = model(ids, labels=ids, use_cache=True)
    assert out.logits.shape == (2, 9, VOCAB)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    model.config.implementation = "explicit"  # read at every call
    explicit = model(ids, labels=ids, use_cache=True)
    assert_close(explicit.logits, out.logits, "logits")
    # Reading 5 tokens, keeping the state, then the other 4 gives the same logits.
    first = model(ids[:, :5], use_cache=True)
    rest = model(ids[:, 5:], past_key_values=first.past_key_values, use_cache=True)
    assert_close(torch.cat([first.logits, rest.logits], dim=1), out.logits, "resumed logits")
    for a, b in zip(flat(rest.past_key_values), flat(out.past_key_values), strict=True):
        assert_close(a, b, "state")


def test_lm_generation_with_and_without_cache_is_identical():
    model = tiny_lm("gru")
    prompt = random_ids(2, 3)
    cached = generate(model, prompt, max_new_tokens=12, temperature=0)
    recomputed = generate(model, prompt, max_new_tokens=12, temperature=0, use_cache=False)
    assert torch.equal(cached, recomputed)
    sampled = generate(model, prompt, max_new_tokens=12, generator=torch.Generator().manual_seed(3))
    again = generate(model, prompt, max_new_tokens=12, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sampled, again) and sampled.shape == (2, 15)


def test_lm_right_padding_ends_each_row_at_its_own_last_token():
    model = tiny_lm("lstm")
    ids = random_ids(2, 7)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    out = model(ids, attention_mask=mask, use_cache=True)
    alone = model(ids[1:, :4], use_cache=True)
    assert_close(out.logits[1:, :4], alone.logits, "padded row logits")
    assert_close(out.past_key_values[0][:, 1:], alone.past_key_values[0], "padded row state")
    with pytest.raises(ValueError, match="right padding"):
        model(ids, attention_mask=torch.tensor([[0] * 3 + [1] * 4] * 2))


def test_lm_config_checks():
    with pytest.raises(ValueError, match="cell"):
        RecurrentLMConfig(cell="transformer")
    with pytest.raises(ValueError, match="implementation"):
        RecurrentLMConfig(implementation="fast")
    with pytest.raises(ValueError, match="tie_word_embeddings"):
        RecurrentLMConfig(embedding_size=8, hidden_size=12, tie_word_embeddings=True)


@pytest.mark.parametrize("tie", [False, True])
def test_lm_save_and_load_bit_for_bit_into_either_path(tmp_path, tie):
    model = tiny_lm("lstm", embedding_size=12, tie_word_embeddings=tie)
    if tie:
        assert model.lm_head.weight is model.embedding.weight
    model.save_pretrained(tmp_path)
    ids = random_ids(3, 8)
    for path in ("fused", "explicit"):
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path, implementation=path).eval()
        assert type(loaded) is RecurrentLMForCausalLM
        assert loaded.config.implementation == path
        state, loaded_state = model.state_dict(), loaded.state_dict()
        assert state.keys() == loaded_state.keys()
        for name in state:
            assert torch.equal(state[name], loaded_state[name]), name
        assert_close(loaded(ids).logits, model(ids).logits, f"logits after loading ({path})")
    # The recurrent stack's weights are torch's own: they load into a plain nn.LSTM.
    plain = nn.LSTM(12, 12, 2, batch_first=True)
    plain.load_state_dict({k[4:]: v for k, v in model.state_dict().items() if k[:4] == "rnn."})


# ----------------------------------------------------------------------------- classifier


def tiny_classifier(**overrides) -> RecurrentForSequenceClassification:
    torch.manual_seed(0)
    values = dict(vocab_size=VOCAB, embedding_size=8, hidden_size=6, num_layers=2, num_labels=3)
    return RecurrentForSequenceClassification(
        RecurrentClassifierConfig(**{**values, **overrides})
    ).eval()


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_classifier_padding_changes_nothing(pooling, cell):
    model = tiny_classifier(pooling=pooling, cell=cell)
    ids = random_ids(2, 6).clamp(min=1)
    ids[1, 4:] = 0  # pad the second text to the length of the first
    mask = (torch.arange(6) < torch.tensor([[6], [4]])).long()
    labels = torch.tensor([0, 2])
    out = model(ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
    alone = model(ids[1:, :4])
    assert_close(out.logits[1:], alone.logits, "padded text logits")
    model.config.implementation = "explicit"
    assert_close(model(ids, attention_mask=mask).logits, out.logits, "explicit path logits")
    out.loss.backward()
    assert all(p.grad is not None for p in model.rnn.parameters())


def test_classifier_round_trip(tmp_path):
    model = tiny_classifier(id2label={0: "neg", 1: "neutral", 2: "pos"})
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.id2label[2] == "pos"
    ids = random_ids(2, 5)
    assert torch.equal(loaded(ids).logits, model(ids).logits)
    with pytest.raises(ValueError, match="pooling"):
        RecurrentClassifierConfig(pooling="attention")
