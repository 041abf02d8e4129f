"""Trains tiny models on the ``streaming`` and ``pretokenized`` language-model modules and on the
Arrow-backed ``sentence-pairs`` (translation) and ``labelled-text`` (classification) modules,
and records, on every process, the batches it trained; run by test_shards.py under ``accelerate
launch`` (2 processes) and plainly (1 process).

Usage: shard_worker.py OUT_DIR CORPUS_FOLDER RUN...

CORPUS_FOLDER holds ``a.txt`` and ``b.txt`` (the language models), ``pairs/{train,val}.{de,en}`` and
``labelled.tsv``. A batch is recorded as its rows: the language models' token windows, the
translation pairs' source and target ids, the classifier's token ids and label, each unpadded.

Each RUN is ``NAME:MODULE[:stop=N][:resume][:batch_size=B]``: train the module's recipe into
``OUT_DIR/NAME`` (``stop=N``: raise at step N, after its checkpoints; ``resume``: continue the
newest one; ``batch_size``: per process, default 2). Every
process writes ``OUT_DIR/NAME.rank-R.json``: ``{"batches": [[epoch, rows]...], "error": text}``;
the main process writes ``OUT_DIR/NAME.safetensors``, the final weights.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from safetensors.torch import save_file

from seqkit.errors import UserError
from seqkit.parts.compose import build_job
from seqkit.parts.resolve import load_recipe
from seqkit.recipes import RECIPES_DIR
from seqkit.trainer import Callback, Trainer

RECIPES = {
    "streaming": "gpt/shakespeare-char-streaming.yaml",
    "pretokenized": "gpt/shakespeare-char.yaml",
    "translation": "seq2seq/multi30k-gru.yaml",
    "classification": "rnn/sst2-lstm-classifier.yaml",
}
SETTINGS = [
    *("model.dropout=0", "trainer.max_steps=24", "trainer.batch_size=2"),
    *("trainer.save_every=4", "trainer.eval_every=12", "trainer.eval_batches=2"),
    *("trainer.progress_bar=false", "trainer.report_to=[]", "trainer.warmup_steps=1"),
]
GPT = ["model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=8"]
MODULE_SETTINGS = {
    "streaming": [*GPT, "sample.prompt=a", "data.chunk_bytes=50"],
    "pretokenized": [*GPT, "sample.prompt=a", "data.module=pretokenized", "data.stride=8"],
    "translation": [
        *("model.embedding_dim=8", "model.hidden_size=8", "model.beam_size=1"),
        *("data.hub=null", "data.min_freq=1"),
    ],
    "classification": [
        *("model.embedding_size=8", "model.hidden_size=8", "tokenizer.kind=char"),
        *("data.val_path=null", "data.val_fraction=0.1"),
    ],
}
DATA_PATH = {"translation": "pairs", "classification": "labelled.tsv"}


class Stop(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, control, logs):
        if trainer.step == self.step:
            raise KeyboardInterrupt  # on every process at the same step


def rows_of(batch: dict) -> list[list[int]]:
    """A training batch's examples as plain lists, without padding: the language models'
    windows; a translation pair's source ids, -1, its labels (target + eos); a classified
    text's ids, -1, its label."""
    ids = batch["input_ids"].tolist()
    if "attention_mask" in batch:  # right-padded rows: cut each at its length
        lengths = batch["attention_mask"].sum(1).tolist()
        ids = [row[:n] for row, n in zip(ids, lengths, strict=True)]
    labels = batch.get("labels")
    if "decoder_input_ids" in batch:  # translation: labels padded with -100
        targets = [[t for t in row if t != -100] for row in labels.tolist()]
        return [[*row, -1, *target] for row, target in zip(ids, targets, strict=True)]
    if labels is not None and labels.dim() == 1:  # classification: one label a row
        return [[*row, -1, label] for row, label in zip(ids, labels.tolist(), strict=True)]
    return ids  # language models: labels are the shifted windows


def run(out: Path, corpus: Path, spec: str) -> None:
    name, module, *flags = spec.split(":")
    stop = next((int(f[5:]) for f in flags if f.startswith("stop=")), None)
    path = corpus / DATA_PATH[module] if module in DATA_PATH else corpus
    overrides = [*SETTINGS, *MODULE_SETTINGS[module], f"data.path={path}"]
    overrides += [f"trainer.{f}" for f in flags if f.startswith("batch_size=")]
    overrides.append(f"data.cache_dir={out / 'cache'}")
    recipe = load_recipe(RECIPES_DIR / RECIPES[module], overrides)
    run_dir = out / name
    seen: list = []
    report: dict = {"batches": seen, "error": None}
    trainer = None
    try:
        job = build_job(recipe, run_dir)
        trainer = Trainer(
            job.task,
            recipe.trainer,
            output_dir=run_dir,
            train_data=job.train_data,
            eval_data=job.eval_data,
            collate_fn=job.collate_fn,
            train_lengths=job.train_lengths,
            callbacks=[Stop(stop)] if stop else [],
        )
        draw = trainer._train_batches

        def recorded():
            for batch in draw():
                seen.append([trainer._epoch, rows_of(batch)])
                yield batch

        trainer._train_batches = recorded
        trainer.train(resume="resume" in flags)
    except KeyboardInterrupt:
        report["error"] = "stopped"
    except UserError as error:
        report["error"] = str(error)
    except Exception:
        report["error"] = traceback.format_exc()
    rank = trainer.accelerator.process_index if trainer is not None else 0
    (out / f"{name}.rank-{rank}.json").write_text(json.dumps(report))
    if trainer is not None and report["error"] is None and trainer.accelerator.is_main_process:
        weights = trainer.unwrapped_model().state_dict()
        weights = {k: v.detach().clone() for k, v in weights.items()}  # tied: one copy each
        save_file(weights, str(out / f"{name}.safetensors"))


def main() -> None:
    out, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    for spec in sys.argv[3:]:
        run(out, corpus, spec)


if __name__ == "__main__":
    main()
