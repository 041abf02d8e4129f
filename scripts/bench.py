#!/usr/bin/env python
"""seqkit against its reference implementations, side by side in one process.

Each benchmark builds a seqkit object and the reference object that does the same job (for GPT:
``transformers.GPT2LMHeadModel`` holding the *same* weights), then alternates timed runs of the
two after a warm-up, so that drift of the machine (frequency, other processes) hits both alike.
The table reports medians, and as the ratio seqkit / reference (higher is better for throughputs)
the median of the ratios of each round's back-to-back pair, which cancels the machine's slow
drift; only ratios are meant to be compared between machines.

Every reference is configured the way its best users run it (for GPT-2: the fused GELU kernel,
no key/value cache in training; for ``nn.Transformer``: dropout only where seqkit has it; for
``tokenizers``: the offsets-free ``encode_batch_fast``), and each row's note says how. A row that
keeps a library's defaults says so in its name, and a row whose two sides run the same kernel
(the fused LSTM) says that it measures only the code around it.

    python scripts/bench.py                 # every benchmark
    python scripts/bench.py --only gpt-train --repeats 9
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers.utils import logging as transformers_logging


@dataclass
class Row:
    """One line of the result table."""

    name: str
    seqkit: float
    reference: float
    unit: str
    target: float | None = None
    """The ratio seqkit / reference this measurement should reach (None: informational)."""
    note: str = ""
    paired_ratio: float | None = None
    """The median of per-round ratios, when the row was timed in rounds (see :class:`Timings`)."""

    @classmethod
    def throughput(
        cls, name: str, work: float, timings: Timings, unit: str, **fields: object
    ) -> Row:
        """A row of ``work`` units done by each side in the seconds of ``timings``."""
        return cls(
            name,
            work / timings.seqkit_median,
            work / timings.reference_median,
            unit,
            paired_ratio=timings.speedup,
            **fields,
        )

    @property
    def ratio(self) -> float:
        if self.paired_ratio is not None:
            return self.paired_ratio
        return self.seqkit / self.reference

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "ok" if self.ratio >= self.target else "BELOW TARGET"


@dataclass
class Timings:
    """Seconds of each side, one entry per round, both sides timed back to back in each round."""

    seqkit: list[float]
    reference: list[float]

    @property
    def seqkit_median(self) -> float:
        return statistics.median(self.seqkit)

    @property
    def reference_median(self) -> float:
        return statistics.median(self.reference)

    @property
    def speedup(self) -> float:
        """Median over rounds of reference seconds / seqkit seconds (higher: seqkit faster).

        Each round's two timings are seconds apart, so a slow drift of the machine (another
        process, the clock frequency) scales both alike and cancels in their ratio; the ratio of
        the two medians does not have that property, since each median may come from a
        different round.
        """
        return statistics.median(r / s for s, r in zip(self.seqkit, self.reference, strict=True))


def interleaved_timings(
    run_seqkit: Callable[[], float],
    run_reference: Callable[[], float],
    repeats: int,
    warmup: int = 1,
) -> Timings:
    """Time each callable (each returns its own elapsed seconds) ``repeats`` times, in turns.

    The order flips every round (AB, BA, AB, …) so neither side always runs on a machine that
    the other has just warmed up or heated.
    """
    for _ in range(warmup):
        run_seqkit()
        run_reference()
    timings = Timings([], [])
    for i in range(repeats):
        if i % 2 == 0:
            timings.seqkit.append(run_seqkit())
            timings.reference.append(run_reference())
        else:
            timings.reference.append(run_reference())
            timings.seqkit.append(run_seqkit())
    return timings


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """A callable that runs ``fn`` once and returns the seconds it took."""

    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


# ----------------------------------------------------------------------------- GPT

# The model of the shakespeare-char recipe: 4 layers × 4 heads × 128 wide, 65 characters.
GPT_SHAPE = dict(n_layer=4, n_head=4, n_embd=128, vocab_size=65)
# GPT-2 small's layout (12 layers × 768, 12 heads, block 1024) halved in depth and width and cut
# to block 256 so that a step takes a fraction of a second on a few CPU cores; the vocabulary is
# a 1024-token BPE's (GPT-2's 50,257 would make the output projection most of the work).
GPT_SMALL_SHAPE = dict(n_layer=6, n_head=6, n_embd=384, vocab_size=1024)

# How the reference GPT-2 is configured: as its best users run it. ``gelu_pytorch_tanh`` is the
# same function as GPT-2's default ``gelu_new`` (the tanh approximation) computed by one fused
# ATen kernel instead of seven elementwise ops; ``use_cache=False`` stops GPT2Model from building
# a DynamicCache of every layer's keys and values on every training step. Generation turns the
# cache on per call (``use_cache=True``), as ``generate`` does.
REFERENCE_GPT2 = dict(activation_function="gelu_pytorch_tanh", use_cache=False)
# transformers' defaults, kept for one labelled row: what a user gets without configuring.
DEFAULT_GPT2 = dict(activation_function="gelu_new", use_cache=True)


def gpt2_reference_config(shape: dict, n_positions: int, defaults: bool = False):
    """The ``GPT2Config`` of the reference: ``shape``, no dropout, fused GELU and no cache in
    training (``defaults=True``: transformers' own ``gelu_new`` and ``use_cache``)."""
    from transformers import GPT2Config

    return GPT2Config(
        **shape,
        n_positions=n_positions,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
        **(DEFAULT_GPT2 if defaults else REFERENCE_GPT2),
    )


def _gpt_pair(n_positions: int, shape: dict | None = None, defaults: bool = False):
    """A transformers GPT-2 with default (sdpa) attention and a seqkit GPT with its weights:
    the plain-PyTorch network that recipes train and ``seqkit generate`` loads."""
    from transformers import GPT2LMHeadModel

    from seqkit.models.gpt import gpt2_state_dict_to_seqkit
    from seqkit.models.gpt_config import GPTConfig
    from seqkit.models.gpt_network import StandaloneGPT

    torch.manual_seed(0)
    hf_config = gpt2_reference_config(shape or GPT_SHAPE, n_positions, defaults)
    reference = GPT2LMHeadModel(hf_config)
    # seqkit names the same function gelu_new whichever kernel computes it.
    ours = StandaloneGPT(GPTConfig.from_gpt2_config(hf_config, activation_function="gelu_new"))
    ours.load_state_dict(gpt2_state_dict_to_seqkit(reference.state_dict()))
    return ours, reference


def _gpt_train_row(
    args: argparse.Namespace,
    shape: dict,
    batch: int,
    block: int,
    steps: int,
    label: str,
    target: float | None,
    defaults: bool = False,
    compile: bool = False,
) -> Row:
    """Train both models ``steps`` steps per timed run (forward, backward, fused AdamW step,
    zero_grad) on the same batches from the same weights; one row of tokens/s."""
    torch.manual_seed(0)
    data = torch.randint(0, shape["vocab_size"], (steps, batch, block + 1))
    # Inputs and next-token targets, each contiguous (transformers views its labels flat).
    inputs = [chunk[:, :-1].contiguous() for chunk in data]
    targets = [chunk[:, 1:].contiguous() for chunk in data]
    ours, reference = _gpt_pair(block, shape, defaults)
    ours.train()
    reference.train()
    # Both get the fused AdamW kernel that seqkit's Trainer and transformers' Trainer (``optim``
    # default ``adamw_torch_fused``) build: the step their users run.
    opt_ours, opt_reference = (
        torch.optim.AdamW(m.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
        for m in (ours, reference)
    )
    run_ours, run_reference = ours, reference
    if compile:
        # Each side's whole forward compiled by inductor; the warm-up rounds below compile
        # (forward and backward graphs) before anything is timed.
        run_ours, run_reference = torch.compile(ours), torch.compile(reference)

    def train_ours() -> None:
        for x, y in zip(inputs, targets, strict=True):
            # seqkit takes next-token targets already aligned with the inputs (nanoGPT style).
            loss = run_ours(x, labels=y).loss
            loss.backward()
            opt_ours.step()
            opt_ours.zero_grad(set_to_none=True)

    def train_reference() -> None:
        for x, y in zip(inputs, targets, strict=True):
            # transformers shifts ``labels`` itself; ``shift_labels`` hands it the same aligned
            # targets, so both sides predict the same block × batch tokens.
            loss = run_reference(input_ids=x, labels=x, shift_labels=y).loss
            loss.backward()
            opt_reference.step()
            opt_reference.zero_grad(set_to_none=True)

    timings = interleaved_timings(timed(train_ours), timed(train_reference), args.repeats, warmup=2)
    config = reference.config
    how = (
        f"GPT2LMHeadModel, attn={config._attn_implementation}, "
        f"activation_function={config.activation_function}, use_cache={config.use_cache}, "
        "no dropout, fused AdamW on both sides, same weights and batches"
    )
    if compile:
        how += "; both models torch.compile'd (inductor), compilation in the untimed warm-up"
    if defaults:
        how = "transformers' defaults (informational): " + how
    dims = f"{shape['n_layer']}L×{shape['n_head']}H×{shape['n_embd']}, V{shape['vocab_size']}"
    row = Row.throughput(
        f"gpt-train ({dims}, B{batch}×T{block}, {label})",
        steps * batch * block,
        timings,
        "tokens/s",
        target=target,
        note="reference: " + how,
    )
    # The rows take minutes each: show each as it is done.
    print(f"  {row.name}: {row.ratio:.2f}×", file=sys.stderr, flush=True)
    return row


def bench_gpt_train(args: argparse.Namespace) -> list[Row]:
    """Training steps per second (forward, backward, fused AdamW step, zero_grad) → tokens/s,
    at the shakespeare-char shape and at a GPT-2-small-like one, against the fairly configured
    reference (:data:`REFERENCE_GPT2`); then transformers' defaults, and both sides compiled."""
    rows = [
        _gpt_train_row(args, GPT_SHAPE, 12, 64, 8, "fair reference", target=1.3),
        _gpt_train_row(args, GPT_SMALL_SHAPE, 4, 256, 2, "fair reference", target=1.2),
        _gpt_train_row(
            args,
            GPT_SHAPE,
            12,
            64,
            8,
            "transformers defaults (gelu_new, use_cache)",
            None,
            defaults=True,
        ),
    ]
    if not args.no_compile:
        rows.append(
            _gpt_train_row(args, GPT_SHAPE, 12, 64, 8, "both torch.compile'd", None, compile=True)
        )
    return rows


def _greedy_or_sample(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """The next token of each row from its last logits (B, V): argmax when ``temperature`` is
    0, else a draw from softmax(logits / temperature) over the ``top_k`` likeliest — the same
    operations, in the same order, as :func:`seqkit.generation.generate`, so that the same
    generator state draws the same tokens."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.float().softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.inference_mode()
def gpt2_cached_loop(
    model: torch.nn.Module,
    prompt: torch.Tensor,
    new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The stricter generation reference: a plain loop over transformers' GPT-2 forward with
    its own key/value cache (a ``DynamicCache``, which the model extends in place), one new
    token per step and nothing else — none of ``generate``'s logits processors, stopping
    criteria or bookkeeping. Returns prompt + new tokens, (B, T + new_tokens)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    tokens = prompt.new_empty(prompt.size(0), prompt.size(1) + new_tokens)
    tokens[:, : prompt.size(1)] = prompt
    length = prompt.size(1)
    # The prompt once (only its last position's logits are needed), then one token at a time.
    logits = model(prompt, cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    for _ in range(new_tokens):
        tokens[:, length] = _greedy_or_sample(logits, temperature, top_k, generator)
        length += 1
        if length == tokens.size(1):
            break
        step = tokens[:, length - 1 : length]
        logits = model(step, cache=cache, use_cache=True).logits[:, -1]
    return tokens


GENERATE_THREADS = 1
"""Both sides generate on one thread. At this size (0.8M parameters, one token a step) a second
thread slows every step of both: measured on the project's 2-core machine, seqkit 862 tokens/s on
one thread against 458 on two, the plain cached loop 452 against 307. One thread is each side's
fastest setting, and what ``seqkit generate`` runs by default (``--threads``)."""


def bench_gpt_generate(args: argparse.Namespace) -> list[Row]:
    """KV-cache decoding of 200 tokens after a 16-token prompt → new tokens/s: greedy at batch 1
    against transformers ``generate`` (what a user calls) and against a plain cached loop over
    transformers' forward (:func:`gpt2_cached_loop`); and sampling 8 prompts at once. Both sides
    on :data:`GENERATE_THREADS` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(GENERATE_THREADS)
    try:
        return _generate_rows(args)
    finally:
        torch.set_num_threads(previous)


def _generate_rows(args: argparse.Namespace) -> list[Row]:
    from seqkit.generation import generate

    prompt_length, new_tokens = 16, 200
    # The training shape, with room for prompt + 200 tokens: learned positions stop at n_positions.
    ours, reference = _gpt_pair(n_positions=256)
    ours.eval()
    reference.eval()
    torch.manual_seed(0)
    prompt = torch.randint(0, GPT_SHAPE["vocab_size"], (1, prompt_length))

    def generate_ours() -> torch.Tensor:
        return generate(ours, prompt, max_new_tokens=new_tokens, temperature=0.0)

    def generate_reference() -> torch.Tensor:
        return reference.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=False,
            max_new_tokens=new_tokens,
            use_cache=True,
            pad_token_id=0,
        )

    def loop_reference() -> torch.Tensor:
        return gpt2_cached_loop(reference, prompt, new_tokens)

    expected = generate_ours()
    rows = []
    for label, run, target, what in (
        ("transformers generate", generate_reference, 2.5, "GPT2LMHeadModel.generate"),
        ("plain cached loop", loop_reference, 2.0, "a Python loop over GPT2LMHeadModel.forward"),
    ):
        same = torch.equal(expected, run())
        timings = interleaved_timings(timed(generate_ours), timed(run), args.repeats)
        rows.append(
            Row.throughput(
                f"gpt-generate (greedy, B1, 16+200 tokens) vs {label}",
                new_tokens,
                timings,
                "tokens/s",
                target=target,
                note=f"reference: {what} (same weights, gelu_pytorch_tanh, sdpa, its own "
                "DynamicCache KV cache, greedy, no gradients, both sides on "
                f"{GENERATE_THREADS} thread); " + ("same tokens" if same else "TOKENS DIFFER"),
            )
        )

    # Batched sampling: 8 different prompts, temperature 0.8, top-k 20, the same generator seed
    # on both sides, against the plain loop (which draws exactly as seqkit does).
    batch_prompts = torch.randint(0, GPT_SHAPE["vocab_size"], (8, prompt_length))
    sampling = dict(temperature=0.8, top_k=20)

    def sample_ours() -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return generate(
            ours, batch_prompts, max_new_tokens=new_tokens, generator=generator, **sampling
        )

    def sample_reference() -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return gpt2_cached_loop(
            reference, batch_prompts, new_tokens, generator=generator, **sampling
        )

    same = torch.equal(sample_ours(), sample_reference())
    timings = interleaved_timings(timed(sample_ours), timed(sample_reference), args.repeats)
    rows.append(
        Row.throughput(
            "gpt-generate (sampling T0.8 top-k 20, B8, 16+200 tokens each) vs plain cached loop",
            8 * new_tokens,
            timings,
            "tokens/s",
            note="reference: the plain DynamicCache loop over GPT2LMHeadModel.forward drawing "
            "with the same operations and generator seed (informational); "
            + ("same tokens" if same else "tokens differ (float rounding moves a draw)"),
        )
    )
    return rows


# ----------------------------------------------------------------------------- Trainer


def bench_trainer_loop(args: argparse.Namespace) -> list[Row]:
    """Optimizer steps/s of the Trainer vs a bare hand-written loop, same model, data, optimizer.

    Both run the shakespeare-char shape on the pydoc corpus with batch 12 × block 64, AdamW
    (fused, as seqkit builds it), cosine schedule with warm-up and gradient clipping at 1.0.
    Two rows come from the same runs. The first times steady-state steps only (after 10
    warm-up steps, from inside the loop): the Trainer's per-step cost. The second times the whole
    run, from building the model to returning: on the Trainer side its construction, the
    start-up matmul probe (for MFU), every step, the final checkpoint (model, optimizer,
    scheduler and RNG state, written atomically) and the loss plot; on the bare side the same
    model, optimizer, schedule and loader, every step, and a final ``torch.save`` of the model
    and optimizer state. Excluded on both sides: the first-time imports (torch, matplotlib …),
    paid once per process and by the untimed warm-up round, and the corpus and tokenizer,
    built once before both. The progress bar and TensorBoard are off.
    """
    import tempfile

    from torch.utils.data import DataLoader

    from seqkit.data import CausalLMDataset, CharTokenizer, encode_corpus
    from seqkit.data.corpora import pydoc_topics
    from seqkit.models.gpt_config import GPTConfig
    from seqkit.models.gpt_network import StandaloneGPT
    from seqkit.trainer import Callback, LanguageModelingTask, Trainer, TrainerConfig
    from seqkit.trainer.optim import build_optimizer
    from seqkit.trainer.schedules import build_scheduler

    text = pydoc_topics()
    tokenizer = CharTokenizer.train(text)
    data = CausalLMDataset(encode_corpus(tokenizer, text), block_size=64, stride=1)
    warmup_steps, timed_steps = 10, 40
    config = TrainerConfig(
        max_steps=warmup_steps + timed_steps,
        batch_size=12,
        lr=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.1,
        schedule="cosine",
        warmup_steps=5,
        max_grad_norm=1.0,
        eval_every=0,
        save_every=0,
        log_every=10,
        report_to=[],
        progress_bar=False,
        seed=0,
    )

    def fresh_model() -> StandaloneGPT:
        torch.manual_seed(0)
        shape = {k: v for k, v in GPT_SHAPE.items() if k != "vocab_size"}
        return StandaloneGPT.fresh(
            GPTConfig(vocab_size=tokenizer.vocab_size, n_positions=64, **shape)
        )

    class Stopwatch(Callback):
        def on_step_end(self, trainer, control, logs):
            if trainer.step == warmup_steps:
                self.start = time.perf_counter()
            elif trainer.step == config.max_steps:
                self.elapsed = time.perf_counter() - self.start

    # Whole-run seconds of every call, warm-up included (dropped below), in call order; the
    # calls alternate as the steady-state timings do, so these pair up by round as well.
    whole: dict[str, list[float]] = {"trainer": [], "bare": []}

    def run_trainer() -> float:
        stopwatch = Stopwatch()
        with tempfile.TemporaryDirectory() as output_dir:
            start = time.perf_counter()
            trainer = Trainer(
                LanguageModelingTask(fresh_model()),
                config,
                output_dir=output_dir,
                train_data=data,
                callbacks=[stopwatch],
            )
            trainer.train()  # ends with the final checkpoint and loss.png
            whole["trainer"].append(time.perf_counter() - start)
        return stopwatch.elapsed

    def run_bare_loop() -> float:
        with tempfile.TemporaryDirectory() as output_dir:
            begin = time.perf_counter()
            model = fresh_model()
            model.train()
            optimizer = build_optimizer(model, config)
            scheduler = build_scheduler(optimizer, config)
            loader = DataLoader(
                data, batch_size=12, shuffle=True, generator=torch.Generator().manual_seed(0)
            )
            start = elapsed = 0.0
            for step, batch in enumerate(loader, start=1):
                loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if step % config.log_every == 0:
                    loss.item()  # the bare loop logs too
                if step == warmup_steps:
                    start = time.perf_counter()
                if step == config.max_steps:
                    elapsed = time.perf_counter() - start
                    break
            else:
                raise RuntimeError("data ran out")
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save(state, f"{output_dir}/final.pt")
            whole["bare"].append(time.perf_counter() - begin)
        return elapsed

    timings = interleaved_timings(run_trainer, run_bare_loop, args.repeats)
    whole_timings = Timings(whole["trainer"][1:], whole["bare"][1:])  # without the warm-up
    setting = "GPT 4x4x128, batch 12x64, fused AdamW, clip 1.0, cosine"
    return [
        Row.throughput(
            "trainer-loop: optimizer steps/s, Trainer vs bare PyTorch loop (steady state)",
            timed_steps,
            timings,
            "steps/s",
            target=0.95,
            note=f"{setting}; steps {warmup_steps + 1}-{config.max_steps} only: excludes "
            "set-up, the final checkpoint and the loss plot (see the whole-run row)",
        ),
        Row.throughput(
            f"trainer-loop: whole run of {config.max_steps} steps, Trainer vs bare PyTorch loop",
            1,
            whole_timings,
            "runs/s",
            note=f"{setting}; includes model and Trainer construction, the Trainer's matmul "
            "probe, all steps, its final checkpoint and loss.png; the bare loop builds the same "
            "objects and torch.saves model + optimizer at the end; imports excluded "
            "(warm process) (informational)",
        ),
    ]


# ----------------------------------------------------------------------------- RNN

# The model of the recipes/rnn/shakespeare-* recipes: 2 LSTM layers × 128, embedding 64.
RNN_SHAPE = dict(vocab_size=65, embedding_size=64, hidden_size=128, num_layers=2)


class _PlainLSTMLM(torch.nn.Module):
    """The LSTM language model written directly on ``torch.nn.LSTM``: the reference."""

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, embedding_size)
        self.rnn = torch.nn.LSTM(embedding_size, hidden_size, num_layers, batch_first=True)
        self.lm_head = torch.nn.Linear(hidden_size, vocab_size)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(self.embedding(input_ids))
        logits = self.lm_head(output)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())


