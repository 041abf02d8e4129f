"""The two shapes an export can take, and what every writer of them shares.

* ``native``: the seqkit classes themselves, in the Hub format. ``AutoConfig`` and the Auto
  model classes load the folder after ``import seqkit`` (:mod:`seqkit.models.auto`). Any
  seqkit model exports this way; the folder is copied as training wrote it, byte for byte,
  and then loaded through the Auto classes to prove that it works.
* ``transformers``: the stock ``transformers`` class of the same architecture (GPT →
  ``GPT2LMHeadModel``), loadable where seqkit is not installed. Only families with a converter
  in :data:`seqkit.export.registry.STOCK_CONVERTERS` have it.

A writer fills a staging folder and returns a :class:`WrittenModel`: what the model card says
about the result and the code that loads it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqkit.errors import UserError
from seqkit.export.model_card import LOSS_PLOT_NAME
from seqkit.export.source import ExportSource
from seqkit.folders import load_weights, loading

FORMATS = ("native", "transformers")

PATH_PLACEHOLDER = "<PATH>"
"""Stands for the folder or Hub repository in :attr:`WrittenModel.how_to_load`; see
:func:`fill_path`."""

# Written by the exporter itself, never copied from the source folder.
_CARD_FILES = ("README.md", LOSS_PLOT_NAME)
# The model itself; a converter writes its own.
_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json")

# Config fields that say how big a model is, in the order a reader wants them.
_SIZE_FIELDS = (
    "n_layer",
    "num_hidden_layers",
    "num_layers",
    "num_encoder_layers",
    "num_decoder_layers",
    "n_head",
    "num_attention_heads",
    "num_heads",
    "n_embd",
    "hidden_size",
    "d_model",
    "embedding_dim",
    "hidden_dim",
    "n_inner",
    "intermediate_size",
    "d_ff",
    "vocab_size",
    "n_positions",
    "max_position_embeddings",
)

# The Hub's pipeline tag for each kind of Auto model class.
_PIPELINE_TAGS = {
    "AutoModelForCausalLM": "text-generation",
    "AutoModelForMaskedLM": "fill-mask",
    "AutoModelForSequenceClassification": "text-classification",
    "AutoModelForTokenClassification": "token-classification",
    "AutoModelForSeq2SeqLM": "text2text-generation",
    "AutoModelForImageClassification": "image-classification",
}


@dataclass
class WrittenModel:
    """What a writer put in the folder, for the model card and the command's summary."""

    architecture: str
    """The model class a user gets, e.g. ``GPT2LMHeadModel``."""
    num_parameters: int
    how_to_load: str
    """Python code that loads the folder; :data:`PATH_PLACEHOLDER` stands for its location."""
    library_name: str
    """``transformers`` for stock classes, ``seqkit`` for seqkit's own."""
    size: dict[str, Any] = field(default_factory=dict)
    pipeline_tag: str | None = None
    tags: list[str] = field(default_factory=list)


def fill_path(code: str, location: str) -> str:
    """``code`` with :data:`PATH_PLACEHOLDER` replaced by ``location``: as a Python string
    literal where the placeholder is quoted, as it is elsewhere (a shell command in a comment).
    One pass, so a location that itself contains the placeholder is not replaced twice."""
    quoted = f'"{PATH_PLACEHOLDER}"'
    pattern = re.compile(f"{re.escape(quoted)}|{re.escape(PATH_PLACEHOLDER)}")
    return pattern.sub(
        lambda match: json.dumps(location) if match.group() == quoted else location, code
    )


def model_size(config: dict[str, Any]) -> dict[str, Any]:
    """The size hyper-parameters present in a ``config.json``."""
    return {
        name: config[name]
        for name in _SIZE_FIELDS
        if isinstance(config.get(name), int) and not isinstance(config.get(name), bool)
    }


def loading_code(
    auto_name: str, model: Any, *, native: bool, more_imports: tuple[str, ...] = ()
) -> list[str]:
    """The first lines of a :attr:`WrittenModel.how_to_load`: the imports (``import seqkit``
    first for seqkit's own classes, which registers them with the Auto classes), the path, and
    ``model`` loaded through the Auto class ``auto_name``."""
    names = ", ".join(
        ("AutoConfig", auto_name, *more_imports) if native else (auto_name, *more_imports)
    )
    lines = ["import seqkit  # registers every seqkit model type with the Auto classes"] * native
    lines += [f"from transformers import {names}", "", f'path = "{PATH_PLACEHOLDER}"']
    if native:
        lines.append("config = AutoConfig.from_pretrained(path)")
    kind = f"seqkit {type(model).__name__}" if native else type(model).__name__
    lines.append(f"model = {auto_name}.from_pretrained(path)  # a {kind}")
    return lines


