#!/usr/bin/env python
"""Training on a corpus of any size: the GPT recipe on a multi-gigabyte corpus against the same
recipe on 10 MB, and pre-tokenizing throughput. Prints the rows for the README.

The large corpus is tiny Shakespeare repeated with noise (0.5 % of each copy's characters
replaced by characters drawn from the text itself, so the vocabulary stays the recipe's 65),
written under ``--dir`` with a 10 MB one cut the same way. For each, ``seqkit train`` runs the
recipe ``gpt/shakespeare-char.yaml`` on the ``pretokenized`` module (and, on the large one, on
the ``streaming`` module) as the command a user types, in a child process:

- the first run encodes the corpus into the token cache (its time gives the module's
  pre-tokenizing rate on this corpus, char tokenizer, ``data.num_proc`` 1);
- the next runs find the cache: *time to first step* is from starting the command to the first
  line of ``metrics.jsonl`` (``log_every`` 1, so written after step 1); *peak RSS* is the
  child's ``ru_maxrss`` (``os.wait4``); *tokens/s* the median of ``train/tokens_per_s`` after
  the first 20 steps. Small and large runs alternate, so the machine's drift hits both alike.

Pre-tokenizing throughput: the ``pretokenized`` module's encoder (``token_file``, byte-level BPE
of 1024 tokens, ``num_proc`` 2) on the first ``--bpe-megabytes`` of the corpus, against raw
``tokenizers`` ``encode_batch_fast`` of the same text's lines on one core (a child process with
``TOKENIZERS_PARALLELISM=false`` and ``RAYON_NUM_THREADS=1``), ids read out, no file written.

    nice python scripts/corpus_scale.py --dir /work/wt/stream-data --gigabytes 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The shared data sits beside the repository (a worktree's: one folder further up).
_HOMES = [p / "shared/data/tinyshakespeare/input.txt" for p in (ROOT.parent, ROOT.parents[1])]
SHAKESPEARE = next((p for p in _HOMES if p.is_file()), _HOMES[0])
NOISE = 0.005
STEPS = 100


def make_corpus(path: Path, size: int, seed: int = 0) -> None:
    """``size`` bytes of tiny Shakespeare copies, each with its own noise."""
    if path.is_file() and path.stat().st_size == size:
        return
    base = np.frombuffer(_shakespeare().encode("ascii"), dtype=np.uint8)
    generator = np.random.default_rng(seed)
    written = 0
    with path.open("wb") as out:
        while written < size:
            copy = base.copy()
            where = generator.random(len(copy)) < NOISE
            copy[where] = base[generator.integers(0, len(base), int(where.sum()))]
            data = copy.tobytes()[: size - written]
            out.write(data)
            written += len(data)


def _shakespeare() -> str:
    if not SHAKESPEARE.is_file():
        sys.exit(f"needs tiny Shakespeare at {SHAKESPEARE}")
    return SHAKESPEARE.read_text(encoding="utf-8")


def train(corpus: Path, run: Path, cache: Path, module: str) -> dict[str, float]:
    """One ``seqkit train`` of the recipe; its peak RSS, time to first step and tokens/s."""
    shutil.rmtree(run, ignore_errors=True)
    settings = [
        f"data.module={module}", f"data.path={corpus}", f"data.cache_dir={cache}",
        f"trainer.max_steps={STEPS}", "trainer.log_every=1", "trainer.eval_every=0",
        "trainer.eval_batches=2", "trainer.save_every=0", "trainer.progress_bar=false",
        "trainer.report_to=[]", "sample.max_new_tokens=1",
    ]  # fmt: skip
    command = [sys.executable, "-m", "seqkit", "train", "gpt/shakespeare-char.yaml",
               "--output-dir", str(run), *(f"--set={s}" for s in settings)]  # fmt: skip
    metrics = run / "metrics.jsonl"
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env)  # fmt: skip
    first_step = None
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if first_step is None and metrics.is_file() and metrics.stat().st_size > 0:
            first_step = time.perf_counter() - started
        time.sleep(0.02)
    total = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"seqkit train failed: {child.stderr.read().decode()[-2000:]}")
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    rates = [r["train/tokens_per_s"] for r in lines if "train/tokens_per_s" in r and r["step"] > 20]
    return {
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "first_step_s": first_step if first_step is not None else total,
        "tokens_per_s": statistics.median(rates),
        "total_s": total,
    }


def _reference_rate(path: Path, megabytes: float) -> float:
    """MB/s of raw ``encode_batch_fast`` on one core, in a child process."""
    code = f"""