def bench_rnn_train(args: argparse.Namespace) -> list[Row]:
    """LSTM LM training steps (forward, backward, AdamW step) → tokens/s: seqkit's default
    (fused) path and its explicit path, each against the same model on ``torch.nn.LSTM``."""
    from seqkit.models.rnn import RecurrentLMConfig, RecurrentLMForCausalLM

    batch, block, steps = 32, 128, 4
    torch.manual_seed(0)
    ours = RecurrentLMForCausalLM(RecurrentLMConfig(cell="lstm", **RNN_SHAPE)).train()
    reference = _PlainLSTMLM(**RNN_SHAPE).train()
    reference.load_state_dict(ours.state_dict())  # same names: the weights copy as they are
    data = torch.randint(0, RNN_SHAPE["vocab_size"], (steps, batch, block + 1))

    def trainer(model: torch.nn.Module, loss_of: Callable[[torch.Tensor], torch.Tensor]):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def train() -> None:
            for chunk in data:
                loss_of(chunk).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

        return train

    train_ours = trainer(ours, lambda c: ours(c[:, :-1], labels=c[:, 1:]).loss)
    train_reference = trainer(reference, lambda c: reference(c[:, :-1], c[:, 1:]))
    tokens = steps * batch * block
    rows = []
    # seqkit's LSTM *is* torch.nn.LSTM on its fused path (a subclass that calls the same
    # kernel), so the first row times nn.LSTM against itself plus seqkit's model around it
    # (embedding, output head, loss, config handling): it measures the wrapper's overhead, not
    # a faster recurrence. The second row compares seqkit's readable gate-by-gate path with
    # nn.LSTM's fused kernel: how much reading costs (informational).
    for implementation, label, target, note in (
        (
            "fused",
            "fused path = nn.LSTM, wrapper overhead",
            0.95,
            "the same recurrence on both sides (seqkit's LSTM subclasses torch.nn.LSTM and "
            "calls its kernel): this row times seqkit's model wrapper around nn.LSTM against "
            "a plain module around nn.LSTM, same weights",
        ),
        (
            "explicit",
            "gate-by-gate path vs fused nn.LSTM",
            None,
            "seqkit's readable explicit path (one matmul per step, gates written out) against "
            "torch.nn.LSTM's fused kernel in a plain module, same weights (informational)",
        ),
    ):
        ours.config.implementation = implementation
        timings = interleaved_timings(timed(train_ours), timed(train_reference), args.repeats)
        rows.append(
            Row.throughput(
                f"rnn-train, {label} (LSTM 2×128, B32×T128, AdamW)",
                tokens,
                timings,
                "tokens/s",
                target=target,
                note="reference: " + note,
            )
        )
    return rows


