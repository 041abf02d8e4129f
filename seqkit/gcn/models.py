"""Graph convolutional networks for semi-supervised node classification.

Kipf & Welling 2017, "Semi-Supervised Classification with Graph Convolutional Networks" (ICLR).
One graph convolution mixes each node's features with its neighbours' and transforms them::

    H' = Â H W,    Â = D̃^-1/2 (A + I) D̃^-1/2,    D̃_ii = Σ_j (A + I)_ij

Adding the self-loops ``I`` keeps a node's own features in the mix; the symmetric normalisation
keeps the scale of ``Â H`` independent of the degrees (a plain ``A H`` would grow with them and
make deep stacks explode or vanish). The paper's model is two such layers::

    Z = softmax(Â · dropout(ReLU(Â · dropout(X) · W0)) · W1)

trained with cross-entropy on the few labelled nodes only, with dropout 0.5 and L2 weight decay
5e-4 on the first layer.

``Â`` is never built as a dense N×N matrix. It is an edge list with one weight per edge, and
``Â H`` is *message passing*: every edge (j → i) sends the message ``Â_ij · H_j``, and every node
sums the messages it receives (``index_add_``). Memory and time are O(E · F), so a graph with
millions of edges fits wherever its features do. Computing ``H W`` first and propagating the
narrow result (16 columns on Cora rather than 1,433) is the same product, far cheaper.

Shape legend: N nodes, E edges (self-loops included), F features, H hidden units, C classes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from seqkit.checks import MAX_DEPTH, MAX_WIDTH, check_ranges, count, probability
from seqkit.parts.base import ModelBuilder
from seqkit.recipes import Recipe


def gcn_normalize(edge_index: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges and weights of ``Â = D̃^-1/2 (A + I) D̃^-1/2`` from the edges of ``A``.

    Args:
        edge_index: (2, E) long tensor of (source, target) pairs; an undirected graph lists each
            edge in both directions. Existing self-loops and duplicate edges are dropped first,
            so every node ends up with exactly one self-loop of weight one in ``A + I``.
        num_nodes: N (nodes without edges still get their self-loop).

    Returns:
        ``(edge_index, edge_weight)``: (2, E') with the self-loops appended, and (E',) weights
        ``1 / sqrt(d̃_i d̃_j)``.
    """
    source, target = edge_index
    keep = source != target
    # Deduplicate by a single integer key per edge: unique() on (E,) is cheap and sorted.
    keys = torch.unique(source[keep] * num_nodes + target[keep])
    loops = torch.arange(num_nodes, device=edge_index.device)
    source = torch.cat([keys // num_nodes, loops])  # (E',)
    target = torch.cat([keys % num_nodes, loops])  # (E',)
    degree = torch.zeros(num_nodes, device=edge_index.device).index_add_(
        0, target, torch.ones_like(target, dtype=torch.float)
    )  # (N,) in-degree of A + I, at least 1 thanks to the self-loop
    inverse_sqrt = degree.rsqrt()
    weight = inverse_sqrt[source] * inverse_sqrt[target]  # (E',)
    return torch.stack([source, target]), weight


def propagate(hidden: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor):
    """``Â H`` by message passing: node i receives ``Σ_j Â_ij H_j`` over its edges (j → i)."""
    source, target = edge_index
    messages = hidden.index_select(0, source) * edge_weight[:, None]  # (E, H): one per edge
    return torch.zeros_like(hidden).index_add_(0, target, messages)  # (N, H)


def sparse_dropout(features: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout on the stored entries of a sparse COO matrix (a zero stays zero anyway).

    Bag-of-words features are ~1% non-zero; dropping out the dense matrix would draw random
    numbers for 99 zeros per useful entry.
    """
    if not training or p == 0:
        return features
    return torch.sparse_coo_tensor(
        features.indices(),
        F.dropout(features.values(), p, training=True),
        features.shape,
        is_coalesced=True,
        check_invariants=False,
    )


def sparse_matmul(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``X Wᵀ`` for a sparse COO ``X`` (N, F): each stored entry x_nf adds x_nf · W[:, f] to row n.

    The same gather-scale-scatter as :func:`propagate`, with features in place of neighbours.
    """
    rows, columns = features.indices()  # (nnz,), (nnz,)
    # index_select rather than weight.T[columns]: its backward is an index_add, far cheaper on
    # CPU than the sort-based accumulation behind advanced indexing. The transpose is made
    # contiguous first (a (F, H) copy): gathering rows of a strided view is ~10x slower.
    weight_rows = weight.T.contiguous()  # (F, H)
    contributions = weight_rows.index_select(0, columns) * features.values()[:, None]  # (nnz, H)
    out = torch.zeros(features.shape[0], weight.shape[0], dtype=weight.dtype, device=weight.device)
    return out.index_add_(0, rows, contributions)  # (N, H)


class GraphConvolution(nn.Module):
    """One GCN layer, ``Â H W + b`` (Kipf & Welling, eq. 2); ``H`` may be sparse COO."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        # The bias is added after propagation, as in the paper: it is per output unit, not
        # something to average over the neighbourhood.
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, hidden, edge_index, edge_weight):
        if hidden.is_sparse:
            transformed = sparse_matmul(hidden, self.linear.weight)  # (N, H)
        else:
            transformed = self.linear(hidden)  # (N, H)
        out = propagate(transformed, edge_index, edge_weight)  # transform, then mix
        return out if self.bias is None else out + self.bias


class GCNConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`GCNForNodeClassification`."""

    model_type = "seqkit-gcn"

    num_features: int = 1433
    """Input features per node F (Cora's bag of words has 1,433)."""
    hidden_size: int = 16
    """Hidden units H of every layer but the last (the paper uses 16)."""
    num_classes: int = 7
    """Output classes C."""
    num_layers: int = 2
    """Graph convolutions (the paper's model has 2; each one widens the receptive field by
    one hop)."""
    dropout: float = 0.5
    """Dropout on the input of every layer."""


@dataclass
class NodeClassificationOutput(ModelOutput):
    """Logits for every node, the loss over the labelled ones, and the last hidden layer."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: torch.Tensor | None = None


class GCNForNodeClassification(PreTrainedModel):
    """A stack of graph convolutions with ReLU between them, ending in class logits.

    ``forward(features, edge_index, edge_weight, labels=None, mask=None)``: ``features`` is a
    dense (N, F) tensor or a sparse COO one (bag-of-words), and the edges must be
    normalised already (:func:`gcn_normalize`), since the graph does not change between steps.
    With ``labels``, the loss is the cross-entropy over the nodes selected by ``mask``.
    """

    config_class = GCNConfig
    base_model_prefix = "gcn"
    main_input_name = "features"

    def __init__(self, config: GCNConfig) -> None:
        super().__init__(config)
        if config.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {config.num_layers}")
        widths = [config.num_features] + [config.hidden_size] * (config.num_layers - 1)
        widths.append(config.num_classes)
        self.layers = nn.ModuleList(
            GraphConvolution(w_in, w_out) for w_in, w_out in itertools.pairwise(widths)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Glorot (Xavier) uniform weights and zero biases, as in the paper."""
        if isinstance(module, GraphConvolution):
            init.xavier_uniform_(module.linear.weight)
            if module.bias is not None:
                init.zeros_(module.bias)

    def forward(
        self,
        features: torch.Tensor,
        edge_index: torch.Tensor,
        edge_weight: torch.Tensor,
        labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        **kwargs,
    ) -> NodeClassificationOutput:
        hidden = features  # (N, F)
        last_hidden = hidden
        for i, layer in enumerate(self.layers):
            if hidden.is_sparse:  # sparse input features: drop stored entries only
                dropped = sparse_dropout(hidden, self.config.dropout, self.training)
            else:
                dropped = self.dropout(hidden)
            hidden = layer(dropped, edge_index, edge_weight)  # (N, H) or (N, C)
            if i < len(self.layers) - 1:
                hidden = F.relu(hidden)
                last_hidden = hidden
        loss = None
        if labels is not None:
            selected = mask if mask is not None else torch.ones_like(labels, dtype=torch.bool)
            loss = F.cross_entropy(hidden[selected], labels[selected])
        return NodeClassificationOutput(loss=loss, logits=hidden, hidden_states=last_hidden)


@dataclass
class GCNBuilder(ModelBuilder):
    """The ``model`` section of a recipe that trains a GCN (``model.architecture: gcn``)."""

    hidden_size: int = 16
    """Hidden units of each graph convolution but the last (the paper uses 16)."""
    num_layers: int = 2
    """Graph convolutions (the paper's model has 2)."""
    dropout: float = 0.5
    """Dropout on each layer's input (the paper uses 0.5)."""
    decay_first_layer_only: bool = True
    """Apply trainer.weight_decay to the first layer only, as the paper does."""

    heads: ClassVar[dict[str, type]] = {"node-classification": GCNForNodeClassification}
    shape_fields: ClassVar[dict[str, str]] = {
        "hidden_size": "hidden_size",
        "num_layers": "num_layers",
    }
    tags: ClassVar[tuple[str, ...]] = ("gcn", "graph")

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

    def config(self, task: str, facts: dict[str, Any]) -> GCNConfig:
        return GCNConfig(
            num_features=facts["num_features"],
            hidden_size=self.hidden_size,
            num_classes=facts["num_classes"],
            num_layers=self.num_layers,
            dropout=self.dropout,
            id2label=dict(enumerate(facts["class_names"])),
        )

    def window(self, config: Any) -> tuple[int, int | None]:
        return 1, None  # the whole graph is the one example; there is no window to cut

    def task_settings(self, recipe: Recipe) -> dict[str, Any]:
        return {"decay_first_layer_only": self.decay_first_layer_only}
