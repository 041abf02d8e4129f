"""``export_model``: a trained model, as a Hub folder other people can use.

The steps, each in its own module:

1. :mod:`seqkit.export.source` finds the model folder and what its run recorded (a checkpoint is
   first rebuilt into a folder);
2. :mod:`seqkit.export.hub` checks ``OUT_DIR`` and the weights (no NaN is ever exported) and
   stages the output in a temporary folder;
3. a writer fills it: :func:`seqkit.export.formats.write_native`, or a converter to the stock
   ``transformers`` class (:data:`seqkit.export.registry.STOCK_CONVERTERS`);
4. :mod:`seqkit.export.model_card` writes the ``README.md``; the folder is renamed into place;
5. with a repository id, :func:`seqkit.export.hub.push_folder` uploads it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seqkit.errors import UserError
from seqkit.export.formats import (
    FORMATS,
    WrittenModel,
    fill_path,
    seqkit_config_class,
    write_native,
)
from seqkit.export.hub import check_finite_weights, check_out_dir, push_folder, staged_folder
from seqkit.export.model_card import base_model_of, read_data_record, write_model_card
from seqkit.export.registry import STOCK_CONVERTERS
from seqkit.export.source import ExportSource, open_source

DEFAULT_LICENSE = "apache-2.0"

Writer = Callable[[ExportSource, Path], WrittenModel]


@dataclass
class ExportResult:
    """What :func:`export_model` wrote, and where it went."""

    folder: Path
    format: str
    model: WrittenModel
    url: str | None = None
    """The Hub repository's URL, when pushed."""


def export_model(
    source_path: str | Path,
    out_dir: str | Path,
    *,
    format: str | None = None,
    overwrite: bool = False,
    push_to_hub: str | None = None,
    private: bool = False,
    license: str | None = None,
) -> ExportResult:
    """Export the model at ``source_path`` (a run, a model folder or a checkpoint) to the Hub
    folder ``out_dir``.

    Args:
        source_path: a run directory (its ``final/`` is exported), a model folder, or
            ``RUN/checkpoints/step-N``.
        out_dir: the folder to write; must not exist or be empty, unless ``overwrite`` and it
            holds an earlier seqkit export.
        format: ``transformers`` (the stock class, where the family has one; the default for
            such families) or ``native`` (seqkit's classes; the default otherwise). A stock
            GPT-2 folder exported as ``native`` is imported into seqkit.
        overwrite: replace an earlier export in ``out_dir``.
        push_to_hub: a Hub repository id (``user/name``) to upload the folder to afterwards.
        private: create the Hub repository private.
        license: the card's license (default: the source card's, else apache-2.0).
    """
    out_dir = Path(out_dir)
    if format is not None and format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if push_to_hub is not None:
        _check_repo_id(push_to_hub)
    # Checked once before the source is opened (rebuilding a checkpoint takes a while) and
    # again once the model folder is known, which OUT_DIR must not overlap.
    check_out_dir(out_dir, overwrite=overwrite)
    with open_source(source_path) as source:
        check_out_dir(
            out_dir, overwrite=overwrite, model_folder=source.folder, run_dir=source.run_dir
        )
        chosen = format or default_format(source.model_type)
        writer = _writer(source, chosen)
        check_finite_weights(source.folder)
        location = push_to_hub or str(out_dir.absolute())
        with staged_folder(out_dir) as staging:
            written = writer(source, staging)
            check_finite_weights(staging)
            _write_card(source, staging, written, location, license)
    result = ExportResult(folder=out_dir, format=chosen, model=written)
    if push_to_hub is not None:
        result.url = push_folder(out_dir, push_to_hub, private=private)
    return result


def default_format(model_type: str) -> str:
    """``transformers`` where a stock class exists for the model type, else ``native``."""
    return "transformers" if model_type in STOCK_CONVERTERS else "native"


def _writer(source: ExportSource, format: str) -> Writer:
    model_type = source.model_type
    converter = (
        importlib.import_module(STOCK_CONVERTERS[model_type])
        if model_type in STOCK_CONVERTERS
        else None
    )
    if converter is None:
        seqkit_config_class(source)  # refuses another library's model type
    if format == "transformers":
        if converter is None:
            stock = sorted({t for t in STOCK_CONVERTERS if not t.startswith("seqkit-")})
            raise UserError(
                f"--format transformers: {model_type!r} models have no stock transformers class "
                f"(only {', '.join(stock)} do); use --format native"
            )
        return converter.to_transformers
    if converter is not None:
        return converter.to_native
    return write_native


def _write_card(
    source: ExportSource,
    folder: Path,
    written: WrittenModel,
    location: str,
    license: str | None,
) -> None:
    # What the source card says carries forward where the recipe cannot tell (a bare model
    # folder whose card names its data sets and base model).
    carried = source.card_metadata
    datasets = []
    if isinstance(carried.get("datasets"), list):
        datasets = [str(name) for name in carried["datasets"]]
    base_model = base_model_of(source.recipe)
    if base_model is None and isinstance(carried.get("base_model"), str):
        base_model = carried["base_model"]
    name = source.run_dir.name if source.run_dir else source.folder.name
    family = source.family
    write_model_card(
        folder,
        title=f"{family} ({name}), trained with seqkit",
        family=family,
        num_parameters=written.num_parameters,
        recipe=source.recipe,
        metrics=source.metrics,
        datasets=datasets,
        loss_plot=source.loss_plot,
        license=license or str(source.card_metadata.get("license") or DEFAULT_LICENSE),
        tags=written.tags,
        pipeline_tag=written.pipeline_tag,
        how_to_load=fill_path(written.how_to_load, location),
        library_name=written.library_name,
        architecture=written.architecture,
        size=written.size,
        base_model=base_model,
        data_record=read_data_record(source.run_dir),
    )


def _check_repo_id(repo_id: str) -> None:
    """Refuse a malformed repository id before anything is written."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        reason = " ".join(str(error).split())
        raise UserError(
            f"--push-to-hub: {repo_id!r} is not a valid repository id ({reason})"
        ) from None