# ----------------------------------------------------------------------------- Transformer

# The generated-toy recipe's shape scaled to the Multi30k one: 3+3 layers, 256 wide, 8 heads.
TRANSFORMER_SHAPE = dict(
    d_model=256, n_head=8, num_encoder_layers=3, num_decoder_layers=3, d_ff=512, vocab_size=8000
)


class _TorchTransformerMT(torch.nn.Module):
    """The same encoder–decoder as seqkit's, built from ``torch.nn`` Transformer layers: the
    reference.

    Configured to compute exactly what seqkit's ``TransformerForSeq2Seq`` computes in training
    (post-LN, ReLU, embeddings scaled by √d_model plus sinusoidal positions, output tied to the
    shared embedding, label smoothing 0.1), with the dropout where seqkit has it and only there:

    * 0.1 on embeddings + positions, on every sub-layer's output before its residual sum, and
      after the ReLU inside the feed-forward layer (``nn.Transformer*Layer``'s ``dropout``,
      ``dropout1``–``dropout3``);
    * none on the attention probabilities: seqkit's ``attention_dropout`` defaults to 0, while
      ``nn.Transformer*Layer(dropout=p)`` also hands ``p`` to its ``nn.MultiheadAttention``, so
      that is set back to 0 after construction;
    * no final LayerNorm after either stack (``nn.Transformer`` adds one; a post-LN stack such
      as seqkit's and the paper's does not have one), so the stacks are built as
      ``nn.TransformerEncoder``/``nn.TransformerDecoder`` with ``norm=None``;
    * the causal mask passed with ``tgt_is_causal=True``, which lets ``nn.MultiheadAttention``
      drop the mask and call the fused kernel with ``is_causal`` (the way seqkit calls it).
    """

    def __init__(
        self, d_model, n_head, num_encoder_layers, num_decoder_layers, d_ff, vocab_size, dropout
    ):
        super().__init__()
        from torch import nn

        from seqkit.models.transformer import sinusoidal_positions

        self.embed = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_positions(256, d_model))
        self.embed_dropout = nn.Dropout(dropout)
        layer = dict(
            d_model=d_model, nhead=n_head, dim_feedforward=d_ff, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer), num_encoder_layers, enable_nested_tensor=False
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer), num_decoder_layers
        )
        for module in self.modules():
            if isinstance(module, nn.MultiheadAttention):
                module.dropout = 0.0  # read at every call: no dropout on the probabilities
        self.scale = d_model**0.5

    def forward(self, src, src_mask, tgt_in, labels):
        S, T = src.size(1), tgt_in.size(1)
        x = self.embed_dropout(self.embed(src) * self.scale + self.positions[:S])
        y = self.embed_dropout(self.embed(tgt_in) * self.scale + self.positions[:T])
        padding = src_mask == 0  # True marks padding in torch.nn's convention
        memory = self.encoder(x, src_key_padding_mask=padding)
        causal = torch.nn.Transformer.generate_square_subsequent_mask(T)
        h = self.decoder(
            y, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=padding
        )
        logits = h @ self.embed.weight.T
        # Smoothed in training only, as seqkit's loss.
        return torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), label_smoothing=0.1 if self.training else 0.0
        )


