"""The shared attention module: fused (SDPA) and explicit paths agree for every mask, the
explicit path matches the formula, masks hide what they should, and the cache is exact."""

import math

import pytest
import torch

from seqkit.models.attention import MultiHeadAttention, build_attention_mask

pytestmark = pytest.mark.usefixtures("one_thread")

B, T, S, C, NH = 3, 5, 7, 16, 4


def _pair(**kwargs):
    torch.manual_seed(0)
    fused = MultiHeadAttention(C, NH, **kwargs).eval()
    explicit = MultiHeadAttention(C, NH, attention="explicit", **kwargs).eval()
    explicit.load_state_dict(fused.state_dict())
    return fused, explicit


def _padding(length):
    mask = torch.ones(B, length, dtype=torch.long)
    mask[1, length - 2 :] = 0  # row 1 ends with two padding positions
    mask[2, length - 1 :] = 0
    return mask


@pytest.mark.parametrize(
    "case", ["self", "padding", "causal", "causal+padding", "cross", "cross+padding"]
)
def test_sdpa_equals_explicit(case):
    fused, explicit = _pair(cross=case.startswith("cross"))
    x = torch.randn(B, T, C)
    memory = torch.randn(B, S, C) if case.startswith("cross") else None
    kwargs = {"causal": "causal" in case}
    if "padding" in case:
        kwargs["key_padding_mask"] = _padding(S if memory is not None else T)
    a = fused(x, memory, **kwargs).output
    b = explicit(x, memory, **kwargs).output
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_explicit_path_is_the_formula():
    _, layer = _pair()
    x = torch.randn(B, T, C)
    out = layer(x, causal=True, need_weights=True)
    q = layer.query(x).view(B, T, NH, -1).transpose(1, 2)
    k = layer.key(x).view(B, T, NH, -1).transpose(1, 2)
    v = layer.value(x).view(B, T, NH, -1).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(C // NH)
    scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
    expected = layer.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C))
    torch.testing.assert_close(out.output, expected)
    # Causal and padding masks give zero probability to hidden keys; rows sum to one.
    assert torch.all(out.weights.triu(1) == 0)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(B, NH, T))


def test_padding_keys_do_not_matter():
    fused, _ = _pair()
    x = torch.randn(B, T, C)
    mask = _padding(T)
    changed = x.clone()
    changed[1, T - 2 :] = 100.0  # change only row 1's padding positions
    a = fused(x, key_padding_mask=mask).output
    b = fused(changed, key_padding_mask=mask).output
    # Real positions of row 1 see the same keys, so their outputs do not move.
    torch.testing.assert_close(a[1, : T - 2], b[1, : T - 2])
    assert not torch.allclose(a[1, T - 2 :], b[1, T - 2 :])


@pytest.mark.parametrize("attention", ["sdpa", "explicit"])
def test_cache_matches_full_causal_attention(attention):
    torch.manual_seed(0)
    layer = MultiHeadAttention(C, NH, attention=attention).eval()
    x = torch.randn(B, T, C)
    full = layer(x, causal=True).output
    # Two tokens, then one at a time: the cache extends, the queries sit at the end.
    first = layer(x[:, :2], causal=True, use_cache=True)
    outputs, cache = [first.output], first.key_value
    for t in range(2, T):
        step = layer(x[:, t : t + 1], causal=True, past_key_value=cache, use_cache=True)
        outputs.append(step.output)
        cache = step.key_value
    torch.testing.assert_close(torch.cat(outputs, dim=1), full, atol=1e-5, rtol=1e-5)
    # Several new tokens after a cache need the shifted triangle (not is_causal's top-left one).
    rest = layer(x[:, 2:], causal=True, past_key_value=first.key_value).output
    torch.testing.assert_close(rest, full[:, 2:], atol=1e-5, rtol=1e-5)


def test_cross_attention_cache_reuses_memory():
    torch.manual_seed(0)
    layer = MultiHeadAttention(C, NH, cross=True).eval()
    x, memory = torch.randn(B, T, C), torch.randn(B, S, C)
    first = layer(x, memory, use_cache=True)
    again = layer(x, None, past_key_value=first.key_value)
    torch.testing.assert_close(first.output, again.output)


def test_mask_shapes_and_dropout_in_training():
    mask = build_attention_mask(2, 4, causal=True)
    assert mask.tolist() == [[True, True, True, False], [True, True, True, True]]
    assert build_attention_mask(3, 3) is None
    assert build_attention_mask(3, 3, key_padding_mask=_padding(3)).shape == (B, 1, 1, 3)
    layer = MultiHeadAttention(C, NH, dropout=0.5).train()
    x = torch.randn(B, T, C)
    assert not torch.allclose(layer(x).output, layer(x).output)  # dropout is on in training
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
