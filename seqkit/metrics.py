"""Classification metrics, one home for every family that classifies: accuracy, macro-averaged
precision, recall and F1, ROC-AUC for binary tasks, the confusion matrix and its plot.

Every number comes from scikit-learn's ``sklearn.metrics`` (Pedregosa et al., 2011, JMLR 12), so
"macro-F1" here means exactly what it means there. Two choices are made explicit rather than left
to defaults:

* ``labels=range(num_labels)``: a macro average runs over *every* class of the model, also a class
  that neither occurs in the evaluation set nor is ever predicted. Without ``labels`` scikit-learn
  would average only over the classes it sees, so the same model would score differently on two
  splits that happen to miss different classes.
* ``zero_division=0.0``: a precision, recall or F1 whose denominator is zero (a class never
  predicted, or never present) counts as 0, and scikit-learn stays silent about it.

The Trainer averages ``(sum, count)`` pairs over evaluation batches, so a macro average cannot be
streamed as such. :func:`confusion_counts` streams the confusion matrix instead, each cell as a
fraction of the documents; :func:`scores_from_confusion` hands those cells to scikit-learn as
sample weights (cell (i, j) is one sample of true class i predicted as j, weighted by its share).
Every score above is a ratio of cell sums, so the fractions give the same numbers the raw counts
would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqkit.errors import UserError

logger = logging.getLogger(__name__)

ZERO_DIVISION = 0.0
"""The value of a precision/recall/F1 whose denominator is zero (see the module docstring)."""


def _labels(num_labels: int) -> list[int]:
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}")
    return list(range(num_labels))


def confusion_matrix(y_true, y_pred, num_labels: int) -> np.ndarray:
    """``(num_labels, num_labels)`` counts: row = true class, column = predicted class."""
    from sklearn import metrics

    return metrics.confusion_matrix(y_true, y_pred, labels=_labels(num_labels))


def classification_scores(
    y_true,
    y_pred,
    num_labels: int,
    *,
    positive_scores=None,
    sample_weight=None,
) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 over ``num_labels`` classes; with
    ``positive_scores`` (a score per example for class 1, e.g. its probability) on a binary task
    whose ``y_true`` holds both classes, also ``roc_auc`` (Hanley & McNeil, 1982)."""
    from sklearn import metrics

    labels = _labels(num_labels)
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y_true,
        y_pred,
        labels=labels,
        average="macro",
        zero_division=ZERO_DIVISION,
        sample_weight=sample_weight,
    )
    scores = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred, sample_weight=sample_weight)),
        "macro_f1": float(f1),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
    }
    # ROC-AUC ranks positives against negatives: undefined unless both occur.
    if positive_scores is not None and num_labels == 2 and len(np.unique(y_true)) == 2:
        scores["roc_auc"] = float(
            metrics.roc_auc_score(y_true, positive_scores, sample_weight=sample_weight)
        )
    return scores


def scores_from_confusion(matrix: np.ndarray) -> dict[str, float]:
    """:func:`classification_scores` of the examples a confusion matrix (counts, or fractions of
    the examples) describes; no ROC-AUC, which needs the scores, not the decisions."""
    matrix = np.asarray(matrix, dtype=np.float64)
    num_labels = matrix.shape[0]
    if matrix.shape != (num_labels, num_labels) or matrix.sum() <= 0:
        raise ValueError(f"expected a square confusion matrix with some examples, got {matrix}")
    true, predicted = np.indices(matrix.shape).reshape(2, -1)
    return classification_scores(true, predicted, num_labels, sample_weight=matrix.ravel())


# ----------------------------------------------------------------------------- streaming


def confusion_key(true: int, predicted: int) -> str:
    return f"confusion_{true}_{predicted}"


def confusion_counts(labels, predicted, num_labels: int) -> dict[str, tuple]:
    """One evaluation batch's confusion cells as Trainer metrics: ``(count, batch size)`` pairs,
    so the Trainer's average of each is the cell's fraction of all evaluated examples.
    ``labels`` and ``predicted`` are integer tensors of one shape."""
    n = labels.numel()
    cells = (labels.reshape(-1) * num_labels + predicted.reshape(-1)).bincount(
        minlength=num_labels * num_labels
    )
    return {
        confusion_key(i, j): (cells[i * num_labels + j], n)
        for i in range(num_labels)
        for j in range(num_labels)
    }


