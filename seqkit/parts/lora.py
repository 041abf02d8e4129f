"""Low-rank adaptation (LoRA) of a model a recipe trains: ``model.lora`` in any recipe.

LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022) freezes the
pretrained weights and learns, for chosen linear layers, a low-rank update ``ΔW = (α/r)·B·A``
(``A``: r × in, ``B``: out × r, ``B`` starting at zero so training starts from the pretrained
function). Only ``A`` and ``B`` train — and a classifier's new head, which has no pretrained
weights to keep — so the optimizer holds state for a small fraction of the parameters.

The adapters are Hugging Face ``peft``'s (an optional extra: ``pip install 'seqkit[lora]'``),
injected into seqkit's own model object: the Trainer, checkpoints and resume see one module
whose trainable parameters are the adapters. At the end of a run the updates are merged into
the weights (``merge_and_unload``), so ``final/`` is a plain seqkit model that exports,
generates, evaluates and loads with the Auto classes as any other; the adapter alone is saved
in ``final/adapter/`` (peft's ``save_pretrained``) to share it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from seqkit.checks import check_ranges, count, positive, probability, show
from seqkit.errors import UserError, missing_extra

ADAPTER_FOLDER = "adapter"
"""The folder inside a run's ``final/`` that holds the adapter alone (peft's format)."""

DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    # GPT-2's fused query/key/value projection and the attention output ("attn.c_proj": the
    # MLP has a c_proj too, which LoRA's paper leaves alone, section 7.1).
    "gpt": ("c_attn", "attn.c_proj"),
    # seqkit.models.attention.MultiHeadAttention's four projections (BERT, the decoder).
    "bert": ("query", "key", "value", "out"),
    "decoder": ("query", "key", "value", "out"),
}
"""The layers adapted when ``model.lora.target_modules`` is left out, by architecture: every
attention projection (Hu et al. find adapting all of them the best use of a fixed budget)."""

NEW_HEADS: dict[str, tuple[str, ...]] = {"classification": ("classifier",)}
"""Modules trained in full alongside the adapters, by task: a head made for the run's labels
has no pretrained weights for LoRA to adapt (peft's ``modules_to_save``)."""

ADAPTABLE = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d)
"""Layer types peft's LoRA adapts and seqkit's models use."""


@dataclass
class LoraSettings:
    """``model.lora``: adapt the model with LoRA instead of training all its weights."""

    r: int = 8
    """Rank of each update (the LoRA paper's r; 4-16 is usual)."""
    alpha: float = 16.0
    """Scale: the update is multiplied by alpha / r (peft's lora_alpha)."""
    dropout: float = 0.0
    """Dropout on the adapters' input while training (peft's lora_dropout)."""
    target_modules: list[str] | None = None
    """Layers to adapt, by name or dotted name suffix (``c_attn``, ``attn.c_proj``); default:
    the architecture's attention projections (:data:`DEFAULT_TARGETS`)."""

    def __post_init__(self) -> None:
        check_ranges(
            "model.lora",
            self,
            {"r": count(1, 65536), "alpha": positive(), "dropout": probability()},
        )
        targets = self.target_modules
        if targets is not None and (not targets or not all(targets)):
            raise UserError(
                f"model.lora.target_modules must name at least one layer, got {show(targets)}"
            )


def require_peft() -> Any:
    """The ``peft`` package; a one-line UserError naming the extra when it is missing."""
    try:
        import peft
    except ModuleNotFoundError as error:
        advice = missing_extra(error)
        if advice is None:  # peft itself is there but one of its own imports is not
            raise
        raise UserError(f"model.lora: {advice}") from None
    return peft


def _matches(name: str, target: str) -> bool:
    """peft's rule for a target given as a name: the module's dotted name or its suffix."""
    return name == target or name.endswith("." + target)


def _targets(model: nn.Module, settings: LoraSettings, architecture: str) -> list[str]:
    """The target names, each checked to name at least one adaptable layer of ``model``."""
    targets = settings.target_modules
    if targets is None:
        if architecture not in DEFAULT_TARGETS:
            raise UserError(
                f"model.lora.target_modules: architecture {architecture} has no default; name "
                "the Linear layers to adapt"
            )
        targets = list(DEFAULT_TARGETS[architecture])
    modules = dict(model.named_modules())
    layers = sorted(
        {name.rsplit(".", 1)[-1] for name, m in modules.items() if isinstance(m, ADAPTABLE)}
    )
    for target in targets:
        found = [m for name, m in modules.items() if _matches(name, target)]
        if not found:
            raise UserError(
                f"model.lora.target_modules: {target!r} is no layer of the {architecture} "
                f"model; its adaptable layers: {', '.join(layers)}"
            )
        wrong = next((m for m in found if not isinstance(m, ADAPTABLE)), None)
        if wrong is not None:
            raise UserError(
                f"model.lora.target_modules: {target!r} is a {type(wrong).__name__}; LoRA "
                "adapts Linear, Embedding and convolution layers"
            )
    return list(targets)


def apply_lora(model: nn.Module, settings: LoraSettings, architecture: str, task: str) -> Any:
    """Inject LoRA adapters into ``model`` (in place) and freeze everything else but the
    task's new head; returns the ``PeftModel`` that wraps it (for :func:`save_adapter` and
    :func:`merge`). ``model`` itself stays the object to train: its forward, config and
    ``generate`` are unchanged, its trainable parameters are the adapters (and the head)."""
    targets = _targets(model, settings, architecture)
    peft = require_peft()
    modules = dict(model.named_modules())
    heads = [h for h in NEW_HEADS.get(task, ()) if any(_matches(n, h) for n in modules)]
    config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        modules_to_save=heads or None,
        base_model_name_or_path=getattr(model.config, "_name_or_path", None) or None,
    )
    # peft marks everything but the adapters (and modules_to_save) as not requiring grad,
    # so the Trainer's parameter groups (built from trainable parameters) hold only these.
    with warnings.catch_warnings():
        # peft asks the model through a property transformers 5 deprecated; not the user's to fix
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        return peft.get_peft_model(model, config)


def trainable_summary(model: nn.Module) -> str:
    """``"N of M (p%)"``: the parameters that train against all of them."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return f"{trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)"


def save_adapter(adapted: Any, folder: Path) -> None:
    """Write the adapter alone (peft's ``adapter_config.json`` + ``adapter_model.safetensors``)
    into ``folder``, loadable with ``PeftModel.from_pretrained`` onto the base model."""
    adapted.save_pretrained(folder)


def merge(adapted: Any) -> nn.Module:
    """The model with each update added to its weights and the adapter layers removed: the
    plain seqkit model (the same object that was trained)."""
    model = adapted.merge_and_unload()
    # peft leaves its config dict on the model; a plain model must not carry it (transformers
    # would take it for a model with adapters loaded).
    for attribute in ("peft_config", "_hf_peft_config_loaded"):
        if attribute in vars(model):
            delattr(model, attribute)
    return model
