"""Folders a user hands to seqkit: run directories and model (Hub) folders, checked before use.

``RUN_OR_MODEL_DIR`` arguments are resolved here, and this module is the one gate every model
folder passes before anything in it is loaded, whichever command reads it (``generate``,
``evaluate``, ``export``, ``translate``, ``compose``, a recipe's ``model.init_from``). A folder
is the user's, and may be damaged, tampered with or simply another model than the one asked
for; each such case is a :class:`~seqkit.errors.UserError` naming the file or field that does
not fit, never a traceback and never a model that quietly loads with random weights.

- DESIGN.md: "Weights are safetensors only; nothing is ever unpickled from a user's file."
  ``transformers`` would fall back to ``pytorch_model.bin`` (a pickle) when a folder has no
  safetensors weights, so such a folder is refused before ``from_pretrained`` sees it.
- Every file is read from inside the folder: a symbolic link that leads out of it is refused,
  so a folder cannot make seqkit read (or ``export`` copy) a file from elsewhere.
- ``config.json`` must be a JSON object with a ``model_type``; each ``*.safetensors`` header is
  validated by safetensors' own reader (offsets, dtypes, shapes, total length: a truncated,
  random or lying file fails here); a layer count, or a size that is a weight dimension (a
  vocabulary, a width), larger than the weights could hold is refused before a model of that
  size is built.
- :func:`load_weights` loads a model class from the folder with ``from_pretrained`` and turns
  missing, unexpected and other-shaped weights (another model's file, sizes in ``config.json``
  that the weights do not have) and any load failure into one line.
- :func:`check_vocabulary` refuses a tokenizer whose ids do not match the model's embedding.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seqkit.errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
"""File types that hold Python pickles in the PyTorch world; seqkit never opens them."""

CONFIG_FILE = "config.json"

# Config fields that count layers (or blocks): building a model of a billion layers would take
# hours before the weights could show it is wrong, so they are bounded by the weights first.
_LAYER_COUNT = re.compile(r"^(n_layer|.*_layers|blocks_per_stage)$")
# Config fields that are the length of some weight's dimension (a vocabulary, a width), so can
# never exceed the number of values the weights hold; a larger one (a tampered vocab_size of a
# trillion) is refused before from_pretrained would try to allocate it. image_size is not one:
# a convolutional model's weights do not depend on it.
_WEIGHT_DIMENSION = re.compile(r"^(.*_size|.*_dim|n_embd|n_inner|d_model|d_ff|num_features)$")
_NOT_A_DIMENSION = frozenset({"image_size"})


def cache_dir(kind: str) -> Path:
    """seqkit's cache folder for ``kind`` (``tokens``, ``music``, ``hashes``):
    ``$SEQKIT_CACHE/kind``, else ``$XDG_CACHE_HOME/seqkit/kind``, else
    ``~/.cache/seqkit/kind``. Everything under it can be deleted; it is rebuilt on demand."""
    if os.environ.get("SEQKIT_CACHE"):
        return Path(os.environ["SEQKIT_CACHE"]).expanduser() / kind
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "seqkit" / kind


def resolve_model_dir(path_text: str | Path) -> Path:
    """A run directory (its ``final/``) or a model folder, checked by :func:`check_model_folder`."""
    path = Path(path_text)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if (path / CONFIG_FILE).is_file():
        return check_model_folder(path)
    if (path / "final" / CONFIG_FILE).is_file():
        return check_model_folder(path / "final")
    if (path / "checkpoints").is_dir():
        raise UserError(f"run {path} has no final/ model yet (still training, or interrupted?)")
    raise UserError(f"{path} is neither a run directory nor a model folder (no config.json)")


def run_dir_of(model_dir: Path) -> Path | None:
    """The run a model folder came from (``RUN/final`` or ``RUN/checkpoints/step-N``), if any."""
    for candidate in (model_dir.parent, model_dir.parent.parent):
        if (candidate / "recipe.yaml").is_file():
            return candidate
    return None


def check_model_folder(folder: Path) -> Path:
    """``folder`` when it is a model folder seqkit may read; a UserError naming what is wrong
    otherwise (see the module docstring for what is checked)."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file():
        raise UserError(f"{folder} is not a model folder (no config.json)")
    check_inside(folder)
    config = read_config(folder)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        found = f" (found {', '.join(pickles)}, which seqkit never unpickles)" if pickles else ""
        raise UserError(
            f"{folder} has no safetensors weights{found}; seqkit loads weights only from "
            "safetensors — convert them with safetensors where you trust the file"
        )
    shapes: dict[str, list[int]] = {}
    for path in weights:
        shapes.update(safetensors_shapes(path))
    values = sum(math.prod(shape) for shape in shapes.values())
    for name, value in config.items():
        if not isinstance(value, int):
            continue
        if _LAYER_COUNT.match(name) and value > len(shapes):
            raise UserError(
                f"{folder / CONFIG_FILE}: {name} is {value}, but the weights hold only "
                f"{len(shapes)} tensors; the config does not belong to these weights"
            )
        if _WEIGHT_DIMENSION.match(name) and name not in _NOT_A_DIMENSION and value > values:
            raise UserError(
                f"{folder / CONFIG_FILE}: {name} is {value}, more than all {values} values the "
                "weights hold; the config does not belong to these weights"
            )
    return folder


