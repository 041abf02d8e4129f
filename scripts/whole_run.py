#!/usr/bin/env python
"""The whole ``gpt/shakespeare-char`` run against nanoGPT's ``train.py`` at its documented CPU
configuration, as the commands users type, alternating on one machine. Prints the rows for the
README.

nanoGPT is not a dependency: point ``--nanogpt`` at a checkout of
https://github.com/karpathy/nanoGPT whose ``data/shakespeare_char`` holds ``train.bin``,
``val.bin`` and ``meta.pkl`` (its ``prepare.py`` makes them from ``input.txt``; copy tiny
Shakespeare there first on a machine without internet). Its run is the command of its README's
"I only have a macbook" section:

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False
        --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4
        --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

The same model, batch, validation share (the last 10 % of the text) and schedule shape (100
warm-up steps, cosine decay to a tenth of the peak) as ``recipes/gpt/shakespeare-char.yaml``. The
recipe trains 1300 steps at a peak learning rate of 4e-3 where nanoGPT's flags train 2000 at
1e-3; both reach a validation loss under 1.89. So that the time the schedule saves is not taken
for time the code saves, two more rows swap the schedules: seqkit at nanoGPT's (2000 steps,
1e-3) and nanoGPT at the recipe's (``--max_iters=1300 --lr_decay_iters=1300
--learning_rate=4e-3 --min_lr=4e-4``, evaluating every 260 steps so that its last
evaluation is at step 1300).

What each side does beyond the steps differs, and all of it counts here, from starting the
command to its exit: nanoGPT evaluates every 250 steps on 20 random batches of each split and
saves a checkpoint whenever validation improves; the seqkit recipe evaluates every 250 steps on
the whole validation share (every token once), saves checkpoints every 500 steps and the final
model, plots, and prints a 300-character sample.

Per run: wall time (``time.perf_counter`` around the child), peak resident memory (the child's
``ru_maxrss`` through ``os.wait4``) and the last validation loss it reports (nanoGPT: the
20-batch estimate at its last evaluation; seqkit: its last evaluation in ``metrics.jsonl``).
Medians over ``--rounds``; ratio = the row ÷ nanoGPT at its documented flags (lower is better
for time and memory). Each run's folder and its output (``NAME.log``) go under ``--out``, a
folder this script creates.

    python scripts/whole_run.py --nanogpt ~/nanoGPT --out /tmp/whole-run --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HOMES = [p / "shared/data/tinyshakespeare/input.txt" for p in (ROOT.parent, ROOT.parents[1])]
SHAKESPEARE = next((p for p in _HOMES if p.is_file()), _HOMES[0])
NANOGPT_FLAGS = [
    "config/train_shakespeare_char.py",
    *("--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1"),
    *("--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128"),
    *("--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0"),
]
# nanoGPT's argument parser applies the last of repeated flags: these override the schedule.
# It evaluates only at multiples of eval_interval, so 260 (not its 250) puts its last
# evaluation at step 1300, as the recipe's.
NANOGPT_AT_RECIPE_SCHEDULE = [
    *("--max_iters=1300", "--lr_decay_iters=1300", "--learning_rate=4e-3", "--min_lr=4e-4"),
    "--eval_interval=260",
]
SEQKIT_AT_NANOGPT_SCHEDULE = ["trainer.max_steps=2000", "trainer.lr=1e-3", "trainer.min_lr=1e-4"]


def refuse(message: str) -> None:
    """A mistake in the command line or the checkout: one line, exit code 2, nothing written."""
    print(f"whole_run: {message}", file=sys.stderr)
    raise SystemExit(2)


def timed(command: list[str], cwd: Path, log: Path) -> tuple[float, float, str]:
    """Wall seconds, peak resident MB and the output of ``command`` (kept in ``log``)."""
    with log.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    text = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command[:4])} … failed:\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024, text


def run_nanogpt(nanogpt: Path, out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "train.py", *NANOGPT_FLAGS, *extra, f"--out_dir={out}"]
    wall, rss, text = timed(command, nanogpt, out.with_suffix(".log"))
    losses = re.findall(r"step (\d+): train loss [\d.]+, val loss ([\d.]+)", text)
    if not losses:
        sys.exit(f"{nanogpt}/train.py printed no validation loss: is it nanoGPT's?")
    return {"wall_s": wall, "peak_mb": rss, "val_loss": float(losses[-1][1])}


def run_seqkit(out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "seqkit", "train", "gpt/shakespeare-char"]
    command += ["--set", f"data.path={SHAKESPEARE}", "--output-dir", str(out)]
    for setting in ["trainer.progress_bar=false", *extra]:
        command += ["--set", setting]
    wall, rss, _ = timed(command, ROOT, out.with_suffix(".log"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [row["eval/loss"] for row in rows if "eval/loss" in row]
    return {"wall_s": wall, "peak_mb": rss, "val_loss": evals[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nanogpt", type=Path, required=True, help="a nanoGPT checkout")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the runs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not (args.nanogpt / "train.py").is_file():
        refuse(f"{args.nanogpt} has no train.py: point --nanogpt at a nanoGPT checkout")
    if not (args.nanogpt / "data/shakespeare_char/train.bin").is_file():
        refuse(f"{args.nanogpt}/data/shakespeare_char has no train.bin: run its prepare.py")
    if args.rounds < 1:
        refuse("--rounds must be at least 1")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        refuse(f"--out {args.out} exists and is not an empty folder: name a new one")
    args.out.mkdir(parents=True, exist_ok=True)
    sides = {
        "nanoGPT train.py (documented CPU flags)": lambda out: run_nanogpt(args.nanogpt, out, []),
        "seqkit gpt/shakespeare-char (recipe as shipped)": lambda out: run_seqkit(out, []),
        "seqkit at nanoGPT's schedule (2000 steps, lr 1e-3)": lambda out: run_seqkit(
            out, SEQKIT_AT_NANOGPT_SCHEDULE
        ),
        "nanoGPT at the recipe's schedule (1300 steps, lr 4e-3)": lambda out: run_nanogpt(
            args.nanogpt, out, NANOGPT_AT_RECIPE_SCHEDULE
        ),
    }
    results: dict[str, list[dict]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        for i, (name, run) in enumerate(sides.items()):
            out = args.out / f"side{i}-round{round_}"
            results[name].append(run(out))
            print(f"round {round_}: {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    reference = statistics.median(r["wall_s"] for r in results[next(iter(sides))])
    reference_mb = statistics.median(r["peak_mb"] for r in results[next(iter(sides))])
    print("| run | wall s (median) | ÷ nanoGPT | peak MB | ÷ nanoGPT | validation loss |")
    print("|---|---:|---:|---:|---:|---|")
    for name, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        losses = ", ".join(f"{r['val_loss']:.3f}" for r in runs)
        print(
            f"| {name} | {wall:.1f} | {wall / reference:.2f} | {peak:.0f} | "
            f"{peak / reference_mb:.2f} | {losses} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
