"""The benchmark's statistics (scripts/bench.py): paired ratios, alternating order, the table.

The benchmarks themselves are timed runs of minutes and are not part of the suite; what is
tested here is the arithmetic that turns timings into the ratios the README quotes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH_PATH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("seqkit_bench", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body is built.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_paired_ratio_cancels_drift_that_the_ratio_of_medians_does_not(bench):
    # seqkit is exactly 1.25x faster in every round, while the machine slows down round by
    # round; the medians of the two sides come from different rounds when the order is skewed.
    slowdown = [1.0, 1.0, 1.0, 2.0, 2.0]
    timings = bench.Timings(
        seqkit=[0.8 * f for f in slowdown], reference=[1.0 * f for f in [1.0, 1.0, 2.0, 2.0, 2.0]]
    )
    assert timings.speedup == pytest.approx(1.25)
    assert timings.reference_median / timings.seqkit_median == pytest.approx(2.5)

    even = bench.Timings(seqkit=[0.8 * f for f in slowdown], reference=slowdown)
    assert even.speedup == pytest.approx(1.25)


def test_row_reports_the_paired_ratio_and_falls_back_to_the_medians(bench):
    timings = bench.Timings(seqkit=[1.0, 2.0, 4.0], reference=[1.5, 2.0, 4.4])
    row = bench.Row.throughput("x", 100, timings, "items/s", target=1.2)
    assert row.seqkit == pytest.approx(50.0)
    assert row.reference == pytest.approx(100 / 2.0)
    assert row.ratio == pytest.approx(1.1)  # median of 1.5, 1.0, 1.1
    assert row.verdict == "BELOW TARGET"
    assert bench.Row("y", 30.0, 20.0, "items/s").ratio == pytest.approx(1.5)


def test_interleaved_timings_alternate_the_order_and_count_the_warmup_apart(bench):
    calls: list[str] = []

    def side(name: str, seconds: float):
        def run() -> float:
            calls.append(name)
            return seconds

        return run

    timings = bench.interleaved_timings(side("s", 1.0), side("r", 2.0), repeats=4, warmup=1)
    assert calls == ["s", "r", "s", "r", "r", "s", "s", "r", "r", "s"]
    assert timings.seqkit == [1.0] * 4 and timings.reference == [2.0] * 4
    assert timings.speedup == 2.0


def test_markdown_table_shows_the_ratio_and_verdict(bench):
    row = bench.Row.throughput(
        "demo", 10, bench.Timings([1.0], [2.0]), "tokens/s", target=1.5, note="n"
    )
    table = bench.markdown_table([row])
    assert "| demo | 10 | 5 | tokens/s | 2.00× | ≥ 1.50 | ok |" in table
    assert "- demo: n" in table


# ----------------------------------------------------------------------------- references

TINY_GPT = dict(n_layer=1, n_head=2, n_embd=16, vocab_size=11)


def test_gpt2_reference_runs_the_fused_gelu_without_a_training_cache(bench):
    fair = bench.gpt2_reference_config(TINY_GPT, n_positions=32)
    assert fair.activation_function == "gelu_pytorch_tanh"
    assert fair.use_cache is False
    assert (fair.resid_pdrop, fair.embd_pdrop, fair.attn_pdrop) == (0.0, 0.0, 0.0)
    defaults = bench.gpt2_reference_config(TINY_GPT, n_positions=32, defaults=True)
    assert (defaults.activation_function, defaults.use_cache) == ("gelu_new", True)
    ours, reference = bench._gpt_pair(32, TINY_GPT)
    assert reference.config.activation_function == "gelu_pytorch_tanh"
    # A training forward of the reference builds no cache, and computes seqkit's loss (same
    # weights; the two GELU kernels agree to float rounding).
    x = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(0))
    inputs, targets = x[:, :-1].contiguous(), x[:, 1:].contiguous()
    out = reference.train()(input_ids=inputs, labels=inputs, shift_labels=targets)
    assert out.cache is None
    expected = ours.train()(inputs, labels=targets).loss
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-5)


def test_generation_references_produce_seqkits_tokens(bench):
    from seqkit.generation import generate

    ours, reference = bench._gpt_pair(48, TINY_GPT)
    ours.eval(), reference.eval()
    prompt = torch.randint(0, 11, (1, 5), generator=torch.Generator().manual_seed(1))
    expected = generate(ours, prompt, max_new_tokens=20, temperature=0.0)
    assert expected.shape == (1, 25)
    assert torch.equal(bench.gpt2_cached_loop(reference, prompt, 20), expected)
    user = reference.generate(
        prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=20
    )
    assert torch.equal(user, expected)
    # Sampling: the loop draws with seqkit's operations, so the same seed gives the same tokens.
    prompts = torch.randint(0, 11, (4, 5), generator=torch.Generator().manual_seed(2))
    sampled = generate(
        ours, prompts, max_new_tokens=12, temperature=0.8, top_k=5,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    looped = bench.gpt2_cached_loop(
        reference, prompts, 12, temperature=0.8, top_k=5,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(looped, sampled)


def test_torch_transformer_reference_is_seqkits_network(bench):
    from seqkit.models.transformer import TransformerConfig, TransformerForSeq2Seq

    shape = dict(d_model=16, n_head=2, num_encoder_layers=1, num_decoder_layers=2, d_ff=32)
    torch.manual_seed(0)
    ours = TransformerForSeq2Seq(
        TransformerConfig(src_vocab_size=20, tgt_vocab_size=20, share_embeddings=True, **shape)
    ).eval()
    reference = bench._TorchTransformerMT(vocab_size=20, dropout=0.1, **shape).eval()
    bench._copy_into_torch_transformer(ours, reference)
    # Dropout only where seqkit has it: none on attention probabilities, no final norms.
    attentions = [m for m in reference.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    assert len(attentions) == 1 + 2 * 2 and all(m.dropout == 0.0 for m in attentions)
    assert reference.encoder.norm is None and reference.decoder.norm is None
    src = torch.randint(4, 20, (3, 7))
    src_mask = torch.ones_like(src)
    src_mask[0, 5:] = 0
    labels = torch.randint(4, 20, (3, 6))
    tgt_in = ours.shift_right(labels)
    with torch.no_grad():
        expected = ours(src, src_mask, decoder_input_ids=tgt_in, labels=labels).loss
        assert reference(src, src_mask, tgt_in, labels) == pytest.approx(expected.item(), abs=1e-5)
