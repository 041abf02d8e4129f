"""The model card: the ``README.md`` of a Hub folder.

The YAML header follows the Hugging Face Hub model-card metadata (``license``,
``library_name``, ``tags``, ``datasets``, ``pipeline_tag``; see the Hub's
``modelcard.md`` template). It is written with ``yaml.safe_dump``, never by string pasting, so
any title, tag or dataset name gives valid YAML. The body says what the model is, how it was
trained (the resolved recipe), how well it did, its limits and how to load it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

LOSS_PLOT_NAME = "loss.png"

INTENDED_USE = (
    "This is a small educational model, trained with seqkit on a small corpus to show how "
    "its architecture learns. It is useful for studying, testing and comparing training "
    "runs. It has not been evaluated for safety, bias or factual accuracy, it will produce "
    "incoherent or wrong text, and it must not be used to generate text for production use "
    "or for decisions about people."
)


def format_parameter_count(count: int) -> str:
    """A readable parameter count: ``0.80M`` for 800,000, ``1.25B``; small counts in full."""
    if count >= 1_000_000_000:
        return f"{count / 1e9:.2f}B"
    if count >= 10_000:
        return f"{count / 1e6:.2f}M"
    return f"{count:,}"


def write_model_card(
    folder: Path,
    *,
    title: str,
    family: str,
    num_parameters: int,
    recipe: Mapping[str, Any],
    metrics: Mapping[str, float],
    datasets: Sequence[str] = (),
    loss_plot: Path | None = None,
    license: str = "apache-2.0",
    tags: Sequence[str] = (),
    pipeline_tag: str | None = None,
    how_to_load: str,
) -> Path:
    """Write ``folder/README.md`` and return its path.

    Args:
        folder: the Hub folder (created if needed).
        title: the card's heading.
        family: the model family (``gpt``, ``lstm-lm``...), also added as a tag.
        num_parameters: shown as e.g. ``0.80M``.
        recipe: the resolved recipe, shown as YAML.
        metrics: final metrics (``eval/loss``...), shown as a table.
        datasets: Hub data set names the model was trained on, for the metadata.
        loss_plot: a PNG to copy into the folder as ``loss.png`` and show.
        license: a Hub license identifier.
        tags: extra Hub tags (``seqkit`` and ``family`` are always present).
        pipeline_tag: the Hub task (``text-generation``...), when the model has one.
        how_to_load: Python code that loads the model, shown verbatim.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    metadata: dict[str, Any] = {
        "license": license,
        "library_name": "seqkit",
        # dict.fromkeys: drop duplicates, keep order.
        "tags": list(dict.fromkeys(["seqkit", family, *tags])),
    }
    if datasets:
        metadata["datasets"] = list(datasets)
    if pipeline_tag:
        metadata["pipeline_tag"] = pipeline_tag
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)

    parameters = format_parameter_count(num_parameters)
    sections = [
        f"---\n{header}---",
        f"# {title}",
        "## Model\n\n"
        f"- Family: `{family}`\n"
        f"- Parameters: {parameters} ({num_parameters:,})\n"
        "- Library: `seqkit`, with every layer written from scratch in PyTorch and trained "
        "by its `accelerate`-based Trainer.",
        "## Training\n\nThe resolved recipe this model was trained with:\n\n"
        f"```yaml\n{_recipe_yaml(recipe)}```",
        "## Results\n\n" + _metrics_table(metrics),
    ]
    if loss_plot is not None:
        target = folder / LOSS_PLOT_NAME
        if Path(loss_plot).resolve() != target.resolve():
            shutil.copyfile(loss_plot, target)
        sections.append(f"## Loss\n\n![Training and evaluation loss]({LOSS_PLOT_NAME})")
    sections.append(f"## Intended use and limits\n\n{INTENDED_USE}")
    sections.append(f"## How to load\n\n```python\n{how_to_load.strip()}\n```")

    path = folder / "README.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path


def _recipe_yaml(recipe: Mapping[str, Any]) -> str:
    return yaml.safe_dump(_plain(recipe), sort_keys=False, allow_unicode=True)


def _plain(value: Any) -> Any:
    """Tuples to lists and paths to strings, so ``yaml.safe_dump`` accepts any recipe."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _metrics_table(metrics: Mapping[str, float]) -> str:
    if not metrics:
        return "No metrics were recorded."
    rows = ["| metric | value |", "| --- | --- |"]
    for name, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        escaped = name.replace("|", "\\|")  # a pipe would end the table cell
        rows.append(f"| {escaped} | {shown} |")
    return "\n".join(rows)
