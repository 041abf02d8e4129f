"""BERT: equal to transformers' BERT with renamed weights (MLM and classification), tied MLM
head, padding, segments, save/load and the sdpa/explicit switch."""

import pytest
import torch
import transformers

from seqkit.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    to_transformers_state_dict,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = dict(
    vocab_size=50,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=16,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def _inputs():
    torch.manual_seed(1)
    ids = torch.randint(0, 50, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    segments = torch.zeros(2, 9, dtype=torch.long)
    segments[:, 5:] = 1
    return ids, mask, segments


@pytest.mark.parametrize("head", ["mlm", "classifier"])
def test_equal_to_transformers_bert(head):
    torch.manual_seed(0)
    ours_cls, theirs_cls, extra = {
        "mlm": (BertForMaskedLM, transformers.BertForMaskedLM, {}),
        "classifier": (
            BertForSequenceClassification,
            transformers.BertForSequenceClassification,
            {"num_labels": 3},
        ),
    }[head]
    ours = ours_cls(BertConfig(**SIZES, **extra)).eval()
    theirs = theirs_cls(transformers.BertConfig(**SIZES, **extra)).eval()
    missing, unexpected = theirs.load_state_dict(to_transformers_state_dict(ours.state_dict()))
    assert not missing and not unexpected  # every parameter has a place: a pure renaming
    ids, mask, segments = _inputs()
    expected = theirs(input_ids=ids, attention_mask=mask, token_type_ids=segments).logits
    got = ours(ids, mask, segments).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_mlm_head_is_tied_and_loss_counts_masked_positions_only():
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(**SIZES))
    names = [name for name, _ in model.named_parameters()]
    assert not any("decoder" in name for name in names)  # logits reuse the word embeddings
    ids, mask, _ = _inputs()
    labels = torch.full_like(ids, -100)
    labels[0, 3] = ids[0, 3]
    out = model(ids, mask, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[0, 3:4], ids[0, 3:4])
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_masked_positions_give_the_same_loss_gradients_and_logits():
    """The sparse head (logits at the collator's masked positions only) is the full head's
    computation restricted to those rows: the same loss, the same gradient on every weight."""
    from seqkit.data.masking import masked_positions

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(**SIZES))
    ids, mask, _ = _inputs()
    labels = torch.full_like(ids, -100)
    labels[0, [1, 4]] = ids[0, [1, 4]]
    labels[1, 2] = ids[1, 2]

    def run(**extra):
        model.zero_grad()
        out = model(ids, mask, labels=labels, **extra)
        out.loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    full, full_grads = run()
    positions = masked_positions(labels)
    assert positions.tolist() == [1, 4, 9 + 2]
    sparse, sparse_grads = run(masked_positions=positions)
    assert sparse.logits.shape == (3, 50)
    torch.testing.assert_close(sparse.logits, full.logits.reshape(-1, 50)[positions])
    torch.testing.assert_close(sparse.loss, full.loss)
    assert sparse_grads.keys() == full_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(sparse_grads[name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_explicit_path_save_load_and_bad_config(tmp_path):
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SIZES, num_labels=2)).eval()
    ids, mask, segments = _inputs()
    fused = model(ids, mask, segments, output_attentions=True)
    assert fused.attentions[0].shape == (2, 4, 9, 9)
    assert torch.all(fused.attentions[0][1, :, :, 6:] == 0)  # padding gets no attention
    model.save_pretrained(tmp_path)
    again = BertForSequenceClassification.from_pretrained(tmp_path, attention="explicit").eval()
    torch.testing.assert_close(
        again(ids, mask, segments).logits, fused.logits, atol=1e-5, rtol=1e-4
    )
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(hidden_size=30, num_attention_heads=4)
