"""What is being exported: a model folder, and what its run knows about it.

``seqkit export`` takes a run directory (its ``final/``), a model folder, or one checkpoint of a
run (``RUN/checkpoints/step-N``). A checkpoint holds raw training state, not a Hub folder, so it
is first turned into one the way training ends: the run's saved model config and tokenizer
(``RUN/model/``, written at step 0) take the checkpoint's weights — the corpus is not read. A run
from before seqkit saved them is rebuilt from its recipe instead.

Beside the weights, a model card needs the recipe, the final metrics and the loss plot. They come
from the run directory when there is one (``recipe.yaml``, ``metrics.jsonl``, ``loss.png``) and
otherwise from the folder's own model card, written when it was trained.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqkit.errors import UserError
from seqkit.export.model_card import LOSS_PLOT_NAME, read_model_card
from seqkit.folders import check_model_folder, read_config, run_dir_of


@dataclass
class ExportSource:
    """A Hub folder to export and what is known about how it was trained."""

    folder: Path
    """The model folder (``config.json`` and safetensors weights)."""
    config: dict[str, Any]
    """The folder's ``config.json``."""
    run_dir: Path | None = None
    """The run the folder came from, if known."""
    recipe: dict[str, Any] | None = None
    """The resolved recipe, if known."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Final evaluation metrics (``eval/loss``...), if any were recorded."""
    loss_plot: Path | None = None
    """The run's loss plot, if any."""
    card_metadata: dict[str, Any] = field(default_factory=dict)
    """The metadata header of the folder's own model card (license, datasets...)."""

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def family(self) -> str:
        """The recipe's task (``gpt``, ``lstm-lm``...), else the model type."""
        task = (self.recipe or {}).get("task")
        return str(task) if task else self.model_type


@contextmanager
def open_source(path_text: str | Path) -> Iterator[ExportSource]:
    """The :class:`ExportSource` for a run directory, model folder or checkpoint.

    A context manager because a checkpoint is first written out as a Hub folder in a temporary
    directory, removed on exit.
    """
    path = Path(path_text)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if not path.is_dir():
        raise UserError(f"{path} is a file; give a run directory or a model folder")
    if (path / "config.json").is_file():
        yield _describe(check_model_folder(path), run_dir_of(path), step=None)
        return
    if (path / "final" / "config.json").is_file():
        yield _describe(check_model_folder(path / "final"), path, step=None)
        return
    if (path / "checkpoints").is_dir():
        newest = _newest_checkpoint(path / "checkpoints")
        if newest is None:
            raise UserError(f"run {path} has no final/ model and no complete checkpoint to export")
        raise UserError(
            f"run {path} has no final/ model (still training, or interrupted?); its newest "
            f"checkpoint can be exported instead: seqkit export {newest} OUT_DIR"
        )
    if _is_checkpoint(path):
        with _checkpoint_as_folder(path) as source:
            yield source
        return
    raise UserError(
        f"{path} is neither a run directory, a model folder (no config.json) nor a checkpoint"
    )


# ----------------------------------------------------------------------------- describing


def _describe(folder: Path, run_dir: Path | None, step: int | None) -> ExportSource:
    config = read_config(folder)
    _check_loads(folder, config["model_type"])
    card_metadata, card_recipe, card_metrics = read_model_card(folder / "README.md")
    source = ExportSource(
        folder=folder,
        config=config,
        run_dir=run_dir,
        recipe=card_recipe,
        metrics=card_metrics,
        card_metadata=card_metadata,
    )
    if (folder / LOSS_PLOT_NAME).is_file():
        source.loss_plot = folder / LOSS_PLOT_NAME
    if run_dir is not None:
        # The run's own records are the originals; the card only copied them.
        recipe_path = run_dir / "recipe.yaml"
        if recipe_path.is_file():
            try:
                recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                raise UserError(f"{recipe_path} is not valid YAML ({error})") from None
            if isinstance(recipe, dict):
                source.recipe = recipe
        source.metrics = final_metrics(run_dir / "metrics.jsonl", step) or source.metrics
        if (run_dir / LOSS_PLOT_NAME).is_file():
            source.loss_plot = run_dir / LOSS_PLOT_NAME
    return source