def written_model(
    model: Any,
    lines: list[str],
    *,
    native: bool,
    pipeline_tag: str | None,
    tags: list[str] | None = None,
) -> WrittenModel:
    """The :class:`WrittenModel` of ``model`` (as loaded from, or saved to, the folder), with
    ``lines`` of code that load it."""
    return WrittenModel(
        architecture=type(model).__name__,
        num_parameters=model.num_parameters(),
        how_to_load="\n".join(lines) + "\n",
        library_name="seqkit" if native else "transformers",
        size=model_size(model.config.to_dict()),
        pipeline_tag=pipeline_tag,
        tags=list(tags or []),
    )


def refuse_unsupported_options(
    config: Any,
    stock_name: str,
    ours: str,
    fixed: dict[str, tuple[Any, str]],
    choices: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Refuse, in one line, a stock ``config`` that seqkit's model (``ours``) cannot reproduce
    exactly: ``fixed`` maps an option to the only value seqkit implements and what the option
    does; ``choices`` maps an option to the values seqkit implements (activations)."""
    for name, (supported, meaning) in fixed.items():
        value = getattr(config, name, supported)
        if value != supported:
            raise UserError(
                f"this {stock_name} model sets {name}={value!r} ({meaning}); {ours} supports "
                f"only {name}={supported!r}, so it cannot be imported"
            )
    for name, valid in (choices or {}).items():
        value = getattr(config, name)
        if value not in valid:
            raise UserError(
                f"this {stock_name} model uses {name}={value!r}; {ours} supports "
                f"{', '.join(valid)}, so it cannot be imported"
            )


def pipeline_tag_for(auto_class_name: str) -> str | None:
    return _PIPELINE_TAGS.get(auto_class_name)


def copy_folder_files(source: Path, folder: Path, *, skip_model: bool) -> list[str]:
    """Copy the files of ``source`` into ``folder``, but never the card (the exporter writes
    it) and, with ``skip_model``, not the config and weights (a converter writes its own) nor
    a LoRA run's adapter (its layer names are seqkit's, not the converted model's). Returns the
    names copied. Sub-folders are copied whole."""
    from seqkit.parts.lora import ADAPTER_FOLDER

    copied = []
    for path in sorted(source.iterdir()):
        name = path.name
        if name in _CARD_FILES or name.startswith("."):
            continue
        if skip_model and (
            name in _MODEL_FILES or name.endswith(".safetensors") or name == ADAPTER_FOLDER
        ):
            continue
        if path.is_dir():
            shutil.copytree(path, folder / name, symlinks=False)
        else:
            shutil.copyfile(path, folder / name)
        copied.append(name)
    return copied


def has_auto_tokenizer(folder: Path) -> bool:
    """Whether ``folder`` holds a tokenizer that ``AutoTokenizer`` loads on its own."""
    return (folder / "tokenizer_config.json").is_file() and (
        (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file()
    )


# ----------------------------------------------------------------------------- native


def seqkit_config_class(source: ExportSource) -> type:
    """The seqkit config class of ``source``'s model type; refuses any other library's type."""
    from seqkit.export.registry import (
        STOCK_CONVERTERS,
        import_model_modules,
        seqkit_config_classes,
    )

    import_model_modules()
    classes = seqkit_config_classes()
    if source.model_type not in classes:
        known = [*classes, *(t for t in STOCK_CONVERTERS if t not in classes)]
        raise UserError(
            f"{source.folder} holds a model of type {source.model_type!r}, which seqkit can "
            f"neither export nor import (it knows {', '.join(known)})"
        )
    return classes[source.model_type]


def write_native(source: ExportSource, folder: Path) -> WrittenModel:
    """Copy a seqkit model folder as it is, and load it back through the Auto classes."""
    from seqkit.export.registry import auto_model_classes

    config_class = seqkit_config_class(source)
    model_type = source.model_type
    pairs = auto_model_classes(config_class)
    if not pairs:
        raise UserError(f"model type {model_type!r} is not registered with any Auto model class")
    # The folder's config names the class that saved it; several may share one config
    # (a masked LM and a sequence classifier).
    saved_as = source.config.get("architectures")
    saved_as = saved_as if isinstance(saved_as, list) else []
    auto_class, model_class = next(
        (pair for pair in pairs if pair[1].__name__ in saved_as), pairs[0]
    )

    # Every weight of the source must fit its config before anything is copied: a copy of
    # another model's weights would load through the Auto class with random ones.
    load_weights(model_class, source.folder)
    copy_folder_files(source.folder, folder, skip_model=False)
    with loading(f"{source.folder} as {model_class.__name__}"):
        model = auto_class.from_pretrained(folder, use_safetensors=True)

    tokenizer = has_auto_tokenizer(folder)
    lines = loading_code(
        auto_class.__name__, model, native=True, more_imports=("AutoTokenizer",) * tokenizer
    )
    if tokenizer:
        lines.append("tokenizer = AutoTokenizer.from_pretrained(path)")
    return written_model(
        model, lines, native=True, pipeline_tag=pipeline_tag_for(auto_class.__name__)
    )


# ----------------------------------------------------------------------------- causal LMs


def copy_generation_config(source: Path, folder: Path) -> None:
    """Keep the trained model's generation defaults (sampling temperature...), if it had any."""
    from transformers import GenerationConfig

    if (source / "generation_config.json").is_file():
        with loading(str(source / "generation_config.json")):
            generation_config = GenerationConfig.from_pretrained(source)
        generation_config.save_pretrained(folder)


def sample_prompt(source: ExportSource) -> str:
    """A prompt the model's vocabulary can spell: the recipe's sample prompt."""
    sample = (source.recipe or {}).get("sample")
    prompt = sample.get("prompt") if isinstance(sample, dict) else None
    return prompt if isinstance(prompt, str) and prompt else "\n"


def write_stock_causal_lm(
    source: ExportSource, folder: Path, stock: Any, *, context: int, tags: list[str]
) -> WrittenModel:
    """Save ``stock`` (a ``transformers`` causal LM converted from ``source``) into ``folder``
    with the source's tokenizer and generation defaults, and say how to load it without
    seqkit: ``AutoModelForCausalLM``, and a ``text-generation`` pipeline where the folder has
    a tokenizer ``AutoTokenizer`` reads."""
    stock.save_pretrained(folder)
    copy_folder_files(source.folder, folder, skip_model=True)
    copy_generation_config(source.folder, folder)
    tokenizer = has_auto_tokenizer(folder)
    prompt = sample_prompt(source)
    # The context holds the prompt and what follows; a prompt never has more tokens than
    # characters, so this many new tokens always fit.
    new_tokens = max(1, min(50, context - len(prompt)))
    lines = loading_code(
        "AutoModelForCausalLM",
        stock,
        native=False,
        more_imports=("AutoTokenizer", "pipeline") if tokenizer else (),
    )
    if tokenizer:
        lines += [
            "tokenizer = AutoTokenizer.from_pretrained(path)",
            'generator = pipeline("text-generation", model=path)',
            f"print(generator({prompt!r}, max_new_tokens={new_tokens})[0]['generated_text'])",
        ]
    return written_model(stock, lines, native=False, pipeline_tag="text-generation", tags=tags)


def write_native_causal_lm(
    source: ExportSource, folder: Path, model: Any, *, tags: list[str]
) -> WrittenModel:
    """Save ``model`` (seqkit's class, converted from ``source`` where it was stock) into
    ``folder``, and say how to load it: the Auto classes after ``import seqkit``, and a
    ``text-generation`` pipeline where the folder has a tokenizer ``AutoTokenizer`` reads."""
    model.save_pretrained(folder)
    copy_folder_files(source.folder, folder, skip_model=True)
    copy_generation_config(source.folder, folder)
    tokenizer = has_auto_tokenizer(folder)
    prompt = sample_prompt(source)
    # As for the stock classes: a prompt never has more tokens than characters.
    new_tokens = max(1, min(50, model.config.n_positions - len(prompt)))
    lines = loading_code(
        "AutoModelForCausalLM", model, native=True, more_imports=("pipeline",) * tokenizer
    )
    if tokenizer:
        lines += [
            'generator = pipeline("text-generation", model=path)',
            f"print(generator({prompt!r}, max_new_tokens={new_tokens})[0]['generated_text'])",
        ]
    lines.append(
        f"# or, from the command line: seqkit generate {PATH_PLACEHOLDER} --prompt "
        f"{json.dumps(prompt)}"
    )
    return written_model(model, lines, native=True, pipeline_tag="text-generation", tags=tags)