def check_inside(folder: Path) -> None:
    """Refuse a symbolic link in ``folder`` that leads out of it (or nowhere)."""
    root = folder.resolve()
    for entry in folder.iterdir():
        if not entry.is_symlink():
            continue
        target = entry.resolve()
        if not target.exists():
            raise UserError(f"{entry} is a symbolic link to {target}, which does not exist")
        if not target.is_relative_to(root):
            raise UserError(
                f"{entry} is a symbolic link to {target}, outside the model folder; seqkit "
                "reads a model only from files inside its folder (copy the file in instead)"
            )


def read_json(path: Path, what: str) -> Any:
    """The JSON value in ``path``, which should be ``what`` ("a model config"); a missing,
    unreadable, non-UTF-8 or malformed file is one UserError saying which."""
    if not path.exists():
        raise UserError(f"{path.parent} has no {path.name}: it is not {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read {path} ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; it is not {what}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error.msg}, line {error.lineno})") from None


def read_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` as a dict; it must be a JSON object naming a ``model_type``."""
    path = Path(folder) / CONFIG_FILE
    config = read_json(path, "a model config")
    if not isinstance(config, dict):
        raise UserError(f"{path} holds a JSON {type(config).__name__}, not an object of fields")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise UserError(f"{path} has no model_type string; it is not a transformers model config")
    return config


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """``{tensor name: shape}`` of a safetensors file, read by safetensors itself, which checks
    that the header's dtypes, shapes and offsets describe exactly the bytes of the file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            return {name: list(weights.get_slice(name).get_shape()) for name in weights.keys()}  # noqa: SIM118
    except Exception as error:  # SafetensorError, OSError (a folder, no permission)...
        raise UserError(f"{path} is not a valid safetensors file ({one_line(error)})") from None


def one_line(error: BaseException) -> str:
    """An exception's message on one line, prefixed with its type when that helps."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, (OSError, UserError)) else f"{type(error).__name__}: {text}"


@contextmanager
def loading(what: str) -> Iterator[None]:
    """Turn any failure while reading ``what`` (a user's file) into one UserError line.

    A user's file can fail a loader in ways no list of exception types foresees (the Rust
    readers raise bare ``Exception``; a wrong-typed config field is a TypeError deep inside a
    constructor); whatever it is, the file is at fault and the user gets one line naming it.
    """
    try:
        yield
    except UserError:
        raise
    except Exception as error:
        raise UserError(f"{what} does not load ({one_line(error)})") from None


def load_weights(model_class: type, folder: Path, what: str = "") -> Any:
    """``model_class.from_pretrained(folder)``, checked: the folder passes
    :func:`check_model_folder`, and every weight of the model must be in the file with the
    shape the config gives it, and every weight of the file must have a place in the model."""
    folder = check_model_folder(folder)
    prefix = f"{what}: " if what else ""
    try:
        # Not ignore_mismatched_sizes: with it, transformers would allocate every other-shaped
        # weight at the config's size (gigabytes for a tampered width) before reporting it.
        model, info = model_class.from_pretrained(
            folder, use_safetensors=True, output_loading_info=True
        )
    except Exception as error:
        if "ignore_mismatched_sizes" not in str(error):
            raise UserError(
                f"{prefix}{folder} as {model_class.__name__} does not load ({one_line(error)})"
            ) from None
        raise UserError(
            f"{prefix}the weights in {folder} do not fit its {CONFIG_FILE} as a "
            f"{model_class.__name__}: {_other_shapes(model_class, folder)}"
        ) from None
    problems = []
    for label, keys in (
        ("missing from the file", info.get("missing_keys")),
        ("in the file but not in the model", info.get("unexpected_keys")),
    ):
        if keys:
            names = sorted(map(str, keys))
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            problems.append(f"{len(names)} {label} ({', '.join(names[:3])}{more})")
    if problems:
        raise UserError(
            f"{prefix}the weights in {folder} do not fit its {CONFIG_FILE} as a "
            f"{model_class.__name__}: " + "; ".join(problems)
        )
    return model


def _other_shapes(model_class: type, folder: Path) -> str:
    """Which weights of ``folder`` have another shape than its config gives them, found by
    building the model on the meta device (no memory) and comparing with the file's header."""
    import torch

    saved: dict[str, list[int]] = {}
    for path in sorted(folder.glob("*.safetensors")):
        saved.update(safetensors_shapes(path))
    try:
        with torch.device("meta"):
            skeleton = model_class(model_class.config_class.from_pretrained(folder))
        wanted = {name: list(t.shape) for name, t in skeleton.state_dict().items()}
    except Exception:  # the sizes do not even build a model: say so without the names
        return "some weights have another shape than the config gives them"
    other = [
        f"{name} {saved[name]} in the file vs {wanted[name]}"
        for name in sorted(saved.keys() & wanted.keys())
        if saved[name] != wanted[name]
    ]
    if not other:
        return "some weights have another shape than the config gives them"
    return f"{len(other)} of another shape than config.json gives them ({', '.join(other[:2])})"


def check_vocabulary(folder: Path, tokenizer_size: int, model_size: Any, what: str = "") -> None:
    """Refuse a tokenizer whose number of ids differs from the model's embedding rows: more ids
    index past the embedding, fewer leave ids the model predicts that no token decodes."""
    if tokenizer_size != model_size:
        side = f"{what} " if what else ""
        raise UserError(
            f"{folder}: the {side}tokenizer has {tokenizer_size} ids but the model's {side}"
            f"vocabulary has {model_size}; the folder's files do not belong together"
        )