# The files a family's tokenizer (or vectorizer) is saved in.
_TOKENIZER_FILES = (
    "tokenizer.json",
    "translation_vocab.json",
    "vectorizer.json",
    "table_features.json",
)


def _check_loads(folder: Path, model_type: str) -> None:
    """A folder with a tokenizer is loaded through its family's checked loader before anything
    is written, so a tokenizer that is damaged or does not fit the model is refused rather
    than exported. The weights themselves are checked by the exporter that reads them (a
    bare model folder, without a tokenizer, exports as it is)."""
    from seqkit.parts.model_folder import builder_for_model_type, load_folder

    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        return
    if builder_for_model_type(model_type) is not None:
        load_folder(folder)


def final_metrics(path: Path, step: int | None = None) -> dict[str, Any]:
    """The last evaluation in ``metrics.jsonl`` (at or before ``step``): its ``eval/...``
    values, and the step they were measured at.

    A run that never evaluates (a GAN has no held-out loss) gets its last logged training
    values instead (``train/...``, without the learning rate and timings), so its card still
    shows where training ended.
    """
    from seqkit.trainer.logging import read_metrics

    try:
        rows = read_metrics(path)
    except (ValueError, OSError):
        return {}
    rows = [row for row in rows if step is None or row.get("step", 0) <= step]
    for prefix in ("eval/", "train/"):
        for row in reversed(rows):
            found = {
                k: v
                for k, v in row.items()
                if k.startswith(prefix) and not k.endswith(_NOT_QUALITY) and not _is_nan(v)
            }
            if found:
                if "step" in row:
                    found["step"] = row["step"]
                return found
    return {}


# Logged values that say how training ran, not how well the model does.
_NOT_QUALITY = ("/lr", "/elapsed_s", "/skipped_steps", "/grad_norm", "_per_s", "/mfu")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


# ----------------------------------------------------------------------------- checkpoints


def _is_checkpoint(path: Path) -> bool:
    from seqkit.trainer.checkpoint import CHECKPOINT_WEIGHTS  # torch: only when exporting

    return path.name.startswith("step-") and any(path.glob(CHECKPOINT_WEIGHTS.format(name="*")))


def _newest_checkpoint(root: Path) -> Path | None:
    steps = [
        (int(p.name.removeprefix("step-")), p)
        for p in root.iterdir()
        if p.is_dir()
        and p.name.startswith("step-")
        and p.name[5:].isdigit()
        # The Trainer writes COMPLETE last; a checkpoint without it was cut off.
        and (p / "COMPLETE").exists()
    ]
    return max(steps)[1] if steps else None


@contextmanager
def _checkpoint_as_folder(checkpoint: Path) -> Iterator[ExportSource]:
    """Rebuild the run's model from its recipe, load the checkpoint's weights into it, and
    write the Hub folder training would have written (in a temporary directory)."""
    run_dir = checkpoint.parent.parent
    recipe_path = run_dir / "recipe.yaml"
    if not recipe_path.is_file():
        raise UserError(f"{checkpoint} is not inside a run directory (no {recipe_path})")
    if not (checkpoint / "COMPLETE").exists():
        raise UserError(f"checkpoint {checkpoint} is incomplete (its writing was cut off)")
    from seqkit.parts import compose, model_folder, resolve
    from seqkit.trainer.checkpoint import CHECKPOINT_WEIGHTS, load_module_weights

    recipe = resolve.load_recipe(recipe_path)
    step = int(checkpoint.name.removeprefix("step-")) if checkpoint.name[5:].isdigit() else None
    metrics = final_metrics(run_dir / "metrics.jsonl", step)
    with tempfile.TemporaryDirectory(prefix="seqkit-export-") as temporary:
        folder = Path(temporary) / "model"
        if model_folder.saved_run_model(run_dir):  # the run stands alone: no corpus is read
            model_folder.write_checkpoint_folder(checkpoint, folder, metrics)
        else:  # a run from before seqkit saved its model config: rebuilt from the recipe
            job = compose.build_job(recipe, run_dir)
            for name, module in job.task.models.items():
                load_module_weights(module, checkpoint / CHECKPOINT_WEIGHTS.format(name=name))
            job.save_final(folder, metrics, run_dir)
        yield _describe(check_model_folder(folder), run_dir, step)
