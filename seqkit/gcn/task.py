"""Full-batch node classification on the one Trainer: the whole graph is one batch.

Semi-supervised training (Kipf & Welling 2017) sees the whole graph every step (a node's
prediction depends on its neighbours, labelled or not) but takes its loss only over the
labelled training nodes. So the task draws its own batches
(:meth:`NodeClassificationTask.train_batches`), the same graph every step, and evaluation streams
the same graph once (:class:`seqkit.gcn.data.WholeGraph`). It is the one
:class:`~seqkit.trainer.tasks.ClassificationTask` with the validation nodes as the examples
scored: ``eval/accuracy`` and the macro scores are theirs; ``eval/train_accuracy`` and
``eval/test_accuracy`` cover the other two node sets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from seqkit.errors import UserError
from seqkit.gcn.data import Graph
from seqkit.gcn.models import GCNForNodeClassification
from seqkit.metrics import confusion_counts
from seqkit.trainer.tasks import ClassificationTask, Models, only_model

EMBEDDING_PLOT = "embedding.png"
"""The picture of the learned node embedding written beside the trained model."""

logger = logging.getLogger(__name__)


def accuracy_counts(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor):
    """``(correct, total)`` over the nodes in ``mask``, for streaming evaluation."""
    correct = (logits[mask].argmax(-1) == labels[mask]).sum().float()
    return correct, int(mask.sum())


class NodeClassificationTask(ClassificationTask):
    """Cross-entropy over the training nodes; accuracy and macro scores on the validation
    nodes, accuracy on the training and test nodes.

    Args:
        model: the GCN.
        batch: :func:`seqkit.gcn.data.graph_batch` of the graph (None: a model read back
            only to be saved or loaded).
        graph: the graph itself, for the embedding picture.
        decay_first_layer_only: apply the recipe's weight decay to the first layer only, as
            Kipf & Welling do (with ``trainer.optimizer: adam`` that is their L2 penalty); the
            later layers are left free. Otherwise every weight matrix takes decay.
    """

    auto_class = "AutoModel"  # transformers has no Auto class for node classification
    generate_command = None  # a graph model classifies the graph's nodes, not a prompt

    default_data = "graph"

    def __init__(
        self,
        model: GCNForNodeClassification,
        batch: dict[str, torch.Tensor] | None,
        *,
        graph: Graph | None = None,
        decay_first_layer_only: bool = True,
    ):
        super().__init__(model, num_labels=model.config.num_classes)
        self.batch = batch
        self.graph = graph
        self.decay_first_layer_only = decay_first_layer_only

    @classmethod
    def for_model(cls, model: torch.nn.Module, facts: Mapping[str, Any]) -> NodeClassificationTask:
        graph = facts.get("graph")
        if graph is not None and graph.features.shape[1] != model.config.num_features:
            raise UserError(
                f"the graph has {graph.features.shape[1]} features per node but the model "
                f"expects {model.config.num_features}"
            )
        return cls(
            model,
            facts.get("batch"),
            graph=graph,
            decay_first_layer_only=facts.get("decay_first_layer_only", True),
        )

    def configure_optimizers(self, build) -> dict[str, torch.optim.Optimizer]:
        if not self.decay_first_layer_only:
            return super().configure_optimizers(build)
        # The recipe's optimizer over the first layer (its weight decays, its bias does not),
        # then every later parameter joins it in a group without decay.
        first = self.model.layers[0]
        optimizer = build(first)
        rest = [p for layer in self.model.layers[1:] for p in layer.parameters()]
        if rest:
            optimizer.add_param_group(
                {"name": "no_decay_later_layers", "params": rest, "weight_decay": 0.0}
            )
        return {"model": optimizer}

    def train_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.batch

    def num_targets(self, batch) -> int:
        return int(batch["train_mask"].sum())

    def training_step(self, models: Models, batch, optimizer_name: str) -> torch.Tensor:
        return only_model(models)(
            batch["features"],
            batch["edge_index"],
            batch["edge_weight"],
            labels=batch["labels"],
            mask=batch["train_mask"],
        ).loss

    def evaluation_step(self, models: Models, batch) -> dict[str, tuple[torch.Tensor, float]]:
        out = only_model(models)(batch["features"], batch["edge_index"], batch["edge_weight"])
        labels, val = batch["labels"], batch["val_mask"]
        loss = torch.nn.functional.cross_entropy(out.logits[val], labels[val], reduction="sum")
        return {
            "loss": (loss, int(val.sum())),
            "accuracy": accuracy_counts(out.logits, labels, val),
            "train_accuracy": accuracy_counts(out.logits, labels, batch["train_mask"]),
            "test_accuracy": accuracy_counts(out.logits, labels, batch["test_mask"]),
            **confusion_counts(labels[val], out.logits[val].argmax(-1), self.num_labels),
        }

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """Nothing beyond :meth:`evaluation_step`, which already scores the train, validation
        and test nodes of the one graph."""
        return {}

    def save_extras(self, folder: Path, run_dir: Path | None) -> dict[str, float]:
        """The embedding picture, and the accuracies of the saved model: early stopping may
        have restored earlier weights than the last evaluation saw."""
        if self.batch is None or self.graph is None:
            return {}
        plot_embedding(self.model, self.batch, self.graph, folder / EMBEDDING_PLOT)
        metrics = node_accuracies(self.model, self.batch, self.graph)
        logger.info(f"test accuracy of the saved model: {metrics['test_accuracy']:.4f}")
        return metrics


@torch.no_grad()
def node_accuracies(model, batch: dict[str, torch.Tensor], graph: Graph) -> dict[str, float]:
    """Accuracy on the train, validation and test nodes (dropout off)."""
    was_training = model.training
    model.eval()
    logits = model(batch["features"], batch["edge_index"], batch["edge_weight"]).logits
    model.train(was_training)
    predicted = logits.argmax(-1)

    def accuracy(mask: torch.Tensor) -> float:
        return float((predicted[mask] == graph.labels[mask]).float().mean())

    return {
        "train_accuracy": accuracy(graph.train_mask),
        "val_accuracy": accuracy(graph.val_mask),
        "test_accuracy": accuracy(graph.test_mask),
    }


@torch.no_grad()
def plot_embedding(model, batch: dict[str, torch.Tensor], graph: Graph, path: Path) -> None:
    """The last hidden layer of every node, projected to its two principal axes, by class.

    Labelled training nodes are drawn larger with a black edge: the picture shows how the few
    labels spread through the graph.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    was_training = model.training
    model.eval()
    out = model(batch["features"], batch["edge_index"], batch["edge_weight"])
    model.train(was_training)
    hidden = out.logits if model.config.num_layers == 1 else out.hidden_states
    centred = hidden.float() - hidden.float().mean(0)
    if centred.shape[1] > 2:
        _, _, components = torch.linalg.svd(centred, full_matrices=False)
        points = centred @ components[:2].T  # (N, 2) principal coordinates
    else:
        points = torch.nn.functional.pad(centred, (0, 2 - centred.shape[1]))
    fig, ax = plt.subplots(figsize=(6, 5))
    colors = plt.get_cmap("tab10")
    train = graph.train_mask
    for c, name in enumerate(graph.class_names):
        chosen = graph.labels == c
        ax.scatter(*points[chosen & ~train].T, s=12, color=colors(c % 10), label=name, alpha=0.7)
        ax.scatter(*points[chosen & train].T, s=80, color=colors(c % 10), edgecolors="black")
    ax.set_title(f"GCN hidden layer on {graph.name} (large: labelled nodes)")
    ax.legend(fontsize="small", markerscale=1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
