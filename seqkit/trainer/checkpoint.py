"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

DESIGN.md: "Weights are safetensors only; nothing is ever unpickled from a user's file." A
checkpoint directory therefore holds only ``*.safetensors``, ``*.json`` and the ``COMPLETE``
marker. Loading one can build tensors, numbers, strings and containers, never run code.

Three layers:

* :func:`save_tree` / :func:`load_tree` store any nested structure of dicts (str or int keys),
  lists, tuples, scalars and tensors, such as an optimizer's ``state_dict()`` or the RNG states
  of :func:`capture_rng_state`, and give back exactly what was saved: dtypes, shapes, values,
  tuples as tuples and int keys as ints.
* :func:`save_module_weights` / :func:`load_module_weights` store a module's weights with
  safetensors' ``save_model``/``load_model``, which store tied (shared) tensors once.
* :class:`CheckpointManager` lays out ``root/step-N/`` directories and makes each appear
  atomically: written in a staging directory, marked ``COMPLETE``, then renamed into place, so
  a crash at any moment leaves either the old set of checkpoints or the new one.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from seqkit.errors import UserError

COMPLETE = "COMPLETE"

# Markers of the JSON skeleton. A JSON object with exactly one of these keys is an encoded
# value; a user dict that happens to use one of them as a key is stored in the "__dict__"
# form, so decoding is never ambiguous.
_TENSOR, _TUPLE, _DICT = "__tensor__", "__tuple__", "__dict__"
_MARKERS = frozenset((_TENSOR, _TUPLE, _DICT))


# ---------------------------------------------------------------------- trees


class _Encoder:
    """Turns a tree into a JSON-able skeleton and a flat dict of tensors."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._storages: set[tuple[str, int]] = set()

    def encode(self, value: Any, path: str) -> Any:
        # bool before int: bool is a subclass of int, and JSON keeps them apart anyway.
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, torch.Tensor):
            return {_TENSOR: self._add_tensor(value, path)}
        if isinstance(value, tuple):
            return {_TUPLE: [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            plain = all(isinstance(k, str) for k in value) and not _MARKERS & value.keys()
            if plain:
                return {k: self.encode(v, f"{path}.{k}") for k, v in value.items()}
            return {
                _DICT: [
                    [self._encode_key(k, path), self.encode(v, f"{path}.{k}")]
                    for k, v in value.items()
                ]
            }
        raise TypeError(
            f"cannot store {type(value).__name__} at {path or '<root>'} in a checkpoint: "
            "use dicts, lists, tuples, None, bool, int, float, str or torch.Tensor"
        )

    def _encode_key(self, key: Any, path: str) -> Any:
        if key is None or isinstance(key, (bool, int, float, str)):
            return key
        if isinstance(key, tuple):
            return {_TUPLE: [self._encode_key(k, path) for k in key]}
        raise TypeError(f"cannot store a dict key of type {type(key).__name__} at {path}")

    def _add_tensor(self, tensor: torch.Tensor, path: str) -> str:
        name = path.lstrip(".") or "tensor"
        while name in self.tensors:  # paths are unique unless keys contain dots; stay safe
            name = f"{name}#"
        tensor = tensor.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()  # a fresh copy: shares storage with nothing
        else:
            # safetensors refuses tensors that share memory (views of one buffer, a tensor
            # stored twice) and needs contiguous data; copy exactly those, not every tensor.
            storage = tensor.untyped_storage()
            key = (str(tensor.device), storage.data_ptr())
            whole = (
                tensor.is_contiguous()
                and tensor.storage_offset() == 0
                and tensor.numel() * tensor.element_size() == storage.nbytes()
            )
            if not whole or (storage.nbytes() > 0 and key in self._storages):
                tensor = tensor.clone(memory_format=torch.contiguous_format)
            else:
                self._storages.add(key)
        self.tensors[name] = tensor
        return name


CHECKPOINT_WEIGHTS = "model-{name}.safetensors"
"""The file a task's model ``name`` is saved in inside ``checkpoints/step-N/``."""


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((marker, payload),) = value.items()
        if marker == _TENSOR:
            return tensors[payload]
        if marker == _TUPLE:
            return tuple(_decode(v, tensors) for v in payload)
        if marker == _DICT:
            return {_decode_key(k): _decode(v, tensors) for k, v in payload}
    return {k: _decode(v, tensors) for k, v in value.items()}


def _decode_key(key: Any) -> Any:
    if isinstance(key, dict):
        return tuple(_decode_key(k) for k in key[_TUPLE])
    return key


