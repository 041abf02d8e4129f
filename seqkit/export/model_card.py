"""The model card: the ``README.md`` of a Hub folder.

The YAML header follows the Hugging Face Hub model-card metadata (``license``,
``library_name``, ``tags``, ``datasets``, ``base_model``, ``metrics``, ``pipeline_tag`` and a
``model-index`` of evaluation results; see the Hub's ``modelcard.md`` template and
https://huggingface.co/docs/hub/model-cards). It is built as ``huggingface_hub``'s
``ModelCardData`` with one ``EvalResult`` per final ``eval/*`` metric, and the card is rendered
and saved by ``huggingface_hub.ModelCard``, never by string pasting, so any title, tag or
dataset name gives valid YAML that the Hub (and ``ModelCard.load``) reads back. The body says
what the model is (family, architecture, size), what it was trained on (the data module, the
local files with their size and SHA-256 from the run's ``data.json``, or the Hub data set with
its config, split and revision, or the embedded corpus), how it was trained (the resolved
recipe), how well it did, its loss curve, its limits and how to load it.

:func:`read_model_card` reads back what :func:`write_model_card` wrote (metadata, recipe,
metrics), so that exporting a bare model folder, with no run directory beside it, still gives a
complete card.
"""

from __future__ import annotations

import json
import math
import numbers
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
# The prefix of the metrics measured on held-out data: the model-index reports those.
_EVAL_PREFIX = "eval/"


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
    base_model: str | None = None,
    data_record: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``folder/README.md`` through ``huggingface_hub.ModelCard`` and return its path.

    Args:
        folder: the Hub folder (created if needed).
        title: the card's heading, also the ``model-index`` name.
        family: the model family (``gpt``, ``lstm-lm``...), also added as a tag.
        num_parameters: shown as e.g. ``0.80M``.
        recipe: the resolved recipe, shown as YAML (None: not recorded). Its ``data`` section
            names the data set of the ``model-index`` and, without ``training_data``, the
            "Training data" section; its ``model.init_from`` the ``base_model``.
        metrics: final metrics (``eval/loss``...), shown as a table; the ``eval/*`` ones are
            the ``model-index`` results.
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
        training_data: what the model was trained on, in Markdown (default: described from
            ``recipe`` and ``data_record``).
        base_model: the Hub model this one was fine-tuned from (default: from ``recipe``).
        data_record: the run's ``data.json`` (:mod:`seqkit.data.fingerprint`): file sizes and
            SHA-256 of ``data.path``.
    """
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if training_data is None:
        training_data, found = describe_training_data(recipe, data_record)
        datasets = list(datasets) or found
    if base_model is None:
        base_model = base_model_of(recipe)

    # The Hub lists metric ids ("perplexity"), not the run's names ("eval/perplexity").
    ids = (name.rsplit("/", 1)[-1] for name in metrics)
    eval_results = _eval_results(metrics, pipeline_tag or family, recipe)
    data = ModelCardData(
        license=license,
        library_name=library_name,
        # dict.fromkeys: drop duplicates, keep order.
        tags=list(dict.fromkeys(["seqkit", family, *tags])),
        datasets=list(datasets) or None,
        base_model=base_model,
        metrics=list(dict.fromkeys(i for i in ids if i not in _NOT_METRICS)) or None,
        pipeline_tag=pipeline_tag,
        model_name=title if eval_results else None,
        eval_results=eval_results or None,
    )
    sections = [
        f"# {title}",
        _model_section(family, num_parameters, architecture, size),
        f"## Training data\n\n{training_data or 'Not recorded.'}",
        _training_section(recipe),
        "## Results\n\n" + _metrics_table(metrics),
        *_loss_section(folder, loss_plot),
        f"## Intended use and limits\n\n{INTENDED_USE}",
        f"## How to load\n\n```python\n{how_to_load.strip()}\n```",
    ]
    body = "\n\n".join(sections) + "\n"
    # The header in the order a reader looks for it, not ModelCardData's attribute order.
    order = ["license", "library_name", "tags", "base_model", "datasets", "metrics"]
    order += ["pipeline_tag", "model-index"]
    header = data.to_yaml(original_order=order)
    path = folder / "README.md"
    ModelCard(f"---\n{header}\n---\n\n{body}").save(path)
    return path


def _model_section(
    family: str, num_parameters: int, architecture: str | None, size: Mapping[str, Any] | None
) -> str:
    parameters = format_parameter_count(num_parameters)
    lines = [f"- Family: `{family}`"]
    if architecture:
        lines.append(f"- Architecture: `{architecture}`")
    exact = f"{num_parameters:,}"
    lines.append(f"- Parameters: {parameters}" + (f" ({exact})" if exact != parameters else ""))
    if size:
        lines.append("- Size: " + ", ".join(f"{name} {value}" for name, value in size.items()))
    lines.append(
        "- Trained with `seqkit`, whose layers are written from scratch in PyTorch and trained "
        "by its `accelerate`-based Trainer."
    )
    return "## Model\n\n" + "\n".join(lines)


def _training_section(recipe: Mapping[str, Any] | None) -> str:
    if not recipe:
        return "## Training\n\nThe recipe was not recorded."
    return (
        "## Training\n\nThe resolved recipe this model was trained with:\n\n"
        f"```yaml\n{_recipe_yaml(recipe)}```"
    )


def _loss_section(folder: Path, loss_plot: Path | None) -> list[str]:
    """The loss plot, copied into ``folder`` as ``loss.png``; nothing without one."""
    if loss_plot is None:
        return []
    target = folder / LOSS_PLOT_NAME
    if Path(loss_plot).resolve() != target.resolve():
        shutil.copyfile(loss_plot, target)
    return [f"## Loss\n\n![Training and evaluation loss]({LOSS_PLOT_NAME})"]


def _eval_results(
    metrics: Mapping[str, Any], task_type: str, recipe: Mapping[str, Any] | None
) -> list[Any]:
    """One ``EvalResult`` per finite ``eval/*`` metric, on the recipe's data set.

    The metrics are measured on the run's held-out data (the tail of the training data, or
    its own evaluation files), so the result's data set is the recipe's: a Hub data set by
    its id, config, split and revision; local files or an embedded corpus by name.
    """
    from huggingface_hub import EvalResult

    dataset = evaluation_dataset(recipe)
    results = []
    for name, value in metrics.items():
        if not name.startswith(_EVAL_PREFIX) or isinstance(value, bool):
            continue
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            continue  # NaN and inf are not valid Hub metric values
        # Plain Python numbers: the card's YAML must not carry a NumPy type tag, which
        # yaml.safe_load (the Hub's parser) refuses.
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
        results.append(
            EvalResult(
                task_type=task_type,
                metric_type=name[len(_EVAL_PREFIX) :],
                metric_value=value,
                metric_name=name,
                **dataset,
            )
        )
    return results


def evaluation_dataset(recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``EvalResult`` data set fields (``dataset_type``, ``dataset_name``, config, split,
    revision) of what ``recipe`` trained and evaluated on, as training picks it: ``data.path``
    over ``data.hub`` over ``data.embedded``."""
    data = _data_section(recipe)
    if data.get("path"):
        name = _path_name(data["path"])
        return {"dataset_type": name, "dataset_name": name}
    if data.get("hub"):
        hub = str(data["hub"])
        return {
            "dataset_type": hub,
            "dataset_name": hub,
            "dataset_config": _text_or_none(data.get("hub_config")),
            "dataset_split": _text_or_none(data.get("hub_split")),
            "dataset_revision": _text_or_none(data.get("hub_revision")),
        }
    if data.get("embedded"):
        name = str(data["embedded"])
        return {"dataset_type": name, "dataset_name": name}
    # A family whose data section names its data otherwise (an environment, a generated set):
    # its module, else the task.
    name = str(_data_module(recipe) or (recipe or {}).get("task") or "unknown")
    return {"dataset_type": name, "dataset_name": name}


def describe_training_data(
    recipe: Mapping[str, Any] | None, record: Mapping[str, Any] | None = None
) -> tuple[str | None, list[str]]:
    """What a recipe trained on, in Markdown, and the Hub data sets for the card's metadata.

    Reads the recipe's ``data`` section: ``path`` (local files) wins over ``hub`` (a Hub data
    set) over ``embedded`` (a corpus shipped with seqkit's dependencies), as when training.
    ``record`` is the run's ``data.json`` (:func:`read_data_record`): with it, local files are
    listed with their size and SHA-256, so a reader can tell whether their copy is the same.
    A family with a data section of its own gets its fields listed.
    """
    data = _data_section(recipe)
    if "data" not in (recipe or {}):
        return None, []
    lines = []
    module = _data_module(recipe)
    if module:
        lines.append(f"- Data module: `{module}`")
    datasets: list[str] = []
    if data.get("path"):
        lines += _local_lines("Local files", data["path"], (record or {}).get("data.path"))
    elif data.get("hub"):
        name = str(data["hub"])
        datasets = [name]
        lines.append(f"- Hub data set: [`{name}`](https://huggingface.co/datasets/{name})")
        for key, label in (
            ("hub_config", "config"),
            ("hub_split", "split"),
            ("hub_revision", "revision"),
        ):
            if data.get(key):
                lines.append(f"- {label.capitalize()}: `{data[key]}`")
    elif data.get("embedded"):
        lines.append(f"- `{data['embedded']}`, a corpus that ships with seqkit's dependencies")
    else:
        fields = ", ".join(
            f"{k}: `{v}`" for k, v in data.items() if v is not None and k != "module"
        )
        if fields:
            lines.append(f"- The recipe's data section: {fields}")
    if data.get("eval_path"):
        record_entry = (record or {}).get("data.eval_path")
        lines += _local_lines("Evaluation files", data["eval_path"], record_entry)
    return ("\n".join(lines) if lines else None), datasets


def read_data_record(run_dir: Path | None) -> dict[str, Any] | None:
    """The run's ``data.json`` (written at step 0 by :mod:`seqkit.data.fingerprint`), or None
    when there is none or it cannot be read: the card then names the data without sizes."""
    if run_dir is None:
        return None
    from seqkit.data.fingerprint import FILE_NAME

    try:
        record = json.loads((Path(run_dir) / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def base_model_of(recipe: Mapping[str, Any] | None) -> str | None:
    """The Hub id ``model.init_from`` fine-tuned from: a Hub name as given; for a local folder
    (a stock ``transformers`` folder or a seqkit run), the Hub name its ``config.json`` records
    in ``_name_or_path``, else its own card's ``base_model``. None when there is none."""
    model = (recipe or {}).get("model")
    init_from = model.get("init_from") if isinstance(model, Mapping) else None
    if not init_from:
        return None
    folder = Path(str(init_from)).expanduser()
    if not folder.is_dir():
        return str(init_from) if _is_hub_name(str(init_from)) else None
    if not (folder / "config.json").is_file() and (folder / "final" / "config.json").is_file():
        folder = folder / "final"  # a run directory: its trained model
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        config = {}
    name = config.get("_name_or_path") if isinstance(config, dict) else None
    if isinstance(name, str) and _is_hub_name(name) and not Path(name).expanduser().exists():
        return name
    base = read_model_card(folder / "README.md")[0].get("base_model")
    return base if isinstance(base, str) and _is_hub_name(base) else None


def _is_hub_name(name: str) -> bool:
    """Whether ``name`` is a valid Hub repository id (``user/name`` or a legacy ``gpt2``)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or name.startswith((".", "/", "~")):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _data_module(recipe: Mapping[str, Any] | None) -> str | None:
    """The data module that read the data: the recipe's ``data.module``, else its task's
    default (as training picks it), else None for a task seqkit does not know."""
    named = _data_section(recipe).get("module")
    if named:
        return str(named)
    from seqkit.parts.registry import SHORTHANDS, TASKS

    task = (recipe or {}).get("task")
    if isinstance(task, str) and task in SHORTHANDS:  # an earlier recipe's one-word task
        task = SHORTHANDS[task].task
    if not isinstance(task, str) or task not in TASKS:
        return None
    try:
        default = getattr(TASKS.get(task), "default_data", None)
    except ImportError:  # a family whose optional dependency is not installed here
        return None
    return str(default) if default else None


def _data_section(recipe: Mapping[str, Any] | None) -> Mapping[str, Any]:
    data = (recipe or {}).get("data")
    return data if isinstance(data, Mapping) else {}


def _path_name(path: Any) -> str:
    """A data path's last part: the card must not show the trainer's home folder."""
    return Path(str(path)).name or str(path)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _local_lines(label: str, path: Any, entry: Any) -> list[str]:
    """The card lines of a local data path: its name, and with the run's record each file's
    size and SHA-256 (one file on the same line, a folder's files below it)."""
    name = _path_name(path)
    files = entry.get("files") if isinstance(entry, Mapping) else None
    if not isinstance(files, Mapping) or not files:
        return [f"- {label}: `{name}`"]
    if len(files) == 1 and next(iter(files)) == name:
        return [f"- {label}: `{name}` ({_file_facts(files[name])})"]
    return [f"- {label}: `{name}`", *_file_lines(files)]


def _file_facts(facts: Any) -> str:
    facts = facts if isinstance(facts, Mapping) else {}
    size, sha = facts.get("size"), facts.get("sha256")
    size_text = f"{size:,} bytes" if isinstance(size, int) else "size unknown"
    return size_text + (f", SHA-256 `{sha}`" if isinstance(sha, str) else "")


def _file_lines(files: Mapping[str, Any]) -> list[str]:
    """Size and SHA-256 of each file a ``data.json`` entry lists (at most a few, then a count)."""
    shown = 5
    lines = [f"  - `{name}`: {_file_facts(facts)}" for name, facts in list(files.items())[:shown]]
    if len(files) > shown:
        total = sum(f.get("size", 0) for f in files.values() if isinstance(f, Mapping))
        lines.append(f"  - and {len(files) - shown} more files ({total:,} bytes in all)")
    return lines


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