def _copy_into_torch_transformer(ours, reference: _TorchTransformerMT) -> None:
    """Load seqkit's weights into the ``torch.nn`` reference (``nn.MultiheadAttention`` keeps
    the query, key and value projections stacked in one ``in_proj`` matrix)."""
    with torch.no_grad():
        reference.embed.weight.copy_(ours.src_embed.weight)
        pairs = list(zip(ours.encoder_layers, reference.encoder.layers, strict=True)) + list(
            zip(ours.decoder_layers, reference.decoder.layers, strict=True)
        )
        for mine, theirs in pairs:
            attentions = [(mine.self_attn, theirs.self_attn)]
            norms = [(mine.self_attn_residual.norm, theirs.norm1)]
            if hasattr(mine, "cross_attn"):
                attentions.append((mine.cross_attn, theirs.multihead_attn))
                norms += [(mine.cross_attn_residual.norm, theirs.norm2)]
                norms += [(mine.ffn_residual.norm, theirs.norm3)]
            else:
                norms += [(mine.ffn_residual.norm, theirs.norm2)]
            for a, b in attentions:
                b.in_proj_weight.copy_(torch.cat([a.query.weight, a.key.weight, a.value.weight]))
                b.in_proj_bias.copy_(torch.cat([a.query.bias, a.key.bias, a.value.bias]))
                b.out_proj.weight.copy_(a.out.weight)
                b.out_proj.bias.copy_(a.out.bias)
            for a, b in norms:
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
            theirs.linear1.load_state_dict(mine.ffn.linear1.state_dict())
            theirs.linear2.load_state_dict(mine.ffn.linear2.state_dict())


