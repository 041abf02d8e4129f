"""The model card: the ``README.md`` of a Hub folder.

The YAML header follows the Hugging Face Hub model-card metadata (``license``,
``library_name``, ``tags``, ``datasets``, ``metrics``, ``pipeline_tag``; see the Hub's
``modelcard.md`` template). It is written with ``yaml.safe_dump``, never by string pasting, so
any title, tag or dataset name gives valid YAML. The body says what the model is (family,
architecture, size), how it was trained (the resolved recipe and its data), how well it did,
its loss curve, its limits and how to load it.

:func:`read_model_card` reads back what :func:`write_model_card` wrote (metadata, recipe,
metrics), so that exporting a bare model folder, with no run directory beside it, still gives a
complete card.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

LOSS_PLOT_NAME = "loss.png"

INTENDED_USE = (
    "This is a small educational model, trained with seqkit on a small data set to show how "
    "its architecture learns. It is useful for studying, testing and comparing training "
    "runs. It has not been evaluated for safety, bias or accuracy beyond the metrics above; "
    "its outputs (text, labels, images or actions) are often wrong, and it must not be used "
    "in production or for decisions about people."
)


# Columns of a metrics row that say when it was measured, not how well.
_NOT_METRICS = frozenset({"step", "epoch"})


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
    recipe: Mapping[str, Any] | None,
    metrics: Mapping[str, float],
    datasets: Sequence[str] = (),
    loss_plot: Path | None = None,
    license: str = "apache-2.0",
    tags: Sequence[str] = (),
    pipeline_tag: str | None = None,
    how_to_load: str,
    library_name: str = "seqkit",
    architecture: str | None = None,
    size: Mapping[str, Any] | None = None,
    training_data: str | None = None,
) -> Path:
    """Write ``folder/README.md`` and return its path.

    Args:
        folder: the Hub folder (created if needed).
        title: the card's heading.
        family: the model family (``gpt``, ``lstm-lm``...), also added as a tag.
        num_parameters: shown as e.g. ``0.80M``.
        recipe: the resolved recipe, shown as YAML (None: not recorded).
        metrics: final metrics (``eval/loss``...), shown as a table.
        datasets: Hub data set names the model was trained on, for the metadata.
        loss_plot: a PNG to copy into the folder as ``loss.png`` and show.
        license: a Hub license identifier.
        tags: extra Hub tags (``seqkit`` and ``family`` are always present).
        pipeline_tag: the Hub task (``text-generation``...), when the model has one.
        how_to_load: Python code that loads the model, shown verbatim.
        library_name: the library that loads the folder (``transformers`` for a folder of stock
            classes).
        architecture: the model class, e.g. ``GPT2LMHeadModel``.
        size: the hyper-parameters that set the model's size (``n_layer``: 4...).
        training_data: one line on the corpus or data set the model was trained on.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    metadata: dict[str, Any] = {
        "license": license,
        "library_name": library_name,
        # dict.fromkeys: drop duplicates, keep order.
        "tags": list(dict.fromkeys(["seqkit", family, *tags])),
    }
    if datasets:
        metadata["datasets"] = list(datasets)
    if metrics:
        # The Hub lists metric ids ("perplexity"), not the run's names ("eval/perplexity").
        ids = (name.rsplit("/", 1)[-1] for name in metrics)
        metadata["metrics"] = list(dict.fromkeys(i for i in ids if i not in _NOT_METRICS))
    if pipeline_tag:
        metadata["pipeline_tag"] = pipeline_tag
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)

    parameters = format_parameter_count(num_parameters)
    model_lines = [f"- Family: `{family}`"]
    if architecture:
        model_lines.append(f"- Architecture: `{architecture}`")
    exact = f"{num_parameters:,}"
    model_lines.append(
        f"- Parameters: {parameters}" + (f" ({exact})" if exact != parameters else "")
    )
    if size:
        shown = ", ".join(f"{name} {value}" for name, value in size.items())
        model_lines.append(f"- Size: {shown}")
    model_lines.append(
        "- Trained with `seqkit`, whose layers are written from scratch in PyTorch and trained "
        "by its `accelerate`-based Trainer."
    )
    sections = [
        f"---\n{header}---",
        f"# {title}",
        "## Model\n\n" + "\n".join(model_lines),
        f"## Training data\n\n{training_data or 'Not recorded.'}",
        (
            "## Training\n\nThe resolved recipe this model was trained with:\n\n"
            f"```yaml\n{_recipe_yaml(recipe)}```"
            if recipe
            else "## Training\n\nThe recipe was not recorded."
        ),
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


def describe_training_data(recipe: Mapping[str, Any] | None) -> tuple[str | None, list[str]]:
    """One line on what a recipe trained on, and the Hub data sets for the card's metadata.

    Reads the recipe's ``data`` section: ``path`` (local files) wins over ``hub`` (a Hub data
    set) over ``embedded`` (a corpus shipped with seqkit's dependencies), as when training.
    A family with a data section of its own gets its fields listed.
    """
    data = (recipe or {}).get("data")
    if not isinstance(data, Mapping) or not data:
        return None, []
    if data.get("path"):
        return f"Local files: `{Path(str(data['path'])).name}`.", []
    if data.get("hub"):
        name = str(data["hub"])
        split = f", split `{data['hub_split']}`" if data.get("hub_split") else ""
        line = f"The Hub data set [`{name}`](https://huggingface.co/datasets/{name}){split}."
        return line, [name]
    if data.get("embedded"):
        return f"`{data['embedded']}`, a corpus that ships with seqkit's dependencies.", []
    fields = ", ".join(f"{k}: `{v}`" for k, v in data.items() if v is not None)
    return (f"The recipe's data section: {fields}." if fields else None), []


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


# ----------------------------------------------------------------------------- reading back


def read_model_card(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """``(metadata, recipe, metrics)`` of a card written by :func:`write_model_card`.

    Anything missing or unreadable comes back empty (``{}``, ``None``, ``{}``): a card is
    documentation, and a hand-edited one must not stop an export.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}, None, {}
    metadata: dict[str, Any] = {}
    body = text
    if text.startswith("---\n") and "\n---\n" in text[3:]:
        header, body = text[4:].split("\n---\n", 1)
        try:
            loaded = yaml.safe_load(header)
        except yaml.YAMLError:
            loaded = None
        metadata = loaded if isinstance(loaded, dict) else {}
    return metadata, _read_recipe(body), _read_metrics_table(body)


def _section(body: str, heading: str) -> str | None:
    """The text under ``## heading`` up to the next ``## `` heading."""
    marker = f"\n## {heading}\n"
    if marker not in f"\n{body}":
        return None
    return f"\n{body}".split(marker, 1)[1].split("\n## ", 1)[0]


def _read_recipe(body: str) -> dict[str, Any] | None:
    section = _section(body, "Training")
    if section is None or "```yaml\n" not in section:
        return None
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    try:
        recipe = yaml.safe_load(block)
    except yaml.YAMLError:
        return None
    return recipe if isinstance(recipe, dict) else None


def _read_metrics_table(body: str) -> dict[str, Any]:
    section = _section(body, "Results") or ""
    metrics: dict[str, Any] = {}
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    for line in rows[2:]:  # after the header row and the --- row
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 2:
            continue
        name, shown = cells[0].replace("\\|", "|"), cells[1]
        try:
            metrics[name] = int(shown) if shown.lstrip("-").isdigit() else float(shown)
        except ValueError:
            metrics[name] = shown
    return metrics
