"""Trains the toy LM with the Trainer; run by test_distributed under `accelerate launch`.

Usage: distributed_run.py OUTPUT_DIR BATCH_SIZE [--crash-at N] [--resume]
Writes OUTPUT_DIR/final.safetensors from the main process.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from seqkit.trainer import Callback, Trainer, TrainerConfig
from tests.trainer.toys import ToyLM, ToySequences


class CrashAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, control, logs):
        if trainer.step == self.step:
            raise SystemExit(3)


def main() -> None:
    output_dir, batch_size = Path(sys.argv[1]), int(sys.argv[2])
    crash_at = int(sys.argv[sys.argv.index("--crash-at") + 1]) if "--crash-at" in sys.argv else 0
    torch.manual_seed(0)
    model = ToyLM()
    config = TrainerConfig(
        max_steps=6,
        batch_size=batch_size,
        grad_accum_steps=2,
        lr=0.05,
        optimizer="adamw",
        schedule="cosine",
        warmup_steps=2,
        eval_every=3,
        save_every=2,
        log_every=1,
        report_to=[],
        progress_bar=False,
        seed=5,
    )
    data = ToySequences(size=48)
    trainer = Trainer(
        model,
        config,
        output_dir=output_dir,
        train_data=data,
        eval_data=ToySequences(size=13, seed=1),
        callbacks=[CrashAt(crash_at)] if crash_at else [],
    )
    result = trainer.train(resume="--resume" in sys.argv)
    if trainer.accelerator.is_main_process:
        state = {k: v.contiguous() for k, v in trainer.unwrapped_model().state_dict().items()}
        save_file(state, str(output_dir / "final.safetensors"))
        (output_dir / "eval_loss.txt").write_text(repr(result.eval_metrics["eval/loss"]))


if __name__ == "__main__":
    main()