def summarize_confusion(metrics: dict[str, float], num_labels: int) -> dict[str, float]:
    """Replace the streamed confusion cells of :func:`confusion_counts` in ``metrics`` by the
    macro scores they give (accuracy is left as the task streamed it)."""
    matrix = np.array(
        [
            [metrics.pop(confusion_key(i, j), 0.0) for j in range(num_labels)]
            for i in range(num_labels)
        ]
    )
    if matrix.sum() > 0:
        scores = scores_from_confusion(matrix)
        scores.pop("accuracy")
        metrics.update(scores)
    return metrics


# ----------------------------------------------------------------------------- report


def classification_report(
    labels, probabilities, label_names: Sequence[str], plot_path: str | Path | None = None
) -> tuple[dict[str, float], str]:
    """Everything ``seqkit evaluate`` says about a classifier: the scores of
    :func:`classification_scores` for ``probabilities`` (one row of class probabilities per
    example, argmax = prediction) against ``labels``, and a text with scikit-learn's per-class
    report and the confusion matrix. With ``plot_path`` the matrix is also drawn there."""
    from sklearn import metrics

    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    k = len(label_names)
    report = metrics.classification_report(
        labels,
        predicted,
        labels=_labels(k),
        target_names=list(label_names),
        zero_division=ZERO_DIVISION,
    )
    matrix = confusion_matrix(labels, predicted, k)
    width = max(len(str(matrix.max())), *(len(name) for name in label_names))
    rows = [" " * width + " " + " ".join(f"{name:>{width}}" for name in label_names)]
    for name, row in zip(label_names, matrix, strict=True):
        rows.append(f"{name:>{width}} " + " ".join(f"{value:>{width}}" for value in row))
    text = f"{report}\nconfusion matrix (rows: true class, columns: predicted):\n" + "\n".join(rows)
    if plot_path is not None:
        plot_confusion_matrix(matrix, label_names, plot_path)
    scores = classification_scores(
        labels, predicted, k, positive_scores=probabilities[:, 1] if k == 2 else None
    )
    return scores, text


def report_to_console(
    labels, probabilities, label_names: Sequence[str], run_dir: Path | None, plots: bool
) -> dict[str, float]:
    """:func:`classification_report` for ``seqkit evaluate``: the text on stdout, the plot
    (with ``--plots``) at ``RUN/plots/confusion-matrix.png``; returns the scores and the
    number of examples."""
    plot_path = None
    if plots:
        if run_dir is None:
            raise UserError("--plots needs a run directory to write RUN/plots/ into")
        plot_path = run_dir / "plots" / "confusion-matrix.png"
    scores, text = classification_report(labels, probabilities, label_names, plot_path)
    print(text)  # the command's result: stdout
    if plot_path is not None:
        logger.info("wrote %s", plot_path)
    return {**scores, "examples": len(labels)}


# ----------------------------------------------------------------------------- plot


def plot_confusion_matrix(
    matrix: np.ndarray, label_names: Sequence[str], path: str | Path, title: str | None = None
) -> Path:
    """Write the confusion matrix as a PNG: counts in the cells, shaded by each true class's
    share (so a rare class's errors show as clearly as a common one's)."""
    # Imported here: matplotlib takes ~0.5 s to import. The object-oriented Figure with the Agg
    # canvas draws without a display and without touching pyplot's global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    k = len(label_names)
    if matrix.shape != (k, k):
        raise ValueError(f"a {matrix.shape} matrix does not fit {k} label names")
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = 2.0 + 0.6 * k
    figure = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class")
    ticks = np.arange(k)
    axes.set_xticks(ticks, labels=list(label_names), rotation=45, ha="right")
    axes.set_yticks(ticks, labels=list(label_names))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if title:
        axes.set_title(title)
    for i in range(k):
        for j in range(k):
            value = matrix[i, j]
            text = f"{value:g}" if np.issubdtype(matrix.dtype, np.floating) else f"{value:d}"
            axes.text(
                j, i, text, ha="center", va="center",
                color="white" if shares[i, j] > 0.5 else "black",
            )  # fmt: skip
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