import time, sys
from seqkit.data.tokenizer_folder import load_tokenizer
tokenizer = load_tokenizer({str(path.parent / "bpe")!r})
lines = open({str(path)!r}, encoding="utf-8").read().splitlines(keepends=True)
raw = tokenizer.backend
start = time.perf_counter()
for i in range(0, len(lines), 10000):
    [e.ids for e in raw.encode_batch_fast(lines[i:i + 10000], add_special_tokens=False)]
print(time.perf_counter() - start)
"""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    return megabytes / float(done.stdout.split()[-1])


def pretokenize_rates(corpus: Path, folder: Path, megabytes: int) -> tuple[float, float]:
    """(MB/s of token_file with num_proc 2, MB/s of encode_batch_fast on one core)."""
    from seqkit.data import BPETokenizer
    from seqkit.data.token_file import token_file
    from seqkit.data.tokenizer_folder import load_tokenizer

    sample = folder / "bpe-sample.txt"
    with corpus.open("rb") as source, sample.open("wb") as out:
        out.write(source.read(megabytes * 1_000_000))
    BPETokenizer.train(_shakespeare(), vocab_size=1024).save_pretrained(folder / "bpe")
    tokenizer = load_tokenizer(folder / "bpe")
    size = sample.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(dir=folder) as cache:
        started = time.perf_counter()
        token_file([sample], tokenizer, Path(cache), num_proc=2)
        ours = size / (time.perf_counter() - started)
    return ours, _reference_rate(sample, size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="where corpora and runs go")
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--small-megabytes", type=float, default=10.0)
    parser.add_argument("--bpe-megabytes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="cache-hit runs of each size")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    large, small = args.dir / "large.txt", args.dir / "small.txt"
    started = time.perf_counter()
    make_corpus(large, int(args.gigabytes * 1e9))
    make_corpus(small, int(args.small_megabytes * 1e6), seed=1)
    print(f"corpora written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    cache = args.dir / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    results: dict[str, list[dict[str, float]]] = {}
    plan = [("small", small, "pretokenized"), ("large", large, "pretokenized")]
    cold = {}
    for name, corpus, module in plan:  # cache misses: tokenizer and token file written
        cold[name] = train(corpus, args.dir / f"run-{name}", cache, module)
        print(name, "cold", cold[name], file=sys.stderr, flush=True)
    for _ in range(args.rounds):
        for name, corpus, module in [*plan, ("stream", large, "streaming")]:
            result = train(corpus, args.dir / f"run-{name}", cache, module)
            results.setdefault(name, []).append(result)
            print(name, result, file=sys.stderr, flush=True)
    ours, reference = pretokenize_rates(large, args.dir, args.bpe_megabytes)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    gb = large.stat().st_size / 1e9
    mb = small.stat().st_size / 1e6
    print("| measurement | 10 MB corpus | 2 GB corpus | ratio (large / small) | target |")
    print("|---|---:|---:|---:|---|")
    for key, label, target in [
        ("peak_rss_mb", "peak resident memory, MB", "≤ 1.2×"),
        ("tokens_per_s", "tokens/s", "≥ 0.95×"),
        ("first_step_s", "command to first step (cache hit), s", "< 5 s (large)"),
    ]:
        a, b = median("small", key), median("large", key)
        print(f"| {label} | {a:,.1f} | {b:,.1f} | {b / a:.2f}× | {target} |")
    # The cold run's extra time before its first step: training the tokenizer and writing ids.
    extra = cold["large"]["first_step_s"] - median("large", "first_step_s")
    pre = (large.stat().st_size / 1e6) / extra
    print(
        f"\n{mb:.0f} MB and {gb:.2f} GB corpora, recipe gpt/shakespeare-char.yaml, module "
        f"pretokenized, {STEPS} steps, medians of {args.rounds} cache-hit runs each."
    )
    print(f"- first run on {gb:.2f} GB (char tokenizer trained + ids written): "
          f"{cold['large']['total_s']:.0f} s, peak RSS {cold['large']['peak_rss_mb']:,.0f} MB "
          f"(≈ {pre:.0f} MB/s tokenizer + pre-tokenizing, num_proc 1)")  # fmt: skip
    print(f"- streaming module on {gb:.2f} GB: peak RSS {median('stream', 'peak_rss_mb'):,.0f} "
          f"MB, {median('stream', 'tokens_per_s'):,.0f} tokens/s, first step after "
          f"{median('stream', 'first_step_s'):.1f} s")  # fmt: skip
    print(f"- pre-tokenizing, byte-level BPE 1024, {args.bpe_megabytes} MB: token_file num_proc "
          f"2 {ours:.2f} MB/s vs tokenizers encode_batch_fast on one core {reference:.2f} MB/s "
          f"({ours / reference:.2f}×)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
