"""Hub folders on disk and on the Hub: safe writing, weight checks and upload.

An export is written into a hidden temporary folder beside ``OUT_DIR`` and renamed into place
only once complete, so an interrupted or failed export leaves nothing half-written, and a user's
folder is never replaced unless ``--overwrite`` says so *and* the folder is itself a seqkit
export. Uploading uses ``huggingface_hub``; it happens after the folder is written, so a failed
upload (offline, no token) still leaves the folder to upload later.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open

from seqkit.errors import UserError
from seqkit.export.model_card import read_model_card
from seqkit.outputs import check_creatable

WEIGHT_SUFFIX = ".safetensors"


# ----------------------------------------------------------------------------- OUT_DIR


def looks_like_export(folder: Path) -> bool:
    """Whether ``folder`` is a Hub folder that seqkit wrote: a ``config.json`` and a model card
    tagged ``seqkit``."""
    if not (folder / "config.json").is_file():
        return False
    metadata, _, _ = read_model_card(folder / "README.md")
    tags = metadata.get("tags")
    return isinstance(tags, list) and "seqkit" in tags


def check_out_dir(
    out_dir: Path,
    *,
    overwrite: bool,
    model_folder: Path | None = None,
    run_dir: Path | None = None,
) -> None:
    """Refuse an ``OUT_DIR`` that would destroy something: a file, a non-empty folder (unless
    ``overwrite`` and it is an earlier export), the model folder being exported or a folder
    inside it, or a folder holding the model or its run."""
    resolved = out_dir.resolve()
    # OUT_DIR may sit inside the run (RUN/hub), but never inside the model folder, and never
    # be either folder or one that holds them.
    for folder, may_hold_out_dir in ((model_folder, False), (run_dir, True)):
        if folder is None:
            continue
        folder = folder.resolve()
        inside = folder in resolved.parents
        if resolved == folder or resolved in folder.parents or (inside and not may_hold_out_dir):
            raise UserError(
                f"OUT_DIR {out_dir} overlaps the model being exported ({folder}); choose a "
                "folder outside it"
            )
    if not out_dir.exists():
        if out_dir.is_symlink():
            raise UserError(f"OUT_DIR {out_dir} is a broken symbolic link")
        check_creatable(out_dir, "OUT_DIR")
        return
    if not out_dir.is_dir():
        raise UserError(f"OUT_DIR {out_dir} exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UserError(
            f"OUT_DIR {out_dir} already exists and is not empty; pass --overwrite to replace "
            "an earlier export, or choose another folder"
        )
    if not looks_like_export(out_dir):
        raise UserError(
            f"OUT_DIR {out_dir} is not a seqkit export (no config.json and seqkit model card); "
            "refusing to replace it even with --overwrite"
        )


@contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out_dir``; on success it becomes ``out_dir``.

    On an exception the temporary folder is removed and ``out_dir`` is untouched. An existing
    ``out_dir`` (already approved by :func:`check_out_dir`) is moved aside, the new folder moved
    in, and only then the old one deleted: at every moment one complete folder is in place.
    """
    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".export", dir=parent))
    try:
        yield staging
        # mkdtemp makes a 0700 folder; give the export the permissions of any new folder.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        if out_dir.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=parent))
            os.replace(out_dir, aside / "previous")
            os.replace(staging, out_dir)
            shutil.rmtree(aside)
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------- weights


def check_finite_weights(folder: Path) -> int:
    """Refuse weights with a NaN or an infinity; return how many weight files were checked.

    Reads the safetensors files tensor by tensor (never a pickle), so a large model is not held
    in memory twice.
    """
    files = sorted(folder.glob(f"*{WEIGHT_SUFFIX}"))
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as weights:
                for name in weights.keys():  # noqa: SIM118 - safe_open has no __iter__
                    tensor = weights.get_tensor(name)
                    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                        raise UserError(
                            f"{path} holds non-finite values (NaN or inf) in {name!r}; refusing "
                            "to export a diverged model (export an earlier checkpoint instead)"
                        )
        except SafetensorError as error:
            raise UserError(f"{path} is not a valid safetensors file: {error}") from None
    return len(files)


# ----------------------------------------------------------------------------- the Hub


def push_folder(folder: Path, repo_id: str, *, private: bool) -> str:
    """Upload ``folder`` to the Hub model repository ``repo_id`` (created if needed); return its
    URL. Any failure becomes one line that says the folder is safe on disk."""
    from huggingface_hub import HfApi, constants, get_token

    def failed(reason: str) -> UserError:
        return UserError(
            f"wrote {folder}, but could not push it to the Hub repository {repo_id}: {reason}; "
            f"upload it later with: hf upload {repo_id} {folder}"
        )

    if constants.HF_HUB_OFFLINE:
        raise failed("offline mode is on (HF_HUB_OFFLINE is set)")
    if get_token() is None:
        raise failed("no Hub token (run `hf auth login` or set HF_TOKEN)")
    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message="Upload model exported by seqkit",
        )
    except Exception as error:  # network, authentication and Hub errors alike: one line
        reason = " ".join(str(error).split()) or type(error).__name__
        raise failed(reason) from None
    return str(url)
