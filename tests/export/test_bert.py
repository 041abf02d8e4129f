"""BERT ↔ stock BertForMaskedLM / BertForSequenceClassification / BertModel: equal outputs in
both directions, framing tokenizer, refused options.
(tests/export/test_stock_interop.py uses the exported folders where seqkit cannot be imported.)"""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from seqkit.errors import UserError
from seqkit.export.exporter import export_model

seqkit_bert = pytest.importorskip("seqkit.models.bert")  # lands separately from the export code

from seqkit.export.bert import (  # noqa: E402 - needs seqkit.models.bert
    add_bert_framing,
    check_bert_config,
    from_stock,
    to_stock,
)

TOLERANCE = 1e-4
HEADS = ["BertForMaskedLM", "BertForSequenceClassification", "BertModel"]


def tiny_config(**overrides) -> seqkit_bert.BertConfig:
    values = dict(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=24,
        num_labels=3,
    )
    return seqkit_bert.BertConfig(**{**values, **overrides})


def outputs(model, ids, mask):
    with torch.no_grad():
        out = model(ids, attention_mask=mask)
    if hasattr(out, "logits"):
        return out.logits
    return out.last_hidden_state[mask.bool()]  # padded positions hold nothing meaningful


def inputs():
    ids = torch.randint(0, 40, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # a padded row: the attention mask must travel the same way
    return ids, mask


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_seqkit_bert_to_stock_and_back(head, activation):
    torch.manual_seed(0)
    model = getattr(seqkit_bert, head)(tiny_config(hidden_act=activation)).eval()
    with torch.no_grad():  # larger than initial weights, so a wrong mapping shows
        for parameter in model.parameters():
            parameter.mul_(4.0)
    stock = to_stock(model)
    assert type(stock) is getattr(transformers, head)
    ids, mask = inputs()
    assert (outputs(stock, ids, mask) - outputs(model, ids, mask)).abs().max() < TOLERANCE
    back = from_stock(stock).state_dict()
    expected = model.state_dict()
    assert back.keys() == expected.keys()
    assert all(torch.equal(back[name], expected[name]) for name in expected)


@pytest.mark.parametrize("head", ["BertForMaskedLM", "BertForSequenceClassification"])
def test_a_stock_bert_folder_imports_into_seqkit(head, tmp_path):
    torch.manual_seed(1)
    config = transformers.BertConfig(**tiny_config().to_dict() | {"model_type": "bert"})
    stock = getattr(transformers, head)(config).eval()
    stock.save_pretrained(tmp_path / "stock")
    result = export_model(tmp_path / "stock", tmp_path / "seqkit", format="native")
    assert result.model.architecture == head
    saved = json.loads((tmp_path / "seqkit" / "config.json").read_text())
    assert saved["model_type"] == "seqkit-bert"
    model = getattr(seqkit_bert, head).from_pretrained(tmp_path / "seqkit").eval()
    ids, mask = inputs()
    assert (outputs(stock, ids, mask) - outputs(model, ids, mask)).abs().max() < TOLERANCE


def test_bert_options_seqkit_lacks_are_refused():
    with pytest.raises(UserError, match="is_decoder"):
        check_bert_config(transformers.BertConfig(is_decoder=True))
    with pytest.raises(UserError, match="hidden_act"):
        check_bert_config(transformers.BertConfig(hidden_act="gelu_new"))


def test_framing_adds_cls_and_sep(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[CLS]": 0, "[SEP]": 1, "a": 2, "b": 3}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"})
    )
    assert not add_bert_framing(tmp_path)  # no cls/sep roles: left alone
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "cls_token": "[CLS]",
                "sep_token": "[SEP]",
            }
        )
    )
    assert add_bert_framing(tmp_path)
    framed = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert framed.encode("a b").ids == [0, 2, 3, 1]
    pair = framed.encode("a", "b")
    assert pair.ids == [0, 2, 1, 3, 1] and pair.type_ids == [0, 0, 0, 1, 1]
