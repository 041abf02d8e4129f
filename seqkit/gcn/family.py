"""The ``gcn`` family: semi-supervised node classification with a GCN on the one Trainer.

Recipe → graph (a Planetoid folder such as ``../shared/data/cora``, or networkx's karate club by
default) → ``Â``'s edges and weights computed once →
:class:`~seqkit.gcn.task.NodeClassificationTask` (the whole graph is one batch; one optimizer
step is one epoch) → a Hub folder with the GCN and a picture of the learned node embedding,
``embedding.png``.

``seqkit evaluate RUN`` reloads the run's graph and prints the accuracy on its test nodes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seqkit.checks import MAX_DEPTH, MAX_WIDTH, check_ranges, count, probability
from seqkit.errors import UserError
from seqkit.export.model_card import write_model_card
from seqkit.gcn.data import Graph, GraphDataSection, load_graph
from seqkit.gcn.models import GCNConfig, GCNForNodeClassification
from seqkit.gcn.task import NodeClassificationTask, WholeGraph, first_item, graph_batch
from seqkit.parts.base import Job
from seqkit.recipes import Recipe, recipe_to_dict

logger = logging.getLogger(__name__)

MODEL_TYPES = (GCNConfig.model_type,)
DataSection = GraphDataSection
EMBEDDING_PLOT = "embedding.png"


@dataclass
class ModelSection:
    """The ``model`` section of a ``gcn`` recipe."""

    hidden_size: int = 16
    """Hidden units of each graph convolution but the last (the paper uses 16)."""
    num_layers: int = 2
    """Graph convolutions (the paper's model has 2)."""
    dropout: float = 0.5
    """Dropout on each layer's input (the paper uses 0.5)."""
    decay_first_layer_only: bool = True
    """Apply trainer.weight_decay to the first layer only, as the paper does."""

    def __post_init__(self) -> None:
        check_ranges(
            "model",
            self,
            {
                "hidden_size": count(1, MAX_WIDTH),
                "num_layers": count(1, MAX_DEPTH),
                "dropout": probability(),
            },
        )


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load the graph, build the GCN, and wrap both in the full-batch task."""
    graph = load_graph(recipe.data)
    torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
    model = GCNForNodeClassification(
        GCNConfig(
            num_features=graph.features.shape[1],
            hidden_size=section.hidden_size,
            num_classes=graph.num_classes,
            num_layers=section.num_layers,
            dropout=section.dropout,
            id2label=dict(enumerate(graph.class_names)),
        )
    )
    batch = graph_batch(graph)
    # Undirected edges without duplicates or self-loops, from the normalised edge list.
    num_edges = (batch["edge_index"].shape[1] - graph.num_nodes) // 2
    task = NodeClassificationTask(
        model, batch, decay_first_layer_only=section.decay_first_layer_only
    )

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        plot_embedding(model, batch, graph, folder / EMBEDDING_PLOT)
        # Early stopping may have restored earlier weights than the last evaluation saw: the
        # card reports the model it describes.
        metrics = {**metrics, **node_accuracies(model, batch, graph)}
        logger.info("test accuracy of the saved model: %.4f", metrics["test_accuracy"])
        write_model_card(
            folder,
            title=f"seqkit GCN ({recipe.source.stem if recipe.source else 'recipe'})",
            family="gcn",
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["gcn", "graph", "node-classification"],
            how_to_load=HOW_TO_LOAD,
            training_data=(
                f"{graph.name}: {graph.num_nodes} nodes, {num_edges} edges, "
                f"{int(graph.train_mask.sum())} labelled training nodes"
            ),
        )

    return Job(
        task=task,
        train_data=None,  # the task feeds the whole graph every step
        eval_data=WholeGraph(batch),
        collate_fn=first_item,
        save_final=save_final,
        summary={
            "graph": graph.name,
            "nodes / edges / features": (
                f"{graph.num_nodes} / {num_edges} / {graph.features.shape[1]}"
            ),
            "train / val / test nodes": (
                f"{int(graph.train_mask.sum())} / {int(graph.val_mask.sum())} / "
                f"{int(graph.test_mask.sum())}"
            ),
            "parameters": model.num_parameters(),
            "model": asdict(section),
        },
    )


HOW_TO_LOAD = """\
import seqkit  # registers every seqkit model type with the Auto classes
from seqkit.gcn.models import gcn_normalize
from transformers import AutoModel

model = AutoModel.from_pretrained("PATH").eval()
edge_index, edge_weight = gcn_normalize(edges, num_nodes)  # edges: (2, E), both directions
logits = model(features, edge_index, edge_weight).logits    # (num_nodes, num_classes)
# or, from the command line: seqkit evaluate RUN  (test accuracy on the run's graph)
"""


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
    hidden = model(batch["features"], batch["edge_index"], batch["edge_weight"]).hidden_states
    model.train(was_training)
    if model.config.num_layers == 1:
        hidden = model(batch["features"], batch["edge_index"], batch["edge_weight"]).logits
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


def load_pretrained(folder: Path) -> tuple[GCNForNodeClassification, None]:
    """``(model, None)``: a GCN has no tokenizer."""
    from seqkit.folders import load_weights

    return load_weights(GCNForNodeClassification, folder), None


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


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """Accuracy on the train, validation and test nodes of the run's graph."""
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its graph"
        )
    recipe = load_recipe(run_dir / "recipe.yaml")
    model, _ = load_pretrained(folder)
    graph = load_graph(recipe.data)
    if graph.features.shape[1] != model.config.num_features:
        raise UserError(
            f"the graph has {graph.features.shape[1]} features per node but the model expects "
            f"{model.config.num_features}"
        )
    metrics: dict[str, float] = node_accuracies(model, graph_batch(graph), graph)
    metrics["test_nodes"] = int(graph.test_mask.sum())
    return metrics