def save_tree(tree: Any, directory: Path, name: str) -> None:
    """Write ``tree`` as ``directory/name.safetensors`` (tensors) + ``directory/name.json``.

    The JSON file is the structure with each tensor replaced by ``{"__tensor__": key}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoder = _Encoder()
    skeleton = encoder.encode(tree, "")
    save_file(encoder.tensors, str(directory / f"{name}.safetensors"))
    # allow_nan: callback state legitimately holds inf (an early-stopping "best" not yet set).
    text = json.dumps({"format": "seqkit-tree", "version": 1, "tree": skeleton}, indent=1)
    (directory / f"{name}.json").write_text(text + "\n", encoding="utf-8")


def load_tree(directory: Path, name: str) -> Any:
    """Read back what :func:`save_tree` wrote; tensors come back on the CPU."""
    directory = Path(directory)
    json_path = directory / f"{name}.json"
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
        tensors = load_file(str(directory / f"{name}.safetensors"), device="cpu")
    except FileNotFoundError as error:
        raise UserError(f"checkpoint file missing: {error.filename}") from None
    except (ValueError, SafetensorError) as error:  # JSON or safetensors that do not parse
        where = directory / name
        raise UserError(f"checkpoint {where} is damaged or not seqkit's: {error}") from None
    if not isinstance(document, dict) or document.get("format") != "seqkit-tree":
        raise UserError(f"{json_path} is not a seqkit checkpoint file")
    try:
        return _decode(document.get("tree"), tensors)
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{json_path} is damaged: {type(error).__name__} {error}") from None


# ---------------------------------------------------------------------- trainer state

TRAINER_STATE = "trainer_state"
"""The tree (``trainer_state.json`` + ``.safetensors``) holding the Trainer's counters."""

# Counters of the trainer state, each an int at least this large. Nothing counts past
# _ABSURD: an epoch or batch index of that size is an edited file, not a run (and would
# overflow the per-epoch seed).
_COUNTERS = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "num_processes": 1, "skipped_steps": 0}
_ABSURD = 2**31
_CONTAINERS = {"schedulers": dict, "callbacks": list, "log_window": dict}


def load_trainer_state(directory: Path, max_steps: int) -> dict[str, Any]:
    """The Trainer's state saved in checkpoint ``directory``, checked before it is trusted.

    The file is the user's and can be edited: a step that is negative, not an integer, not
    the step the directory is named after, or beyond ``max_steps`` (the run would end at once
    with a model trained longer than asked, or count an absurd number of steps), and counters
    or sections of the wrong type, are a UserError naming the field.
    """
    directory = Path(directory)
    state = load_tree(directory, TRAINER_STATE)
    where = directory / f"{TRAINER_STATE}.json"
    if not isinstance(state, dict):
        raise UserError(f"{where} is damaged: it holds a {type(state).__name__}, not the fields")
    for name, least in _COUNTERS.items():
        if name == "skipped_steps" and name not in state:
            continue  # written only by newer versions
        value = state.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value < _ABSURD:
            raise UserError(
                f"{where}: {name} must be an integer in [{least}, {_ABSURD}), got {value!r}; "
                "the checkpoint is damaged or was edited"
            )
    for name, kind in _CONTAINERS.items():
        if not isinstance(state.get(name), kind):
            raise UserError(
                f"{where}: {name} must be a {'list' if kind is list else 'mapping'}, got "
                f"{type(state.get(name)).__name__}; the checkpoint is damaged or was edited"
            )
    if not all(isinstance(v, torch.Tensor) for v in state["log_window"].values()):
        raise UserError(f"{where}: log_window must hold tensors; the checkpoint was edited")
    if "task" not in state:
        raise UserError(f"{where} has no task state; the checkpoint is damaged or was edited")
    step = state["step"]
    named = _STEP_DIR.fullmatch(directory.name)
    if named and int(named.group(1)) != step:
        raise UserError(
            f"{where} says step {step}, but the checkpoint is {directory.name}; the checkpoint "
            "is damaged or was edited"
        )
    if step > max_steps:
        raise UserError(
            f"checkpoint {directory} is at step {step}, beyond trainer.max_steps ({max_steps}); "
            f"resume with --set trainer.max_steps={step} or more"
        )
    return state


# ---------------------------------------------------------------------- RNG states


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (when available) CUDA RNG states, as a tree for save_tree."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        # The Mersenne Twister key is a uint32 array; int64 holds it exactly in a tensor.
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the generators to what :func:`capture_rng_state` captured.

    CUDA states are restored when this machine has CUDA (for as many devices as both have),
    and skipped otherwise, so a checkpoint moves between machines.
    """
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        count = min(len(cuda_states), torch.cuda.device_count())
        for device in range(count):
            torch.cuda.set_rng_state(cuda_states[device], device)


# ---------------------------------------------------------------------- module weights


def save_module_weights(module: nn.Module, path: Path) -> None:
    """Save ``module``'s parameters and buffers to the safetensors file ``path``.

    ``save_model`` stores each tied tensor once (an embedding shared with the output head) and
    ``load_model`` ties it back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(module, str(path), force_contiguous=True)


