"""BERT ↔ ``transformers.BertForMaskedLM`` / ``BertForSequenceClassification`` / ``BertModel``.

seqkit's BERT (:mod:`seqkit.models.bert`, after Devlin et al. 2019) keeps ``transformers``'
parameter names except inside the encoder layers, where a few suffixes differ
(:data:`seqkit.models.bert.TRANSFORMERS_RENAMES`); its config fields are those of
``transformers.BertConfig``. So the export is a renaming, and the masked-LM decoder, which
both tie to the word embeddings, is written out for ``transformers`` and dropped on the way
back.

The tokenizer needs one addition. seqkit frames every input as ``[CLS] text [SEP]`` itself (the
``labelled-text`` and ``masked-text`` data modules); a stock tokenizer must do it when called,
or ``pipeline("fill-mask")`` would feed the model unframed text. The exported ``tokenizer.json``
therefore gets a post-processor that adds the two tokens (and ``[SEP]``-separated pairs with
segment ids 1), the template ``transformers``' own BERT tokenizers use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import transformers
from transformers import PreTrainedModel

from seqkit.errors import UserError
from seqkit.export.formats import (
    WrittenModel,
    copy_folder_files,
    has_auto_tokenizer,
    loading_code,
    refuse_unsupported_options,
    written_model,
)
from seqkit.export.source import ExportSource
from seqkit.folders import load_weights, loading
from seqkit.models import bert as seqkit_bert

SEQKIT_MODEL_TYPES = (seqkit_bert.BertConfig.model_type,)
STOCK_MODEL_TYPES = ("bert",)

# seqkit class name -> (stock class name, Auto class name, pipeline task)
_HEADS = {
    "BertForMaskedLM": ("BertForMaskedLM", "AutoModelForMaskedLM", "fill-mask"),
    "BertForSequenceClassification": (
        "BertForSequenceClassification",
        "AutoModelForSequenceClassification",
        "text-classification",
    ),
    "BertModel": ("BertModel", "AutoModel", "feature-extraction"),
}

# Config fields the two BertConfigs share, copied one to one.
_SHARED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "classifier_dropout",
    "pad_token_id",
    "id2label",
    "label2id",
    "problem_type",
)

# Stock BERT options, the only value seqkit's BERT implements, and what the option does.
_FIXED_BERT_OPTIONS = {
    "is_decoder": (False, "causal (decoder) self-attention"),
    "add_cross_attention": (False, "cross-attention layers"),
    "position_embedding_type": ("absolute", "relative position embeddings"),
}

# Decoder weight and bias of the masked-LM head: tied to the word embeddings and the head's bias.
_TIED_DECODER = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


# ----------------------------------------------------------------------------- conversion


def _head_of(model: PreTrainedModel) -> str:
    name = type(model).__name__
    if name not in _HEADS:
        raise UserError(
            f"{name} has no stock transformers counterpart (known: {', '.join(_HEADS)})"
        )
    return name


def to_stock(model: PreTrainedModel) -> PreTrainedModel:
    """The stock ``transformers`` BERT (same head) computing the same function as ``model``."""
    stock_name = _HEADS[_head_of(model)][0]
    values = {name: getattr(model.config, name) for name in _SHARED_FIELDS}
    config = transformers.BertConfig(**values)
    stock = getattr(transformers, stock_name)(config)
    state = seqkit_bert.to_transformers_state_dict(model.state_dict())
    stock.load_state_dict(state, strict=True)
    return stock.eval()


def from_stock(stock: PreTrainedModel) -> PreTrainedModel:
    """seqkit's BERT (same head) computing the same function as the stock model ``stock``."""
    check_bert_config(stock.config)
    name = _head_of(stock)
    values = {field: getattr(stock.config, field, None) for field in _SHARED_FIELDS}
    config = seqkit_bert.BertConfig(**{k: v for k, v in values.items() if v is not None})
    model = getattr(seqkit_bert, name)(config)
    model.load_state_dict(from_transformers_state_dict(stock.state_dict()), strict=True)
    return model.eval()


def from_transformers_state_dict(state_dict: dict) -> dict:
    """The inverse of :func:`seqkit.models.bert.to_transformers_state_dict`."""
    converted = {}
    for name, tensor in state_dict.items():
        if name in _TIED_DECODER or name.endswith((".position_ids", ".token_type_ids")):
            continue  # tied to other tensors, or buffers transformers rebuilds
        # The renames are ordered so that the longer attention names match first.
        for ours, theirs in seqkit_bert.TRANSFORMERS_RENAMES:
            if theirs in name:
                name = name.replace(theirs, ours)
                break
        converted[name] = tensor
    return converted


