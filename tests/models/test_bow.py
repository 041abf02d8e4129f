"""Bag-of-words classifiers: the sparse first layer equals a dense matrix product, training
reduces the loss, and saved folders load through the transformers Auto classes."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from seqkit.models.bow import BagOfWordsConfig, BagOfWordsForSequenceClassification

IDS = torch.tensor([[3, 7, 1, 0], [5, 0, 0, 0], [2, 9, 4, 8]])
VALUES = torch.tensor([[0.5, 2.0, 1.0, 0.0], [1.5, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
LABELS = torch.tensor([0, 2, 1])


def dense(ids: torch.Tensor, values: torch.Tensor, num_features: int) -> torch.Tensor:
    """The same documents as dense (B, num_features) bag-of-words vectors."""
    x = torch.zeros(ids.shape[0], num_features)
    return x.scatter_add_(1, ids, values)


def tiny(classifier: str, **overrides) -> BagOfWordsForSequenceClassification:
    torch.manual_seed(0)
    config = BagOfWordsConfig(
        num_features=10, num_labels=3, classifier=classifier, hidden_size=6, **overrides
    )
    return BagOfWordsForSequenceClassification(config)


def test_logistic_regression_is_a_linear_map_of_the_dense_vector():
    model = tiny("logistic")
    x = dense(IDS, VALUES, 10)
    expected = x @ model.features.weight + model.bias  # (B, classes)
    out = model(IDS, VALUES, labels=LABELS)
    torch.testing.assert_close(out.logits, expected)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(expected, LABELS))


def test_mlp_has_one_hidden_relu_layer():
    model = tiny("mlp").eval()
    x = dense(IDS, VALUES, 10)
    hidden = torch.relu(x @ model.features.weight + model.bias)
    torch.testing.assert_close(model(IDS, VALUES).logits, model.head(hidden))
    assert model(IDS, VALUES).loss is None


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_training_reduces_the_loss_and_folders_round_trip(classifier, tmp_path):
    model = tiny(classifier)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    first = model(IDS, VALUES, labels=LABELS).loss.item()
    for _ in range(30):
        loss = model(IDS, VALUES, labels=LABELS).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < first / 4
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(loaded, BagOfWordsForSequenceClassification)
    torch.testing.assert_close(loaded(IDS, VALUES).logits, model.eval()(IDS, VALUES).logits)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="classifier must be one of"):
        BagOfWordsConfig(classifier="svm")
