#!/usr/bin/env python
"""The largest output difference an export introduces, for every seqkit model type.

For each model type registered with the ``transformers`` Auto classes (read from the
registrations, as ``tests/export/test_roundtrip.py`` does), a small randomly initialised model
is saved, exported with ``seqkit export --format native`` and loaded back through its Auto
class; both compute outputs on the same input and the largest absolute difference is printed.
GPT and BERT are also exported to their stock ``transformers`` classes (``GPT2LMHeadModel``,
``BertForMaskedLM``, ``BertForSequenceClassification``), with weights scaled ×4 so that a wrong
transpose or activation would show, and the stock model's logits compared with seqkit's.
(``tests/export/test_stock_interop.py`` repeats the stock comparison in a Python where seqkit
cannot be imported.)

    python scripts/export_parity.py
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch


def _inputs(config) -> dict[str, torch.Tensor] | None:
    """A batch of two for a model of ``config``'s type, or None if the type is unknown here."""
    generator = torch.Generator().manual_seed(0)

    def ids(vocab: int, length: int = 10) -> torch.Tensor:
        return torch.randint(0, vocab, (2, length), generator=generator)

    model_type = config.model_type
    if model_type in ("seqkit-gpt", "seqkit-rnn-lm"):
        return {"input_ids": ids(config.vocab_size)}
    if model_type in ("seqkit-bert", "seqkit-rnn-classifier"):
        return {"input_ids": ids(config.vocab_size), "attention_mask": torch.ones(2, 10).long()}
    if model_type == "seqkit-bow":
        return {
            "feature_ids": ids(config.num_features, 6),
            "feature_values": torch.rand(2, 6, generator=generator),
        }
    if model_type in ("seqkit-cnn", "seqkit-mlp", "seqkit-resnet", "seqkit-conv-autoencoder"):
        shape = (2, config.num_channels, config.image_size, config.image_size)
        return {"pixel_values": torch.rand(shape, generator=generator)}
    if model_type == "seqkit-dcgan":
        return {"noise": torch.randn(2, config.latent_dim, generator=generator)}
    if model_type == "seqkit-dqn":
        return {"observations": torch.randn(2, config.observation_size, generator=generator)}
    if model_type == "seqkit-qtable":
        return {"states": torch.randint(0, config.num_states, (2,), generator=generator)}
    if model_type == "seqkit-tabular-mlp":
        return {"features": torch.randn(2, config.num_features, generator=generator)}
    if model_type == "seqkit-gcn":
        nodes = 6
        return {
            "features": torch.rand(nodes, config.num_features, generator=generator),
            "edge_index": torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]]),
            "edge_weight": torch.rand(6, generator=generator),
        }
    if model_type == "seqkit-seq2seq":
        return {
            "input_ids": ids(config.source_vocab_size - 4) + 4,
            "attention_mask": torch.ones(2, 10).long(),
            "decoder_input_ids": ids(config.target_vocab_size - 4, 7) + 4,
        }
    if model_type == "seqkit-transformer":
        return {
            "input_ids": ids(config.src_vocab_size - 3) + 3,
            "attention_mask": torch.ones(2, 10).long(),
            "decoder_input_ids": ids(config.tgt_vocab_size - 3, 7) + 3,
        }
    return None


def _tensors(output) -> list[torch.Tensor]:
    """Every floating-point tensor in a model's output (a tensor, a ModelOutput or a tuple)."""
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if hasattr(output, "to_tuple"):
        output = output.to_tuple()
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def _largest_difference(a, b) -> float:
    pairs = list(zip(_tensors(a), _tensors(b), strict=True))
    if not pairs:
        raise ValueError("the model returned no floating-point tensor")
    return max((x.double() - y.double()).abs().max().item() for x, y in pairs)


def native_rows(folder: Path) -> list[tuple[str, str, float | None, str]]:
    from seqkit.export.exporter import export_model
    from seqkit.export.registry import (
        auto_model_classes,
        example_config,
        import_model_modules,
        seqkit_config_classes,
    )

    import_model_modules()
    rows = []
    for model_type, config_class in seqkit_config_classes().items():
        seen = set()
        for auto_class, model_class in auto_model_classes(config_class):
            if model_class in seen:
                continue
            seen.add(model_class)
            torch.manual_seed(0)
            model = model_class(example_config(config_class)).eval()
            inputs = _inputs(model.config)
            source = folder / f"{model_class.__name__}-source"
            out = folder / f"{model_class.__name__}-export"
            model.save_pretrained(source)
            export_model(source, out, format="native")
            loaded = auto_class.from_pretrained(out).eval()
            if inputs is None:
                rows.append((model_type, model_class.__name__, None, "no input builder"))
                continue
            with torch.no_grad():
                difference = _largest_difference(model(**inputs), loaded(**inputs))
            rows.append(
                (model_type, model_class.__name__, difference, f"native, {auto_class.__name__}")
            )
    return rows


def stock_rows(folder: Path) -> list[tuple[str, str, float | None, str]]:
    import transformers

    from seqkit.data import CharTokenizer, train_tokenizer
    from seqkit.export.exporter import export_model
    from seqkit.models import bert
    from seqkit.models.gpt import GPTLMHeadModel
    from seqkit.models.gpt_config import GPTConfig
    from seqkit.parts.model_folder import save_pretrained

    def large(model):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(4.0)
        return model.eval()

    corpus = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind\n"
    rows = []
    cases: list[tuple[str, Callable[[], torch.nn.Module], object, str]] = []
    char = CharTokenizer.train(corpus)

    def gpt():
        config = GPTConfig(
            vocab_size=char.vocab_size, n_positions=32, n_embd=24, n_layer=2, n_head=3
        )
        return large(GPTLMHeadModel(config))

    cases.append(("seqkit-gpt", gpt, char, "AutoModelForCausalLM"))
    bpe = train_tokenizer("bpe", corpus * 8, vocab_size=300)
    for head, auto in (
        ("BertForMaskedLM", "AutoModelForMaskedLM"),
        ("BertForSequenceClassification", "AutoModelForSequenceClassification"),
    ):

        def make(head=head):
            config = bert.BertConfig(
                vocab_size=bpe.vocab_size, hidden_size=16, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                num_labels=3, pad_token_id=bpe.pad_token_id,
            )  # fmt: skip
            return large(getattr(bert, head)(config))

        cases.append(("seqkit-bert", make, bpe, auto))
    for model_type, make, tokenizer, auto in cases:
        torch.manual_seed(0)
        model = make()
        name = type(model).__name__
        source, out = folder / f"stock-{name}", folder / f"stock-{name}-hub"
        if model_type == "seqkit-gpt":
            save_pretrained(model, tokenizer, source)
        else:
            model.save_pretrained(source)
            tokenizer.save_pretrained(source)
        result = export_model(source, out)  # the default: the stock class
        stock = getattr(transformers, auto).from_pretrained(out).eval()
        ids = torch.tensor([tokenizer.encode("To be, or not"), tokenizer.encode("Whether 'tis ")])
        with torch.no_grad():
            difference = (stock(ids).logits - model(ids).logits).abs().max().item()
        rows.append((model_type, name, difference, f"stock {result.model.architecture}"))
    return rows


def main() -> int:
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as folder:
        rows = native_rows(Path(folder)) + stock_rows(Path(folder))
    print("| model type | class | export | largest abs. output difference |")
    print("|---|---|---|---:|")
    for model_type, name, difference, how in rows:
        shown = "not measured" if difference is None else f"{difference:.2e}"
        print(f"| {model_type} | {name} | {how} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
