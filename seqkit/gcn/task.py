"""Full-batch node classification on the one Trainer: the whole graph is one batch.

Semi-supervised training sees the whole graph every step (a node's prediction depends on its
neighbours, labelled or not) but takes its loss only over the labelled training nodes. So the
task draws its own batches (:meth:`NodeClassificationTask.train_batches`), the same graph every
step, and evaluation streams the same graph once through a one-item data set.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset

from seqkit.gcn.data import Graph
from seqkit.gcn.models import GCNForNodeClassification, gcn_normalize
from seqkit.trainer.tasks import Models, Task, only_model

SPARSE_BELOW = 0.1
"""Features with fewer non-zeros than this fraction travel as a sparse COO tensor."""


def graph_batch(graph: Graph) -> dict[str, torch.Tensor]:
    """The tensors a forward pass needs, with ``Â``'s edges and weights computed once."""
    edge_index, edge_weight = gcn_normalize(graph.edge_index, graph.num_nodes)
    features = graph.features
    if features.count_nonzero() < SPARSE_BELOW * features.numel():
        features = features.to_sparse_coo().coalesce()  # bag-of-words: ~1% non-zero on Cora
    return {
        "features": features,
        "edge_index": edge_index,
        "edge_weight": edge_weight,
        "labels": graph.labels,
        "train_mask": graph.train_mask,
        "val_mask": graph.val_mask,
        "test_mask": graph.test_mask,
    }


class WholeGraph(Dataset):
    """A data set of one item, the graph batch, for the Trainer's evaluation loop."""

    def __init__(self, batch: dict[str, torch.Tensor]):
        self.batch = batch

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.batch


def first_item(items: list) -> dict[str, torch.Tensor]:
    """Collate for :class:`WholeGraph`: the batch is the graph itself, not a stack of graphs."""
    return items[0]


def accuracy_counts(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor):
    """``(correct, total)`` over the nodes in ``mask``, for streaming evaluation."""
    correct = (logits[mask].argmax(-1) == labels[mask]).sum().float()
    return correct, int(mask.sum())


class NodeClassificationTask(Task):
    """Cross-entropy over the training nodes; accuracy on the train/val/test nodes.

    Args:
        model: the GCN.
        batch: :func:`graph_batch` of the graph.
        decay_first_layer_only: apply the recipe's weight decay to the first layer only, as
            Kipf & Welling do (with ``trainer.optimizer: adam`` that is their L2 penalty); the
            later layers are left free. Otherwise every weight matrix takes decay.
    """

    def __init__(
        self,
        model: GCNForNodeClassification,
        batch: dict[str, torch.Tensor],
        *,
        decay_first_layer_only: bool = True,
    ):
        super().__init__(model)
        self.batch = batch
        self.decay_first_layer_only = decay_first_layer_only

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
            "train_accuracy": accuracy_counts(out.logits, labels, batch["train_mask"]),
            "val_accuracy": accuracy_counts(out.logits, labels, val),
            "test_accuracy": accuracy_counts(out.logits, labels, batch["test_mask"]),
        }
