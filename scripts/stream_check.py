#!/usr/bin/env python
"""Show that ``StreamingBlocks`` streams a corpus larger than memory would comfortably hold.

Writes a text file of ``--size-gb`` gigabytes (tiny Shakespeare repeated, or CPython's pydoc
topics when the shared data is absent) under ``/tmp``, streams every causal-LM block out of it,
and prints the process's resident memory before, during (sampled as the stream advances) and
after, with its peak. If the corpus were read whole, the peak would grow by at least the file's
size; streamed, it stays flat. The file is deleted at the end unless ``--keep`` is given.

    python scripts/stream_check.py                      # 1.05 GB, character tokenizer
    python scripts/stream_check.py --size-gb 0.05 --tokenizer bpe

The character tokenizer encodes at numpy speed, so the whole gigabyte streams in minutes; the
byte-level BPE goes through the same reading, cutting and packing code at the Rust tokenizer's
speed (about 1 MB/s per core here), so check it on a smaller file.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

DEFAULT_PATH = Path("/tmp/seqkit-stream-check.txt")


def source_text() -> tuple[str, str]:
    """The text repeated into the big file."""
    path = Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare/input.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8"), "tiny Shakespeare"
    from seqkit.data.corpora import pydoc_topics

    return pydoc_topics(), "pydoc-topics"


def rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def write_corpus(path: Path, text: str, size_bytes: int) -> int:
    """Append ``text`` to ``path`` until it holds at least ``size_bytes``; return its size."""
    data = text.encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    free = shutil.disk_usage(path.parent).free
    if free < size_bytes * 1.1:
        raise SystemExit(f"{path.parent} has {free / 1e9:.1f} GB free, need {size_bytes / 1e9:.1f}")
    written = 0
    with path.open("wb") as file:
        while written < size_bytes:
            file.write(data)
            written += len(data)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.05, help="size of the generated file")
    parser.add_argument("--tokenizer", choices=("char", "bpe"), default="char")
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="the file to write")
    parser.add_argument("--keep", action="store_true", help="keep the file afterwards")
    args = parser.parse_args(argv)

    from seqkit.data import BPETokenizer, CharTokenizer
    from seqkit.data.pipelines import StreamingBlocks

    text, name = source_text()
    if args.tokenizer == "char":
        # No special tokens: the vectorized table lookup encodes (one file, so no EOS needed).
        tokenizer = CharTokenizer.train(text)
    else:
        tokenizer = BPETokenizer.train(text, vocab_size=1024)
    eos = tokenizer.eos_token_id
    piece_tokens = len(tokenizer.encode_array(text if text.endswith("\n") else text + "\n"))

    started = time.perf_counter()
    size = write_corpus(args.path, text, int(args.size_gb * 1e9))
    copies = size // len((text if text.endswith("\n") else text + "\n").encode("utf-8"))
    print(
        f"wrote {args.path}: {size / 1e9:.3f} GB ({copies} copies of {name}) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    del text
    try:
        stream = StreamingBlocks([args.path], tokenizer, args.block_size, eos_token_id=eos)
        baseline = rss_mb()
        peak_before = peak_rss_mb()
        print(
            f"{args.tokenizer} tokenizer ({tokenizer.vocab_size} tokens), blocks of "
            f"{args.block_size}+1; RSS before streaming: {baseline:.0f} MB"
        )
        expected_tokens = copies * piece_tokens + (1 if eos is not None else 0)
        expected_blocks = expected_tokens // (args.block_size + 1)
        samples, highest, blocks, tokens = [], baseline, 0, 0
        next_sample = expected_blocks // 10
        started = time.perf_counter()
        for block in stream:
            blocks += 1
            tokens += len(block["input_ids"])
            if blocks >= next_sample:
                now = rss_mb()
                highest = max(highest, now)
                samples.append((blocks / expected_blocks, now, time.perf_counter() - started))
                next_sample += max(1, expected_blocks // 10)
        seconds = time.perf_counter() - started
        highest = max(highest, rss_mb())
        print("progress  RSS (MB)  elapsed (s)")
        for fraction, now, elapsed in samples:
            print(f"{fraction:7.0%}  {now:8.0f}  {elapsed:11.0f}")
        print(
            f"streamed {blocks:,} blocks ({tokens:,} input tokens) in {seconds:.0f} s "
            f"({size / 1e6 / seconds:.1f} MB/s); expected {expected_blocks:,} blocks"
        )
        print(
            f"RSS: before {baseline:.0f} MB, highest sampled {highest:.0f} MB "
            f"(+{highest - baseline:.0f} MB); process peak {peak_rss_mb():.0f} MB "
            f"(peak before streaming {peak_before:.0f} MB); file {size / 1e6:.0f} MB"
        )
        if blocks != expected_blocks:
            print("BLOCK COUNT DIFFERS from the count of the whole file", file=sys.stderr)
            return 1
    finally:
        if not args.keep:
            args.path.unlink(missing_ok=True)
            print(f"deleted {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
