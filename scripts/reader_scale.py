#!/usr/bin/env python
"""Translation and classification corpora of any size: peak memory of preparing a corpus and a
few training steps, on a small and on a large generated corpus. Prints the rows for the README.

Two corpora of each kind are generated under ``--dir``: random lines over a made-up vocabulary
of 5,000 long words a language (20-60 letters; 20-30 words, about a thousand characters, a
line), so that tokenizing half a gigabyte takes minutes, not hours, on a shared two-core machine
— what is measured is how memory grows with the corpus's bytes:

- translation: a folder of line-aligned ``train.de``/``train.en`` (the two together
  ``--megabytes``; and 200 validation pairs in ``val.de``/``val.en``), read by
  ``seq2seq/multi30k-gru`` (``data.path=FOLDER``) with its word vocabularies;
- classification: ``train.tsv`` with a ``label<TAB>sentence`` header (SST-2's layout; the label
  says whether the sentence holds one of a few marker words) and a 200-row ``dev.tsv``, read by
  ``rnn/sst2-lstm-classifier`` with a character tokenizer.

Word and character vocabularies, not the recipes' BPE, for the same reason. Each run is
``seqkit train`` as a user types it, in a child process, with a tiny model and
``trainer.max_steps`` 5; *peak RSS* is the child's ``ru_maxrss`` (``os.wait4``), *wall* the
command's whole time. ``--runs 2`` runs each twice, so the second run shows the cache.

    nice python scripts/reader_scale.py --dir /tmp/reader-scale --megabytes 10 500
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORDS = 5000
STEPS = 5
MARKERS = range(50, 60)
"""Sentences holding one of these words are labelled 1 (about 4 in 10)."""


def _lexicon(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, rng.integers(20, 61))) for _ in range(WORDS)]


def _sentences(rng: np.random.Generator, lexicon: np.ndarray, count: int) -> tuple[list, list]:
    """``count`` sentences and, for each, its word ids."""
    lengths = rng.integers(20, 31, count)
    ids = rng.zipf(1.3, lengths.sum()) % WORDS
    rows, start = [], 0
    for n in lengths:
        rows.append(ids[start : start + n])
        start += n
    return [" ".join(lexicon[row]) + " ." for row in rows], rows


def make_translation(folder: Path, size: int, seed: int = 0) -> None:
    """``size`` bytes (about, both sides) of German-side text and its made-up English twin."""
    if (folder / "done").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    de, en = np.array(_lexicon(1)), np.array(_lexicon(2))
    rng = np.random.default_rng(seed)
    written = 0
    with (folder / "train.de").open("w") as src, (folder / "train.en").open("w") as tgt:
        while written < size:
            lines, rows = _sentences(rng, de, 1_000)
            # The "translation": each word's twin, the sentence reversed.
            twins = "\n".join(" ".join(en[row[::-1]]) + " ." for row in rows) + "\n"
            src.write("\n".join(lines) + "\n")
            tgt.write(twins)
            written += sum(map(len, lines)) + len(lines) + len(twins)
    for side, lexicon in (("de", de), ("en", en)):
        lines, _ = _sentences(np.random.default_rng(seed + 1), lexicon, 200)
        (folder / f"val.{side}").write_text("\n".join(lines) + "\n")
    (folder / "done").write_text("")


def make_classification(folder: Path, size: int, seed: int = 0) -> None:
    """``size`` bytes (about) of ``label<TAB>sentence`` rows, and a 200-row dev set."""
    if (folder / "done").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    lexicon = np.array(_lexicon(3))
    rng = np.random.default_rng(seed)

    def rows(count: int) -> str:
        lines, ids = _sentences(rng, lexicon, count)
        labels = [int(((row >= MARKERS.start) & (row < MARKERS.stop)).any()) for row in ids]
        return "".join(f"{label}\t{line}\n" for label, line in zip(labels, lines, strict=True))

    written = 0
    with (folder / "train.tsv").open("w") as out:
        out.write("label\tsentence\n")
        while written < size:
            text = rows(1_000)
            out.write(text)
            written += len(text)
    (folder / "dev.tsv").write_text("label\tsentence\n" + rows(200))
    (folder / "done").write_text("")


TINY = {
    "translation": [
        "model.embedding_dim=32",
        "model.hidden_size=32",
        "data.hub=null",
        "data.max_source_length=48",
        "data.max_target_length=48",
    ],
    "classification": [
        "model.embedding_size=32",
        "model.hidden_size=32",
        "tokenizer.kind=char",
        "tokenizer.vocab_size=null",
    ],
}
RECIPE = {"translation": "seq2seq/multi30k-gru", "classification": "rnn/sst2-lstm-classifier"}


def train(kind: str, corpus: Path, run: Path, extra: list[str]) -> dict:
    """One ``seqkit train`` in a child process: its peak RSS and wall time."""
    data = (
        [f"data.path={corpus}"]
        if kind == "translation"
        else [f"data.path={corpus / 'train.tsv'}", f"data.val_path={corpus / 'dev.tsv'}"]
    )
    settings = [
        *TINY[kind],
        *data,
        f"trainer.max_steps={STEPS}",
        "trainer.batch_size=16",
        "trainer.eval_every=1000",
        "trainer.save_every=1000",
        "trainer.log_every=1",
        *extra,
    ]
    shutil.rmtree(run, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "seqkit",
        "-q",
        "train",
        RECIPE[kind],
        "--output-dir",
        str(run),
    ]
    command += [f"--set={s}" for s in settings]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    error = child.stderr.read().decode(errors="replace")
    if status:
        raise SystemExit(f"{kind} on {corpus} failed:\n{error[-3000:]}")
    return {"peak_rss_mb": usage.ru_maxrss / 1024, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="where the corpora are written")
    parser.add_argument("--megabytes", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--kinds", nargs="+", default=["translation", "classification"])
    parser.add_argument("--runs", type=int, default=1, help="runs per corpus (2: cache hit)")
    parser.add_argument("--set", action="append", default=[], help="extra --set for every run")
    args = parser.parse_args()
    results = []
    for kind in args.kinds:
        for megabytes in args.megabytes:
            corpus = args.dir / f"{kind}-{megabytes}mb"
            make = make_translation if kind == "translation" else make_classification
            make(corpus, megabytes << 20)
            for attempt in range(args.runs):
                row = {"kind": kind, "megabytes": megabytes, "run": attempt + 1}
                row |= train(kind, corpus, args.dir / "run", args.set)
                print(json.dumps(row), flush=True)
                results.append(row)


if __name__ == "__main__":
    main()