def bench_transformer(args: argparse.Namespace) -> list[Row]:
    """Encoder–decoder training steps (forward, label-smoothed loss, backward, AdamW) → target
    tokens/s, seqkit's Transformer vs the same network on ``torch.nn`` Transformer layers
    configured alike (:class:`_TorchTransformerMT`, same weights); and beam-search decoding
    (beam 5) → sentences/s, against greedy decoding of the same model."""
    from seqkit.models.transformer import TransformerConfig, TransformerForSeq2Seq

    shape = dict(TRANSFORMER_SHAPE)
    vocab = shape.pop("vocab_size")
    batch, length = 64, 24
    torch.manual_seed(0)
    ours = TransformerForSeq2Seq(
        TransformerConfig(
            src_vocab_size=vocab, tgt_vocab_size=vocab, share_embeddings=True, dropout=0.1, **shape
        )
    ).train()
    reference = _TorchTransformerMT(vocab_size=vocab, dropout=0.1, **shape).train()
    _copy_into_torch_transformer(ours, reference)
    src = torch.randint(4, vocab, (batch, length))
    src_mask = torch.ones(batch, length, dtype=torch.long)
    src_mask[::2, length - 6 :] = 0  # half the sources end in padding
    labels = torch.randint(4, vocab, (batch, length))
    tgt_in = ours.shift_right(labels)
    # Without dropout the two compute the same loss from the same weights: the check that the
    # reference is the same network.
    ours.eval(), reference.eval()
    with torch.no_grad():
        loss_ours = ours(src, src_mask, decoder_input_ids=tgt_in, labels=labels).loss
        same = torch.allclose(loss_ours, reference(src, src_mask, tgt_in, labels), atol=1e-4)
    ours.train(), reference.train()

    def trainer(model, loss_of):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            loss_of().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    train_ours = trainer(
        ours, lambda: ours(src, src_mask, decoder_input_ids=tgt_in, labels=labels).loss
    )
    train_reference = trainer(reference, lambda: reference(src, src_mask, tgt_in, labels))
    timings = interleaved_timings(timed(train_ours), timed(train_reference), args.repeats)
    rows = [
        Row.throughput(
            f"transformer-train (3+3 layers, 256 wide, B{batch}×{length}, AdamW)",
            batch * length,
            timings,
            "tokens/s",
            target=1.1,
            note="reference: nn.TransformerEncoder/Decoder (post-LN, no final LayerNorm), "
            "dropout 0.1 on embeddings, residual branches and FFN as seqkit, 0 on attention "
            "probabilities as seqkit, causal mask with tgt_is_causal=True, same weights; "
            + ("same outputs without dropout" if same else "OUTPUTS DIFFER without dropout"),
        )
    ]
    ours.eval()
    sources = src[:16]
    with torch.no_grad():
        timings = interleaved_timings(
            timed(lambda: ours.translate_ids(sources, src_mask[:16], beam_size=5, max_length=24)),
            timed(lambda: ours.translate_ids(sources, src_mask[:16], beam_size=1, max_length=24)),
            args.repeats,
        )
    rows.append(
        Row.throughput(
            "transformer-beam-search (beam 5, 16 sentences, 24 tokens)",
            16,
            timings,
            "sentences/s",
            note="reference: greedy decoding of the same model (informational)",
        )
    )
    return rows


