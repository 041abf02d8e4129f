"""seqkit.metrics agrees with scikit-learn's definitions, also when classes are absent, and its
streamed form (confusion cells averaged by the Trainer) gives the same numbers as the whole set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from seqkit.metrics import (
    classification_scores,
    confusion_counts,
    confusion_matrix,
    plot_confusion_matrix,
    scores_from_confusion,
    summarize_confusion,
)


def random_labels(seed: int, n: int, num_labels: int, *, absent: tuple[int, ...] = ()):
    """True and predicted labels, 60% right; classes in ``absent`` never occur in y_true, and
    the last class is never predicted."""
    rng = np.random.default_rng(seed)
    present = [c for c in range(num_labels) if c not in absent]
    y_true = rng.choice(present, size=n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, num_labels, size=n))
    y_pred[y_pred == num_labels - 1] = 0
    return y_true, y_pred


def sklearn_reference(y_true, y_pred, num_labels):
    labels = list(range(num_labels))
    return {
        "accuracy": sk.accuracy_score(y_true, y_pred),
        "macro_f1": sk.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "macro_precision": sk.precision_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "macro_recall": sk.recall_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("absent", [(), (1,), (1, 3)])
def test_scores_equal_scikit_learn_with_absent_classes(seed, absent):
    num_labels = 5  # class 4 is never predicted; the classes in `absent` never occur
    y_true, y_pred = random_labels(seed, 60, num_labels, absent=absent)
    ours = classification_scores(y_true, y_pred, num_labels)
    assert ours == pytest.approx(sklearn_reference(y_true, y_pred, num_labels))
    assert "roc_auc" not in ours
    matrix = confusion_matrix(y_true, y_pred, num_labels)
    assert matrix.shape == (5, 5) and matrix.sum() == 60
    np.testing.assert_array_equal(matrix[:, 4], 0)
    for c in absent:
        np.testing.assert_array_equal(matrix[c], 0)
    # The same examples described by their confusion matrix (counts or fractions): same scores.
    assert scores_from_confusion(matrix) == pytest.approx(ours)
    assert scores_from_confusion(matrix / 60) == pytest.approx(ours)


def test_absent_classes_count_in_the_macro_average():
    # Class 2 is in the model but nowhere in the data: its F1 is 0 (zero_division), and it pulls
    # the macro average down to 2/3 of a perfect score.
    y = np.array([0, 1, 0, 1])
    scores = classification_scores(y, y, num_labels=3)
    assert scores["accuracy"] == 1.0
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    assert scores["macro_f1"] != sk.f1_score(y, y, average="macro")  # the unlabelled default: 1.0


def test_binary_roc_auc_equals_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=80)
    probability = np.clip(0.3 * y_true + rng.random(80) * 0.7, 0, 1)
    y_pred = (probability > 0.5).astype(int)
    scores = classification_scores(y_true, y_pred, 2, positive_scores=probability)
    assert scores["roc_auc"] == pytest.approx(sk.roc_auc_score(y_true, probability))
    # One class only: ROC-AUC is undefined and left out rather than an error.
    only_ones = classification_scores(
        np.ones(5, int), np.ones(5, int), 2, positive_scores=np.ones(5)
    )
    assert "roc_auc" not in only_ones


def test_streamed_confusion_cells_give_the_whole_set_scores():
    num_labels = 4
    y_true, y_pred = random_labels(3, 50, num_labels, absent=(2,))
    labels, predicted = torch.from_numpy(y_true), torch.from_numpy(y_pred)
    totals: dict[str, list[float]] = {}
    for start in range(0, 50, 16):  # uneven batches, averaged as the Trainer averages
        batch = confusion_counts(labels[start : start + 16], predicted[start : start + 16], 4)
        for key, (value, count) in batch.items():
            total = totals.setdefault(key, [0.0, 0.0])
            total[0] += float(value)
            total[1] += count
    averaged = {key: s / n for key, (s, n) in totals.items()}
    averaged["loss"] = 1.5
    summary = summarize_confusion(averaged, num_labels)
    expected = sklearn_reference(y_true, y_pred, num_labels)
    for name in ("macro_f1", "macro_precision", "macro_recall"):
        assert summary[name] == pytest.approx(expected[name])
    assert summary["loss"] == 1.5
    assert not any(key.startswith("confusion_") for key in summary)


def test_confusion_matrix_plot(tmp_path):
    matrix = np.array([[5, 1], [2, 7]])
    path = plot_confusion_matrix(matrix, ["neg", "pos"], tmp_path / "plots" / "cm.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="does not fit 3 label names"):
        plot_confusion_matrix(matrix, ["a", "b", "c"], tmp_path / "bad.png")