def check_bert_config(config: transformers.BertConfig) -> None:
    """Refuse a stock BERT configuration that seqkit's BERT cannot reproduce exactly."""
    refuse_unsupported_options(
        config,
        "BERT",
        "seqkit's BERT",
        _FIXED_BERT_OPTIONS,
        {"hidden_act": tuple(seqkit_bert.ACTIVATIONS)},
    )


# ----------------------------------------------------------------------------- loading


def _architecture(source: ExportSource) -> str:
    saved_as = source.config.get("architectures")
    if not isinstance(saved_as, list) or not saved_as:
        return "BertForMaskedLM"
    return str(saved_as[0])


def _load_any(source: ExportSource) -> PreTrainedModel:
    """A seqkit BERT from a folder of either kind (seqkit-bert or stock bert)."""
    name = _architecture(source)
    if name not in _HEADS:
        raise UserError(f"{source.folder} holds a {name}, which has no seqkit counterpart")
    if source.model_type in STOCK_MODEL_TYPES:
        return from_stock(load_weights(getattr(transformers, name), source.folder))
    return load_weights(getattr(seqkit_bert, name), source.folder).eval()


def load_stock_bert(folder: Path) -> tuple[PreTrainedModel, Any]:
    """``(model, tokenizer)`` in seqkit's classes from a stock BERT folder (``model.init_from``,
    ``seqkit evaluate``): the head its ``architectures`` names, and its own tokenizer."""
    from seqkit.data import load_tokenizer
    from seqkit.folders import check_model_folder, check_vocabulary, read_config

    folder = check_model_folder(Path(folder))
    model = _load_any(ExportSource(folder, read_config(folder)))
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return model, tokenizer


# ----------------------------------------------------------------------------- export writers


def to_transformers(source: ExportSource, folder: Path) -> WrittenModel:
    """Write ``source`` as the stock BERT class of its head, with a framing tokenizer."""
    stock = to_stock(_load_any(source))
    stock.save_pretrained(folder)
    copy_folder_files(source.folder, folder, skip_model=True)
    add_bert_framing(folder)
    _, auto_name, task = _HEADS[type(stock).__name__]
    tokenizer = has_auto_tokenizer(folder)
    lines = loading_code(
        auto_name,
        stock,
        native=False,
        more_imports=("AutoTokenizer", "pipeline") if tokenizer else (),
    )
    if tokenizer:
        lines.append("tokenizer = AutoTokenizer.from_pretrained(path)")
        if task == "fill-mask":
            mask = _tokenizer_config(folder).get("mask_token", "[MASK]")
            lines += [
                'fill = pipeline("fill-mask", model=path)',
                f"print(fill({f'The {mask} of the text.'!r}))",
            ]
        elif task == "text-classification":
            lines += [
                'classify = pipeline("text-classification", model=path)',
                "print(classify('A sentence to classify.'))",
            ]
    return written_model(stock, lines, native=False, pipeline_tag=task, tags=["bert", task])


def to_native(source: ExportSource, folder: Path) -> WrittenModel:
    """Write ``source`` (a stock BERT folder, or a seqkit one) in seqkit's own classes."""
    model = _load_any(source)
    model.save_pretrained(folder)
    copy_folder_files(source.folder, folder, skip_model=True)
    _, auto_name, task = _HEADS[type(model).__name__]
    lines = loading_code(auto_name, model, native=True)
    return written_model(model, lines, native=True, pipeline_tag=task, tags=["bert", task])


# ----------------------------------------------------------------------------- tokenizer


def _tokenizer_config(folder: Path) -> dict:
    path = folder / "tokenizer_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def add_bert_framing(folder: Path) -> bool:
    """Make the tokenizer in ``folder`` add ``[CLS] … [SEP]`` (and ``… [SEP] … [SEP]`` with
    segment ids 1 for pairs) when called, as seqkit's BERT inputs are framed. Returns whether
    a tokenizer was changed (False when the folder has no ``tokenizer.json`` or no CLS/SEP)."""
    from tokenizers import Tokenizer, processors

    path = folder / "tokenizer.json"
    config = _tokenizer_config(folder)
    cls, sep = config.get("cls_token"), config.get("sep_token")
    if not path.is_file() or not isinstance(cls, str) or not isinstance(sep, str):
        return False
    with loading(str(path)):
        tokenizer = Tokenizer.from_file(str(path))
    ids = {token: tokenizer.token_to_id(token) for token in (cls, sep)}
    if None in ids.values():
        return False
    framed = tokenizer.encode("a", add_special_tokens=True).ids
    if framed[:1] == [ids[cls]] and framed[-1:] == [ids[sep]]:
        return False  # a stock BERT tokenizer (fine-tuned from one) frames already
    framing = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=list(ids.items()),
    )
    existing = tokenizer.post_processor
    tokenizer.post_processor = (
        framing if existing is None else processors.Sequence([existing, framing])
    )
    tokenizer.save(str(path))
    return True
