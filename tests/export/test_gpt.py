"""GPT ↔ stock GPT2LMHeadModel: equal logits and equal greedy generations, in both directions.
(tests/export/test_stock_interop.py uses the exported folder where seqkit cannot be imported.)"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from seqkit.data import CharTokenizer
from seqkit.errors import UserError
from seqkit.export.exporter import export_model
from seqkit.export.gpt import check_gpt2_config, from_gpt2, load_stock_gpt2, to_gpt2
from seqkit.generation import generate
from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig
from seqkit.parts.model_folder import save_pretrained

LOGIT_TOLERANCE = 1e-4
CORPUS = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind\n"


def tiny_gpt(tokenizer: CharTokenizer, **overrides) -> GPTLMHeadModel:
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size,
        n_positions=32,
        n_embd=24,
        n_layer=2,
        n_head=3,
        **overrides,
    )
    model = GPTLMHeadModel(config).eval()
    # Larger than initial weights, so a wrong transpose or GELU would show in the logits.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4.0)
    return model


def prompt_ids(tokenizer: CharTokenizer) -> torch.Tensor:
    return torch.tensor([tokenizer.encode("To be, or not"), tokenizer.encode("Whether 'tis ")])


@pytest.mark.parametrize("activation", ["gelu_new", "relu"])
def test_seqkit_gpt_to_stock_gpt2(activation):
    tokenizer = CharTokenizer.train(CORPUS)
    model = tiny_gpt(tokenizer, activation_function=activation)
    stock = to_gpt2(model)
    assert type(stock) is GPT2LMHeadModel and stock.config.model_type == "gpt2"
    ids = prompt_ids(tokenizer)
    with torch.no_grad():
        difference = (stock(ids).logits - model(ids).logits).abs().max().item()
    assert difference < LOGIT_TOLERANCE
    ours = generate(model, ids[:1], max_new_tokens=12, temperature=0.0)
    theirs = stock.generate(ids[:1], max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert ours.tolist() == theirs.tolist()


def test_stock_gpt2_to_seqkit_and_back():
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=31, n_positions=24, n_embd=16, n_layer=2, n_head=2)
    stock = GPT2LMHeadModel(config).eval()
    model = from_gpt2(stock)
    ids = torch.randint(0, 31, (2, 10))
    with torch.no_grad():
        assert (stock(ids).logits - model(ids).logits).abs().max() < LOGIT_TOLERANCE
    back = to_gpt2(model).state_dict()
    for name, tensor in stock.state_dict().items():
        assert torch.equal(back[name], tensor), name


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("scale_attn_by_inverse_layer_idx", True),
        ("scale_attn_weights", False),
        ("activation_function", "quick_gelu"),
    ],
)
def test_gpt2_options_seqkit_lacks_are_refused(option, value):
    config = GPT2Config(n_embd=8, n_layer=1, n_head=2, **{option: value})
    with pytest.raises(UserError, match=option):
        check_gpt2_config(config)


@pytest.fixture(scope="module")
def stock_folder(tmp_path_factory):
    """A randomly initialised stock GPT-2 saved by transformers, with a character tokenizer."""
    folder = tmp_path_factory.mktemp("stock") / "gpt2"
    tokenizer = CharTokenizer.train(CORPUS)
    torch.manual_seed(2)
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=32, n_embd=16, n_layer=2, n_head=2
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_seqkit_loads_a_stock_gpt2_folder(stock_folder, tmp_path):
    stock = GPT2LMHeadModel.from_pretrained(stock_folder).eval()
    model, tokenizer = load_stock_gpt2(stock_folder)
    assert type(model) is GPTLMHeadModel
    ids = prompt_ids(tokenizer)
    with torch.no_grad():
        assert (stock(ids).logits - model(ids).logits).abs().max() < LOGIT_TOLERANCE

    # Imported as a seqkit folder: it loads in seqkit's class with the same function.
    export_model(stock_folder, tmp_path / "imported", format="native")
    imported = GPTLMHeadModel.from_pretrained(tmp_path / "imported").eval()
    assert json.loads((tmp_path / "imported" / "config.json").read_text())["model_type"] == (
        "seqkit-gpt"
    )
    with torch.no_grad():
        assert torch.equal(imported(ids).logits, model(ids).logits)


def test_a_bpe_tokenizer_exports_for_auto_tokenizer(tmp_path):
    """A GPT trained with seqkit's byte-level BPE: AutoTokenizer reads the exported folder
    and gives the same ids and text back."""
    bpe = pytest.importorskip("seqkit.data.bpe")
    from transformers import AutoTokenizer

    tokenizer = bpe.BPETokenizer.train(CORPUS * 4, vocab_size=300)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, n_positions=32, n_embd=8, n_layer=1, n_head=2
    )
    source = tmp_path / "final"
    save_pretrained(GPTLMHeadModel(config), tokenizer, source)
    export_model(source, tmp_path / "hub")
    stock = AutoTokenizer.from_pretrained(tmp_path / "hub")
    for text in ("To be, or not to be", "Whether 'tis nobler\nin the mind", "unseen: ßø€ 🙂"):
        ids = stock(text)["input_ids"]
        assert ids == tokenizer.encode(text)
        assert stock.decode(ids) == tokenizer.decode(ids) == text
