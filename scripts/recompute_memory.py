#!/usr/bin/env python
"""Peak memory of one GPT training step with and without ``trainer.gradient_checkpointing``.

Each measurement runs in a fresh process (a process's peak resident set only grows): build a
GPT (4 layers × 256, 4 heads, block 512, character vocabulary), then one forward and backward
pass over a batch of 8 × 512 tokens, and report the peak resident memory above what the
process held before the step (the activations kept for the backward pass, the gradients and
the temporaries) and the whole process's peak. Settings alternate over rounds.

glibc keeps freed blocks of up to 32 MB in its heap once one has been freed (its mmap threshold
adapts), so the resident set would follow the largest past allocations rather than what is
alive; the children run with a fixed threshold (``MALLOC_MMAP_THRESHOLD_``) so that freed
buffers go back to the system and the peak is the peak of live memory. ``--glibc-default``
measures without it.

    python scripts/recompute_memory.py [--rounds 2] [--glibc-default]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


def one_step(recompute: bool) -> dict[str, float]:
    """Run the step in this process and return its memory and time."""
    import torch

    from seqkit.models.gpt import GPTLMHeadModel
    from seqkit.models.gpt_config import GPTConfig
    from seqkit.trainer.recompute import gradient_checkpointing

    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=65,
        n_positions=512,
        n_embd=256,
        n_layer=4,
        n_head=4,
        attn_pdrop=0.0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
    )
    model = GPTLMHeadModel(config).train()
    ids = torch.randint(config.vocab_size, (8, 512))
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1]) * PAGE
    start = time.perf_counter()
    if recompute:
        with gradient_checkpointing({"model": model}):
            model(input_ids=ids, labels=ids).loss.backward()
    else:
        model(input_ids=ids, labels=ids).loss.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"step_peak_mib": (peak - before) / MIB, "process_peak_mib": peak / MIB, "s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--glibc-default", action="store_true")
    parser.add_argument("--child", choices=("plain", "recompute"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_step(args.child == "recompute")))
        return
    env = dict(os.environ)
    if not args.glibc_default:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    results: dict[str, list[dict[str, float]]] = {"plain": [], "recompute": []}
    for _ in range(args.rounds):
        for setting in results:
            out = subprocess.run(
                [sys.executable, __file__, "--child", setting],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results[setting].append(json.loads(out.stdout))
    for setting, rows in results.items():
        summary = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(
            f"{setting:>9}: step peak {summary['step_peak_mib']:.0f} MiB above the start, "
            f"process peak {summary['process_peak_mib']:.0f} MiB, {summary['s']:.2f} s"
        )


if __name__ == "__main__":
    main()