# ----------------------------------------------------------------------------- registry

# name → benchmark. Each takes the parsed arguments and returns table rows.
# ----------------------------------------------------------------------------- vision


def bench_cnn_train(args: argparse.Namespace) -> list[Row]:
    """LeNet training steps on 8×8 digits → images/s, seqkit's CNN vs the same network written
    as a plain ``nn.Sequential`` with the same weights (both normalise inputs, AdamW)."""
    from torch import nn

    from seqkit.vision.models import CNNConfig, CNNForImageClassification

    torch.manual_seed(0)
    ours = CNNForImageClassification(
        CNNConfig(num_labels=10, image_mean=[0.3], image_std=[0.4], dropout=0.25)
    )
    reference = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )  # fmt: skip
    with torch.no_grad():
        for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
            theirs.copy_(mine)
    batch, steps = 64, 20
    images, labels = torch.rand(steps, batch, 1, 8, 8), torch.randint(0, 10, (steps, batch))
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-3)
    opt_reference = torch.optim.AdamW(reference.parameters(), lr=1e-3)

    def train_ours() -> None:
        for x, y in zip(images, labels, strict=True):
            ours(pixel_values=x, labels=y).loss.backward()
            opt_ours.step()
            opt_ours.zero_grad(set_to_none=True)

    def train_reference() -> None:
        for x, y in zip(images, labels, strict=True):
            logits = reference((x - 0.3) / 0.4)
            torch.nn.functional.cross_entropy(logits, y).backward()
            opt_reference.step()
            opt_reference.zero_grad(set_to_none=True)

    timings = interleaved_timings(timed(train_ours), timed(train_reference), args.repeats, warmup=2)
    return [
        Row.throughput(
            "cnn-train (LeNet 32/64/128, digits 8×8, B64, AdamW)",
            steps * batch,
            timings,
            "images/s",
            target=0.95,
            note="reference: the same layers as a plain nn.Sequential, same weights",
        )
    ]


