"""Where a recipe's ``model.init_from`` points: a folder, or a model on the Hugging Face Hub.

``init_from`` takes what ``transformers``' ``from_pretrained`` takes: a local folder (a seqkit
run or its ``final/``, or a stock ``transformers`` folder) or a Hub name
(``openai-community/gpt2``).
A Hub name is fetched by ``huggingface_hub.snapshot_download`` into the Hub cache, so the cache,
``HF_HOME``/``HF_HUB_CACHE``, ``HF_HUB_OFFLINE=1`` and a token behave as they do for
``transformers``; only the files a model folder needs are fetched (config, safetensors weights,
tokenizer), never pickles.

A stock folder (a model type one of the builders lists in its ``stock`` hook: ``gpt2`` for
``gpt``, ``llama`` for ``decoder``, ``bert`` for ``bert``) is converted on load, and its config
defines the network, as with ``from_pretrained`` and nanoGPT's ``init_from='gpt2'``: the
recipe's sizes describe a model trained from scratch, and those it sets to other values are
ignored with a note that names them (:func:`note_ignored_settings`). The recipe's ``dropout``,
when it sets one, applies (:func:`with_recipe_dropout`): it is how the model trains, not what it
computes — nanoGPT's one override of a pretrained GPT-2.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from seqkit.errors import UserError

logger = logging.getLogger(__name__)

MODEL_FILES = [
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
]
"""What a Hub model folder needs here: weights only as safetensors (never pickles), and the
fast tokenizer's files."""


def resolve_init_from(value: str | Path) -> Path:
    """The folder ``model.init_from`` names: ``value`` itself when it is a folder (its
    ``final/`` when it is a run directory), else the
    cached snapshot of the Hub model of that name (downloaded first when the Hub is reachable
    and ``HF_HUB_OFFLINE`` is not set). A name that is neither is a one-line UserError."""
    path = Path(value).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and (path / "final" / "config.json").is_file():
            return path / "final"  # a run directory: its trained model
        return path
    name = str(value)
    if not _looks_like_hub_name(name):
        raise UserError(f"model.init_from: {name} is neither a folder nor a Hub model name")
    return hub_snapshot(name)


def _looks_like_hub_name(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return False  # a path, spelled as one
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def hub_snapshot(name: str) -> Path:
    """The folder of Hub model ``name`` in the Hub cache (see :func:`resolve_init_from`)."""
    from huggingface_hub import constants, snapshot_download

    from seqkit.data.corpora import hub_reachable
    from seqkit.data.hub import quiet_hub_logs

    offline = bool(constants.HF_HUB_OFFLINE)
    cached_only = offline or not hub_reachable()
    try:
        with quiet_hub_logs():
            folder = snapshot_download(
                name, allow_patterns=MODEL_FILES, local_files_only=cached_only
            )
    except Exception as error:  # not cached, no such repository, gated, no permission...
        raise UserError(_why_not(name, error, offline, cached_only)) from None
    return Path(folder)


def _why_not(name: str, error: BaseException, offline: bool, cached_only: bool) -> str:
    kind = type(error).__name__
    where = f"model.init_from: {name} is not a folder, and the Hub model {name!r}"
    if cached_only:
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub is not reachable"
        return f"{where} is not in the Hub cache ({why}); download it once online, or use a folder"
    if kind in ("RepositoryNotFoundError", "GatedRepoError"):
        return f"{where} does not exist or needs access (log in with `hf auth login`)"
    if kind == "RevisionNotFoundError":
        return f"{where} has no main revision"
    first = (str(error).strip().splitlines() or [kind])[0]
    return f"{where} did not download ({kind}: {first[:200]})"


# ----------------------------------------------------------------------------- stock folders


def stock_model_type(folder: Path, builder: Any) -> str | None:
    """The folder's model type when it is a stock ``transformers`` folder that ``builder``
    converts on load (its ``stock`` hook), else None."""
    from seqkit.folders import read_config

    if not (folder / "config.json").is_file():
        return None
    model_type = read_config(folder)["model_type"]
    return model_type if model_type in builder.stock else None


def load_stock(builder: Any, folder: Path) -> Any:
    """The seqkit model converted from the stock folder, by the builder's ``stock`` loader."""
    import importlib

    from seqkit.folders import read_config

    module_name, function = builder.stock[read_config(folder)["model_type"]].split(":")
    model, _ = getattr(importlib.import_module(module_name), function)(folder)
    return model


def note_ignored_settings(
    recipe_model: dict[str, Any], builder: Any, config: Any, name: str
) -> None:
    """Log the recipe's ``model`` sizes (those ``recipe_model``, the recipe's own mapping, sets)
    that differ from the stock model's ``config``: the folder's win (see the module docstring).
    ``builder.shape_fields`` maps each config field to its recipe field."""
    ignored = [
        f"model.{field} {recipe_model[field]!r} (the model's: {getattr(config, key)!r})"
        for key, field in builder.shape_fields.items()
        if field in recipe_model
        and recipe_model[field] is not None
        and getattr(config, key, None) != recipe_model[field]
    ]
    if ignored:
        logger.warning(
            "note: model.init_from %s sets the model's sizes; the recipe's %s are ignored",
            name,
            ", ".join(ignored),
        )


DROPOUT_FIELDS = (
    "dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
)
"""The config fields that the builders set from a recipe's ``model.dropout`` (GPT's three,
the decoder's one, BERT's two)."""


def with_recipe_dropout(model: Any, recipe_model: dict[str, Any]) -> Any:
    """``model`` with the dropout rate the recipe's ``model`` mapping sets, if it sets one that
    differs from the model's config: rebuilt from its config with that rate (the modules take
    it when built) and given the same weights."""
    rate = recipe_model.get("dropout")
    fields = [name for name in DROPOUT_FIELDS if hasattr(model.config, name)]
    if rate is None or all(getattr(model.config, name) == rate for name in fields):
        return model
    config = copy.deepcopy(model.config)
    for name in fields:
        setattr(config, name, rate)
    rebuilt = type(model)(config)
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt
