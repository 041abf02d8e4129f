"""Which seqkit model types exist, and which ``transformers`` Auto classes load each of them.

Every seqkit model type is registered with ``AutoConfig`` and one or more Auto model classes
(``AutoModelForCausalLM``...) from the registered model builders
(:func:`seqkit.models.auto.auto_classes`). That registration is the single source of truth used
here: nothing lists the architectures a second time.
:func:`import_model_modules` makes sure the registration has happened, and imports every module
of :mod:`seqkit.models` and the model file of every registered model builder
(:data:`seqkit.parts.registry.MODEL_BUILDERS`), so an architecture that lands later is found
without touching this file; :func:`seqkit_config_classes` then reads back what was registered.

The other table here, :data:`STOCK_CONVERTERS`, names the modules that convert a seqkit model to
the stock ``transformers`` class of the same architecture and back (GPT ↔ ``GPT2LMHeadModel``,
BERT ↔ ``Bert*``, the open-model decoder ↔ ``LlamaForCausalLM``).
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from typing import Any

from transformers import PretrainedConfig
from transformers.models.auto import modeling_auto
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

STOCK_CONVERTERS: dict[str, str] = {
    # model_type (seqkit's or the stock one) -> module with the conversion in both directions.
    "seqkit-gpt": "seqkit.export.gpt",
    "gpt2": "seqkit.export.gpt",
    "seqkit-bert": "seqkit.export.bert",
    "bert": "seqkit.export.bert",
    "seqkit-decoder": "seqkit.export.llama",
    "llama": "seqkit.export.llama",
}
"""Model types that have a stock ``transformers`` counterpart, and the module converting them.

Each module defines ``SEQKIT_MODEL_TYPES`` and ``STOCK_MODEL_TYPES`` (the types on each side),
``to_transformers(source, folder)`` and ``to_native(source, folder)``; see
:mod:`seqkit.export.gpt`."""


def import_model_modules() -> None:
    """Register seqkit's model types with the Auto classes, and import every registered model
    builder's module and every :mod:`seqkit.models` module. A module that fails to import is
    skipped: one broken architecture must not make every other unexportable (its own tests
    report it)."""
    from seqkit.models.auto import register_auto_classes

    # Registers every module that imports, then raises the first failure: that family's own
    # tests report it; the others are registered.
    with contextlib.suppress(Exception):
        register_auto_classes()
    from seqkit.parts.registry import MODEL_BUILDERS

    names = [MODEL_BUILDERS.module_of(name) for name in MODEL_BUILDERS.names()]
    import seqkit.models

    names += [f"seqkit.models.{info.name}" for info in pkgutil.iter_modules(seqkit.models.__path__)]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # a broken module is that family's own (tested) problem
            continue
    from seqkit.parts.registry import MODEL_BUILDERS

    for name in MODEL_BUILDERS.names():  # each builder's model file (sibling packages too)
        try:
            MODEL_BUILDERS.get(name)
        except Exception:
            continue


def seqkit_config_classes() -> dict[str, type[PretrainedConfig]]:
    """``{model_type: config class}`` of every seqkit config registered with ``AutoConfig``.

    Call :func:`import_model_modules` first to see every family.
    """
    found: dict[str, type[PretrainedConfig]] = {}
    pending: list[type] = [PretrainedConfig]
    while pending:  # every subclass, at any depth
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        model_type = getattr(cls, "model_type", "")
        if (
            cls.__module__.startswith("seqkit.")
            and model_type
            and model_type in CONFIG_MAPPING
            and CONFIG_MAPPING[model_type] is cls
        ):
            found[model_type] = cls
    return dict(sorted(found.items()))


def auto_model_classes(config_class: type[PretrainedConfig]) -> list[tuple[type, type]]:
    """``[(AutoModelForX, model class), ...]`` for every Auto model class ``config_class`` is
    registered with, most specific first (``AutoModel`` last)."""
    pairs = []
    for name in dir(modeling_auto):
        auto_class = getattr(modeling_auto, name)
        mapping = getattr(auto_class, "_model_mapping", None)
        if not name.startswith("AutoModel") or mapping is None:
            continue
        try:
            model_class = mapping[config_class]
        except KeyError:
            continue
        # transformers falls back to matching configs by class *name*: a seqkit ResNetConfig
        # would find transformers' own ResNetModel. Only a registration for this very class
        # counts.
        if getattr(model_class, "config_class", None) is config_class:
            pairs.append((auto_class, model_class))
    pairs.sort(key=lambda pair: (pair[0].__name__ == "AutoModel", pair[0].__name__))
    return pairs


# ----------------------------------------------------------------------------- tiny examples

EXAMPLE_CONFIGS: dict[str, dict[str, Any]] = {
    "seqkit-gpt": {"vocab_size": 19, "n_positions": 16, "n_embd": 16, "n_layer": 2, "n_head": 2},
}
"""Small, valid constructor arguments per model type, for tests that build one model of every
type. A type missing here gets :func:`example_config`'s generic shrinking."""

# Generic size fields and the small value each is shrunk to when a type has no entry above.
_SMALL_SIZES: dict[str, int] = {
    "vocab_size": 19,
    "n_positions": 16,
    "max_position_embeddings": 16,
    "n_embd": 16,
    "d_model": 16,
    "hidden_size": 16,
    "embedding_dim": 16,
    "embed_dim": 16,
    "intermediate_size": 32,
    "n_inner": 32,
    "d_ff": 32,
    "n_layer": 1,
    "num_layers": 1,
    "num_hidden_layers": 1,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
    "n_head": 2,
    "num_heads": 2,
    "num_attention_heads": 2,
}


def example_config(config_class: type[PretrainedConfig]) -> PretrainedConfig:
    """A small config of ``config_class``: :data:`EXAMPLE_CONFIGS`, else the defaults with every
    generic size field shrunk, else (if shrinking breaks a constraint) the plain defaults."""
    model_type = config_class.model_type
    if model_type in EXAMPLE_CONFIGS:
        return config_class(**EXAMPLE_CONFIGS[model_type])
    defaults = config_class()
    small = {
        name: value
        for name, value in _SMALL_SIZES.items()
        if isinstance(getattr(defaults, name, None), int) and name in defaults.to_dict()
    }
    try:
        return config_class(**small)
    except (ValueError, TypeError):
        return defaults
