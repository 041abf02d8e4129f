"""Folders a user hands to seqkit: run directories and model (Hub) folders.

``RUN_OR_MODEL_DIR`` arguments are resolved here, and every model folder is checked before
anything in it is loaded. DESIGN.md: "Weights are safetensors only; nothing is ever unpickled
from a user's file." ``transformers`` would fall back to ``pytorch_model.bin`` (a pickle) when a
folder has no safetensors weights, so such a folder is refused here, before ``from_pretrained``
ever sees it; loaders also pass ``use_safetensors=True``.
"""

from __future__ import annotations

from pathlib import Path

from seqkit.errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
"""File types that hold Python pickles in the PyTorch world; seqkit never opens them."""


def resolve_model_dir(path_text: str | Path) -> Path:
    """A run directory (its ``final/``) or a model folder, checked by :func:`check_model_folder`."""
    path = Path(path_text)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if (path / "config.json").is_file():
        return check_model_folder(path)
    if (path / "final" / "config.json").is_file():
        return check_model_folder(path / "final")
    if (path / "checkpoints").is_dir():
        raise UserError(f"run {path} has no final/ model yet (still training, or interrupted?)")
    raise UserError(f"{path} is neither a run directory nor a model folder (no config.json)")


def check_model_folder(folder: Path) -> Path:
    """Refuse a model folder whose weights are not in safetensors (a pickle never loads)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a model folder (no config.json)")
    if not any(folder.glob("*.safetensors")):
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        found = f" (found {', '.join(pickles)}, which seqkit never unpickles)" if pickles else ""
        raise UserError(
            f"{folder} has no safetensors weights{found}; seqkit loads weights only from "
            "safetensors — convert them with safetensors where you trust the file"
        )
    return folder