# ----------------------------------------------------------------------------- BERT

# The bert/sst2-mlm recipe's model: 2 layers × 128 wide, 4 heads, BPE 8k, batches of 32 × 64.
BERT_MLM_SHAPE = dict(
    vocab_size=8000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=512, max_position_embeddings=64,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)  # fmt: skip


def bench_bert_mlm(args: argparse.Namespace) -> list[Row]:
    """Masked-LM training steps (forward, backward, fused AdamW step) → masked tokens/s:
    seqkit's BERT on the batches its collator makes (logits at the masked positions only)
    against ``transformers.BertForMaskedLM`` with the same weights and masks (logits at every
    position, as it computes them); then seqkit at every position too, the same work."""
    import transformers

    from seqkit.data.masking import MaskedLMCollator
    from seqkit.models.bert import BertConfig, BertForMaskedLM, to_transformers_state_dict

    torch.manual_seed(0)
    ours = BertForMaskedLM(BertConfig(**BERT_MLM_SHAPE)).train()
    reference = transformers.BertForMaskedLM(transformers.BertConfig(**BERT_MLM_SHAPE)).train()
    reference.load_state_dict(to_transformers_state_dict(ours.state_dict()))
    batch, steps, length = 32, 6, BERT_MLM_SHAPE["max_position_embeddings"]
    vocab = BERT_MLM_SHAPE["vocab_size"]
    collator = MaskedLMCollator(
        mask_token_id=4, pad_token_id=0, vocab_size=vocab,
        special_token_ids=range(5), generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    batches = [collator(list(torch.randint(5, vocab, (batch, length)))) for _ in range(steps)]
    masked = sum(int(b["masked_positions"].numel()) for b in batches)
    full_batches = [{k: v for k, v in b.items() if k != "masked_positions"} for b in batches]
    # The same loss from both models (the sparse head is the full head's rows): checked once.
    with torch.no_grad():
        ours_loss, reference_loss = ours(**batches[0]).loss, reference(**full_batches[0]).loss
    torch.testing.assert_close(ours_loss, reference_loss, atol=1e-4, rtol=1e-4)

    def train(model, inputs: list[dict]) -> Callable[[], float]:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, fused=True)

        def run() -> None:
            for b in inputs:
                model(**b).loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

        return timed(run)

    note = (
        "reference: transformers BertForMaskedLM (sdpa), logits at every position as it computes "
        "them; same weights, masks and fused AdamW; no dropout on either side"
    )
    run_reference = train(reference, full_batches)
    rows = []
    for label, ours_inputs in (
        ("logits at the masked positions (as seqkit trains)", batches),
        ("seqkit's logits at every position too: the same work (informational)", full_batches),
    ):
        timings = interleaved_timings(
            train(ours, ours_inputs), run_reference, args.repeats, warmup=2
        )
        rows.append(
            Row.throughput(
                f"bert-mlm (2L×4H×128, V{vocab}, B{batch}×T{length}, {label})",
                masked,
                timings,
                "masked tokens/s",
                note=note,
            )
        )
        print(f"  {rows[-1].name}: {rows[-1].ratio:.2f}×", file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------- bag of words


def _bow_corpus() -> tuple[list[str], str]:
    """Documents to vectorize: tiny Shakespeare's speeches (blank-line separated) when the
    shared data is present, else the paragraphs of CPython's pydoc topics."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare/input.txt"
    if path.is_file():
        text, name = path.read_text(encoding="utf-8"), "tiny Shakespeare speeches"
    else:
        from seqkit.data.corpora import pydoc_topics

        text, name = pydoc_topics(), "pydoc-topics paragraphs"
    return [doc for doc in text.split("\n\n") if doc.strip()], name


def bench_bow_vectorize(args: argparse.Namespace) -> list[Row]:
    """fit_transform of a whole corpus → documents/s, seqkit's BagOfWordsVectorizer vs
    scikit-learn's CountVectorizer / TfidfVectorizer on the same settings (same matrices)."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    from seqkit.data.bow import BagOfWordsVectorizer

    docs, corpus_name = _bow_corpus()
    rows = []
    bigrams = {"ngram_range": (1, 2), "min_df": 2}
    for label, settings, weighting, reference_class in (
        ("counts, unigrams", {}, "count", CountVectorizer),
        ("tf-idf, 1-2-grams, min_df=2", bigrams, "tfidf", TfidfVectorizer),
    ):
        ours = BagOfWordsVectorizer(weighting=weighting, **settings)
        reference = reference_class(**settings)
        timings = interleaved_timings(
            timed(lambda ours=ours: ours.fit_transform(docs)),
            timed(lambda reference=reference: reference.fit_transform(docs)),
            args.repeats,
        )
        rows.append(
            Row.throughput(
                f"bow-vectorize ({label}; {len(docs)} {corpus_name})",
                len(docs),
                timings,
                "docs/s",
                target=1.0,
                note=f"reference: scikit-learn {reference_class.__name__}.fit_transform",
            )
        )
    return rows


# ----------------------------------------------------------------------------- tokenize + pack


def _shakespeare_text() -> tuple[str, str]:
    """Tiny Shakespeare when the shared data is present, else CPython's pydoc topics."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare/input.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8"), "tiny Shakespeare"
    from seqkit.data.corpora import pydoc_topics

    return pydoc_topics(), "pydoc-topics (tiny Shakespeare absent)"


def bench_tokenize_pack(args: argparse.Namespace) -> list[Row]:
    """Tokenize a corpus with a 1024-token byte-level BPE and pack it into causal-LM blocks of
    64 + 1 ids → MB/s of UTF-8 text, against the raw ``tokenizers`` ``encode_batch_fast`` of
    the same text's lines (the ids only, no packing). ``encode_batch_fast`` is the call seqkit's
    BPE tokenizer makes; ``encode_batch`` would also compute character offsets that neither side
    needs.

    Three seqkit paths: in memory (``encode_corpus`` + packed ``CausalLMDataset``, what the GPT
    recipes run), the ``datasets`` pipeline (``tokenize`` + ``pack_blocks`` on a Dataset of the
    lines; ``datasets`` caching off, so every run encodes), and ``StreamingBlocks`` reading the
    file chunk by chunk.
    """
    import tempfile
    from pathlib import Path

    import datasets

    from seqkit.data import BPETokenizer, CausalLMDataset, encode_corpus
    from seqkit.data.pipelines import StreamingBlocks, pack_blocks, tokenize

    text, corpus_name = _shakespeare_text()
    megabytes = len(text.encode("utf-8")) / 1e6
    tokenizer = BPETokenizer.train(text, vocab_size=1024)
    raw = tokenizer.backend  # the tokenizers.Tokenizer itself
    lines = text.splitlines(keepends=True)  # the whole text, newlines included
    block = 64
    eos = tokenizer.eos_token_id

    def reference() -> None:
        [encoding.ids for encoding in raw.encode_batch_fast(lines, add_special_tokens=False)]

    def in_memory() -> None:
        ids = encode_corpus(tokenizer, text)
        CausalLMDataset(ids, block, stride=block)  # packed: non-overlapping windows

    was_caching = datasets.is_caching_enabled()
    datasets.disable_caching()
    records = datasets.Dataset.from_dict({"text": text.splitlines()})  # as load_records reads

    def with_datasets() -> None:
        pack_blocks(tokenize(records, tokenizer), block, eos_token_id=eos)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.txt"
        path.write_text(text, encoding="utf-8")

        def streaming() -> None:
            for _ in StreamingBlocks([path], tokenizer, block, eos_token_id=eos):
                pass

        # One sample of the ids, checked before anything is timed: every path must agree.
        expected = encode_corpus(tokenizer, text)
        streamed = next(iter(StreamingBlocks([path], tokenizer, block)))["input_ids"]
        assert streamed.tolist() == expected[:block].tolist(), "streaming ids differ"
        for label, run in (
            ("in memory: encode_corpus + packed CausalLMDataset", in_memory),
            ("datasets: tokenize + pack_blocks (map, no cache)", with_datasets),
            ("streaming: StreamingBlocks from the file", streaming),
        ):
            timings = interleaved_timings(timed(run), timed(reference), args.repeats)
            rows.append(
                Row.throughput(
                    f"tokenize+pack, {label} ({megabytes:.2f} MB {corpus_name}, BPE 1024)",
                    megabytes,
                    timings,
                    "MB/s",
                    target=0.8,
                    note="reference: tokenizers.Tokenizer.encode_batch_fast (no offsets, the "
                    "call seqkit makes) of the text's lines, ids read out, no packing; "
                    f"blocks of {block}+1 ids",
                )
            )
    if was_caching:
        datasets.enable_caching()
    return rows


BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "gpt-train": bench_gpt_train,
    "gpt-generate": bench_gpt_generate,
    "transformer": bench_transformer,
    "trainer-loop": bench_trainer_loop,
    "rnn-train": bench_rnn_train,
    "cnn-train": bench_cnn_train,
    "bert-mlm": bench_bert_mlm,
    "bow-vectorize": bench_bow_vectorize,
    "tokenize-pack": bench_tokenize_pack,
}


def _number(value: float) -> str:
    """Large throughputs in whole units, small ones (MB/s) with three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | seqkit | reference | unit | ratio | target | |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for row in rows:
        target = f"≥ {row.target:.2f}" if row.target is not None else ""
        lines.append(
            f"| {row.name} | {_number(row.seqkit)} | {_number(row.reference)} | {row.unit} "
            f"| {row.ratio:.2f}× | {target} | {row.verdict} |"
        )
    notes = [f"- {row.name}: {row.note}" for row in rows if row.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this (repeatable)"
    )
    parser.add_argument(
        "--repeats", type=int, default=15, help="timed runs of each side (median reported)"
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="skip the rows that torch.compile both sides"
    )
    args = parser.parse_args(argv)
    # The reference's advisory messages would only interleave with the table.
    warnings.filterwarnings("ignore", module="transformers")
    transformers_logging.set_verbosity_error()

    rows: list[Row] = []
    for name in args.only or list(BENCHMARKS):
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows.extend(BENCHMARKS[name](args))
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"medians of {args.repeats} interleaved runs; ratio: the median of the per-run ratios\n"
    )
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