def load_module_weights(module: nn.Module, path: Path) -> None:
    """Load ``path`` into ``module`` strictly: every tensor must match a parameter or buffer."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        missing, unexpected = load_model(module, str(path), strict=False)
    except SafetensorError as error:  # not a safetensors file (a planted pickle, say)
        raise UserError(f"{path} is not a valid safetensors file: {error}") from None
    except RuntimeError as error:  # shape mismatches come from load_state_dict
        detail = " ".join(str(error).split())
        raise UserError(f"{path} does not fit {type(module).__name__}: {detail}") from None
    if missing or unexpected:
        raise UserError(
            f"{path} does not fit {type(module).__name__}: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )


# ---------------------------------------------------------------------- the manager

_STEP_DIR = re.compile(r"step-(\d+)")
_HIDDEN_DIR = re.compile(r"\.step-(\d+)\.(tmp|old)")


class CheckpointManager:
    """Complete checkpoints in ``root/step-N/``; staging, atomic commit, rotation.

    Writing a checkpoint: ``staging_dir(N)``, write files there, ``commit(N)``. Only a
    committed directory is named ``step-N`` and holds ``COMPLETE``; everything else is a
    hidden ``.step-N.*`` directory that :meth:`latest` never returns. Used on the main process
    only; the Trainer synchronizes the others.

    Args:
        root: the checkpoints directory (``OUTPUT_DIR/checkpoints``).
        keep_last: how many of the newest checkpoints :meth:`rotate` keeps; <= 0 keeps all.
    """

    def __init__(self, root: Path, keep_last: int):
        self.root = Path(root)
        self.keep_last = keep_last

    def _staging(self, step: int) -> Path:
        return self.root / f".step-{step}.tmp"

    def staging_dir(self, step: int) -> Path:
        """A fresh, empty ``root/.step-N.tmp`` (a stale one from a crash is removed)."""
        staging = self._staging(step)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        return staging

    def commit(self, step: int) -> Path:
        """Mark the staging directory complete and rename it to ``root/step-N``."""
        staging = self._staging(step)
        if not staging.is_dir():
            raise FileNotFoundError(f"no staging directory {staging}: call staging_dir first")
        # Data must be on disk before the marker and the rename that publish it; otherwise
        # a power cut could leave a "complete" checkpoint with empty files.
        for file in staging.rglob("*"):
            if file.is_file():
                _fsync_file(file)
        marker = staging / COMPLETE
        with marker.open("w", encoding="utf-8") as handle:
            handle.write(f"{step}\n")
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(staging)

        final = self.root / f"step-{step}"
        if final.exists():
            # os.replace cannot overwrite a non-empty directory: move the old one aside, put
            # the new one in place, then delete the old. A crash in between leaves the old
            # one in .step-N.old, which cleanup_staging() moves back.
            aside = self.root / f".step-{step}.old"
            if aside.exists():
                shutil.rmtree(aside)
            os.replace(final, aside)
            os.replace(staging, final)
            _fsync_dir(self.root)
            shutil.rmtree(aside)
        else:
            os.replace(staging, final)
            _fsync_dir(self.root)
        return final

    def all_steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        steps = []
        for entry in self.root.iterdir():
            match = _STEP_DIR.fullmatch(entry.name)
            if match and (entry / COMPLETE).is_file():
                steps.append(int(match.group(1)))
        return sorted(steps)

    def latest(self) -> Path | None:
        """The newest complete checkpoint directory, or ``None``."""
        steps = self.all_steps()
        return self.root / f"step-{steps[-1]}" if steps else None

    def rotate(self, protect: Collection[int] = ()) -> list[int]:
        """Delete all but the newest ``keep_last`` complete checkpoints; returns those deleted.

        Steps in ``protect`` (the best checkpoint, while early stopping may restore it) are
        never deleted and do not count towards ``keep_last``.
        """
        if self.keep_last <= 0:
            return []
        steps = self.all_steps()
        keep = set(steps[-self.keep_last :]) | set(protect)
        deleted = [step for step in steps if step not in keep]
        for step in deleted:
            shutil.rmtree(self.root / f"step-{step}")
        return deleted

    def cleanup_staging(self) -> None:
        """Remove leftovers of interrupted saves.

        ``.step-N.tmp`` directories are deleted. A ``.step-N.old`` (a crash during
        :meth:`commit` over an existing ``step-N``) is moved back if ``step-N`` is missing
        and deleted otherwise.
        """
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            match = _HIDDEN_DIR.fullmatch(entry.name)
            if not match or not entry.is_dir():
                continue
            final = self.root / f"step-{match.group(1)}"
            if match.group(2) == "old" and not final.exists() and (entry / COMPLETE).is_file():
                os.replace(entry, final)
            else:
                shutil.rmtree(entry)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes renames durable on POSIX; Windows cannot open directories.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
