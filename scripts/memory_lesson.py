"""The memory lesson: why LSTMs and GRUs remember what a plain RNN forgets.

A generated long-range task in the spirit of Hochreiter & Schmidhuber (1997), "Long Short-Term
Memory" (their experiments 2 and 4 ask a network to report a symbol seen long before): each
sequence starts with one of ``SIGNALS`` symbols, then ``lag`` distractor symbols drawn at random
from a separate alphabet; the model reads the whole sequence left to right and must name the
first symbol at the end. Chance is 1 / SIGNALS. Nothing between the signal and the answer helps,
so the error signal has to travel back ``lag`` steps: through a plain RNN it is multiplied by
the recurrent Jacobian once per step and vanishes (Bengio, Simard & Frasconi, 1994), while the
additive cell state of the LSTM and the update gate of the GRU (Cho et al., 2014) carry it.

For each cell (seqkit's ``RecurrentForSequenceClassification``, one unidirectional layer,
the last state classified) and each lag, the script trains on fresh random batches and reports
the accuracy on held-out sequences (a fixed generator), then plots accuracy against lag.

    python scripts/memory_lesson.py --out docs/memory-lesson.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqkit.models.rnn import RecurrentClassifierConfig, RecurrentForSequenceClassification

SIGNALS = 4
"""Symbols the model must remember (ids 0..3): chance is 25 %."""
DISTRACTORS = 4
"""Symbols that fill the lag (ids 4..7), drawn uniformly."""


def recall_batch(batch_size: int, lag: int, generator: torch.Generator):
    """``(input_ids (B, 1 + lag), labels (B,))``: a signal symbol, ``lag`` distractors; the
    label is the signal."""
    labels = torch.randint(0, SIGNALS, (batch_size,), generator=generator)
    noise = torch.randint(SIGNALS, SIGNALS + DISTRACTORS, (batch_size, lag), generator=generator)
    return torch.cat([labels[:, None], noise], dim=1), labels


def train_one(cell: str, lag: int, args: argparse.Namespace, seed: int) -> float:
    """Held-out accuracy of one ``cell`` trained at one ``lag``."""
    torch.manual_seed(seed)
    model = RecurrentForSequenceClassification(
        RecurrentClassifierConfig(
            vocab_size=SIGNALS + DISTRACTORS,
            cell=cell,
            embedding_size=args.embedding_size,
            hidden_size=args.hidden_size,
            num_layers=1,
            bidirectional=False,
            pooling="last",
            pad_token_id=None,
            num_labels=SIGNALS,
        )
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    data = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(args.steps):
        input_ids, labels = recall_batch(args.batch_size, lag, data)
        loss = model(input_ids=input_ids, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    input_ids, labels = recall_batch(args.eval_size, lag, torch.Generator().manual_seed(10_000))
    with torch.inference_mode():
        predicted = model(input_ids=input_ids).logits.argmax(dim=-1)
    return float((predicted == labels).float().mean())


def plot(results: dict[str, dict[int, list[float]]], path: Path, args) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for cell, by_lag in results.items():
        lags = sorted(by_lag)
        medians = [float(torch.tensor(by_lag[lag]).median()) for lag in lags]
        axes.plot(lags, medians, marker="o", label=cell.upper())
    axes.axhline(1 / SIGNALS, color="grey", linestyle=":", label="chance")
    axes.set_xscale("log")
    lags = sorted({lag for by_lag in results.values() for lag in by_lag})
    axes.set_xticks(lags, labels=[str(lag) for lag in lags])
    axes.minorticks_off()
    axes.set_xlabel("lag (distractor steps between the symbol and the question)")
    axes.set_ylabel("held-out accuracy (median of seeds)")
    axes.set_ylim(0, 1.05)
    axes.set_title(
        f"Recall a symbol after a lag: {args.steps} steps, hidden {args.hidden_size}", fontsize=10
    )
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--lags", nargs="+", type=int, default=[5, 10, 20, 40, 80])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-size", type=int, default=1024)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--embedding-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=Path("docs/memory-lesson.png"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small models)")
    args = parser.parse_args()
    # Sequences of 32-wide states gain nothing from more threads, and on a shared machine
    # extra threads only wait on each other.
    torch.set_num_threads(args.threads)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it or choose another --out")
    results: dict[str, dict[int, list[float]]] = {cell: {} for cell in args.cells}
    for cell in args.cells:
        for lag in args.lags:
            start = time.perf_counter()
            scores = [train_one(cell, lag, args, seed) for seed in args.seeds]
            results[cell][lag] = scores
            shown = " ".join(f"{s:.3f}" for s in scores)
            print(f"{cell:>4} lag {lag:>3}: accuracy {shown} ({time.perf_counter() - start:.0f} s)")
    plot(results, args.out, args)
    args.out.with_suffix(".json").write_text(
        json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "results": results})
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
