"""Graphs for node classification: Planetoid files (Cora, CiteSeer, PubMed) and the karate club.

**Planetoid** (Yang, Cohen & Salakhutdinov 2016, "Revisiting Semi-Supervised Learning with Graph
Embeddings"; the split every GCN paper reports on) stores a data set as eight files
``ind.NAME.{x,y,tx,ty,allx,ally,graph,test.index}``: sparse bag-of-words features and one-hot
labels of the training nodes (x, y), of the test nodes (tx, ty) and of every node that is not a
test node (allx, ally), the adjacency lists (graph) and the test nodes' ids (test.index). The
public split trains on the first 20 nodes per class (x), validates on the next 500 and tests on
the 1,000 listed test nodes.

Those files are Python 2 pickles, and unpickling runs whatever code the file names. They are
read here by :class:`RestrictedUnpickler`, which admits exactly the numpy/scipy/collections
types a Planetoid file holds and refuses everything else before it is called, so a planted file
cannot run code; the sparse matrices are not even built by scipy, only their arrays are read.

**Karate club** (Zachary 1977, shipped with networkx): 34 members of a club that split in two.
The classic semi-supervised demo labels one member of each side (the instructor, node 0, and the
administrator, node 33), gives every node a one-hot identity as its features, and asks the GCN
to place the other 32.

:class:`GraphData` is the ``graph`` data module (:mod:`seqkit.parts`): the recipe's graph with
``Â``'s edges and weights computed once, as one batch. Semi-supervised training sees the whole
graph every step (a node's prediction depends on its neighbours, labelled or not), so the task
draws that batch itself, and evaluation streams it once through a one-item data set.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit.errors import UserError
from seqkit.gcn.models import gcn_normalize
from seqkit.parts.base import DataModule, Prepared
from seqkit.recipes import DataSection

PLANETOID_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph")
NUM_VALIDATION = 500
MAX_DENSE_FEATURES = 2**28
"""Most entries (nodes × features) a Planetoid feature matrix may have once dense: 1 GiB of
float32, over 20 times PubMed's (19,717 × 500), the largest public one. A sparse matrix states
its width (and test.index its node ids) without storing them, so a damaged or hostile file could
otherwise ask for terabytes and be killed for memory instead of refused."""


@dataclass
class GraphDataSection(DataSection):
    """The ``data`` section of a graph recipe: which graph, and its split."""

    path: str | None = None
    """A Planetoid folder holding ind.NAME.* files (e.g. ../shared/data/cora). Wins over
    embedded."""
    name: str | None = None
    """The NAME in ind.NAME.*; default: the only data set in the folder."""
    embedded: str | None = "karate"
    """A graph shipped with an installed package: karate (networkx's Zachary karate club)."""
    normalize_features: bool = True
    """Scale each node's features to sum to one (the paper's preprocessing of bag-of-words)."""


@dataclass
class Graph:
    """One graph with its node split. Edges list both directions of every undirected edge."""

    features: torch.Tensor
    """(N, F) float node features."""
    edge_index: torch.Tensor
    """(2, E) long (source, target) pairs, no self-loops."""
    labels: torch.Tensor
    """(N,) long class of every node (only the masked ones are used for training)."""
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    class_names: list[str]
    name: str

    @property
    def num_nodes(self) -> int:
        return self.features.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check(self) -> Graph:
        """Refuse inconsistent inputs with one line naming what is wrong."""
        n = self.num_nodes
        if self.labels.shape[0] != n:
            raise UserError(
                f"{self.name}: {n} nodes have features but {self.labels.shape[0]} have labels"
            )
        if self.edge_index.numel() and (self.edge_index.min() < 0 or self.edge_index.max() >= n):
            low, high = int(self.edge_index.min()), int(self.edge_index.max())
            bad = high if high >= n else low
            raise UserError(
                f"{self.name}: an edge points to node {bad}, but the graph has nodes 0..{n - 1}"
            )
        for split in ("train", "val", "test"):
            if not getattr(self, f"{split}_mask").any():
                raise UserError(f"{self.name}: the {split} split is empty")
        return self


# ------------------------------------------------------------------------ restricted unpickling


class _SparseMatrixState:
    """Stands in for ``scipy.sparse.csr_matrix`` while unpickling: keeps the pickled state
    (``data``, ``indices``, ``indptr``, ``_shape``) as plain attributes and runs no scipy code."""

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("a sparse matrix's state must be a dict")
        self.state = state

    def to_dense(self) -> np.ndarray:
        try:
            data, indices, indptr = (
                np.asarray(self.state[k]) for k in ("data", "indices", "indptr")
            )
            rows, cols = self.state.get("_shape") or self.state["shape"]
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"sparse matrix with missing or malformed parts ({error})") from None
        if not (isinstance(rows, int) and isinstance(cols, int) and rows >= 0 and cols >= 0):
            raise UserError(f"sparse matrix with a malformed shape ({rows!r}, {cols!r})")
        check_dense_size(rows, cols, "sparse matrix")
        if indptr.ndim != 1 or len(indptr) != rows + 1 or indices.shape != data.shape:
            raise UserError("sparse matrix with inconsistent parts (indptr/indices/data)")
        # CSR row pointers: row r holds entries indptr[r]:indptr[r + 1], so they start at 0,
        # never go backwards and end at the number of stored entries.
        if rows and (indptr[0] != 0 or indptr[-1] != data.size or (np.diff(indptr) < 0).any()):
            raise UserError("sparse matrix whose row pointers (indptr) are not a valid CSR index")
        dense = np.zeros((rows, cols), dtype=np.float32)
        row_of = np.repeat(np.arange(rows), np.diff(indptr))
        if indices.size and (indices.min() < 0 or indices.max() >= cols):
            raise UserError("sparse matrix with column indices out of range")
        dense[row_of, indices] = data
        return dense


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes, latin-1 only (other
    codecs, such as zlib, have no business in a Planetoid file)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only names a Planetoid pickle may mention, and what each one becomes."""
    from collections import defaultdict

    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own array reconstructor
    return {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("scipy.sparse.csr", "csr_matrix"): _SparseMatrixState,
        ("scipy.sparse._csr", "csr_matrix"): _SparseMatrixState,
        ("_codecs", "encode"): _latin1_bytes,
        ("collections", "defaultdict"): defaultdict,
        ("__builtin__", "list"): list,
        ("builtins", "list"): list,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :func:`_allowed_globals` and refuses any other name.

    Every callable a pickle can invoke (REDUCE, NEWOBJ, INST, OBJ, extension codes) reaches it
    through ``find_class``, so refusing names there means a malicious file fails before any of
    its code is called. ``persistent_load`` is left undefined: persistent ids are refused too.
    """

    def __init__(self, file, what: str):
        super().__init__(file, encoding="latin1")  # Python 2 pickles: numpy bytes as latin-1
        self.what = what
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UserError(
                f"{self.what} refers to {module}.{name}, which a Planetoid file never holds; "
                "refusing to load it (it may be malicious)"
            ) from None


def restricted_load(path: Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; every failure is a UserError."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    try:
        value = RestrictedUnpickler(io.BytesIO(data), str(path)).load()
    except UserError:
        raise
    except Exception as error:  # a truncated or garbled pickle raises many different types
        raise UserError(f"{path} is not a readable Planetoid pickle ({error})") from None
    if isinstance(value, np.ndarray) and value.dtype == object:
        raise UserError(f"{path} holds an array of Python objects, not numbers")
    return value


# ------------------------------------------------------------------------ Planetoid


def check_dense_size(rows: int, cols: int, what: str, columns: str = "features") -> None:
    """Refuse dense matrices of more than :data:`MAX_DENSE_FEATURES` entries in all before they
    are allocated."""
    if rows * cols > MAX_DENSE_FEATURES:
        raise UserError(
            f"{what} of {rows:,} × {cols:,} {columns} is too large to load (at most "
            f"{MAX_DENSE_FEATURES:,} entries; PubMed, the largest public Planetoid set, has "
            "19,717 × 500)"
        )


def _dense(value: Any, what: str) -> np.ndarray:
    if isinstance(value, _SparseMatrixState):
        return value.to_dense()
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return value.astype(np.float32)
    raise UserError(f"{what} should hold a matrix, got {type(value).__name__}")


def _one_hot_labels(value: Any, what: str) -> np.ndarray:
    """Planetoid labels are one row per node, one column per class (one-hot)."""
    try:
        with np.errstate(all="ignore"):  # huge numbers become inf, refused below
            labels = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError, OverflowError):  # ragged lists, objects that are not numbers
        raise UserError(f"{what} should hold a one-hot label matrix") from None
    if not np.isfinite(labels).all():
        raise UserError(f"{what} holds labels that are not finite numbers")
    if labels.ndim != 2:
        raise UserError(
            f"{what} should hold a one-hot label matrix (nodes × classes), got {labels.ndim}-D"
        )
    return labels


def _planetoid_name(folder: Path, name: str | None) -> str:
    if name:
        return name
    names = sorted({p.name.split(".")[1] for p in folder.glob("ind.*.graph")})
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise UserError(
            f"data.path {folder}: expected one Planetoid data set (ind.NAME.graph), found "
            f"{found}; set data.name"
        )
    return names[0]


def load_planetoid(folder: Path, name: str | None = None, normalize: bool = True) -> Graph:
    """Read a Planetoid data set with the public split (20 per class / 500 / 1,000)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"data.path {folder} is not a folder of Planetoid files")
    name = _planetoid_name(folder, name)
    parts = {}
    for part in PLANETOID_PARTS:
        path = folder / f"ind.{name}.{part}"
        if not path.is_file():
            raise UserError(f"missing Planetoid file {path}")
        parts[part] = restricted_load(path)
    index_path = folder / f"ind.{name}.test.index"
    try:
        test_index = np.array([int(line) for line in index_path.read_text().split()], dtype=int)
    except FileNotFoundError:
        raise UserError(f"missing Planetoid file {index_path}") from None
    except ValueError:
        raise UserError(f"{index_path} must hold one node id per line") from None

    x, allx, tx = (_dense(parts[k], f"ind.{name}.{k}") for k in ("x", "allx", "tx"))
    y, ally, ty = (_one_hot_labels(parts[k], f"ind.{name}.{k}") for k in ("y", "ally", "ty"))
    if not y.shape[1] == ally.shape[1] == ty.shape[1]:
        raise UserError(
            f"{name}: y, ally and ty declare different numbers of classes "
            f"({y.shape[1]}, {ally.shape[1]}, {ty.shape[1]})"
        )
    for feats, labels, k in ((x, y, "x/y"), (allx, ally, "allx/ally"), (tx, ty, "tx/ty")):
        if feats.shape[0] != labels.shape[0]:
            raise UserError(
                f"{name}: features and labels of different lengths in {k} "
                f"({feats.shape[0]} vs {labels.shape[0]})"
            )
    if len(test_index) != tx.shape[0]:
        raise UserError(
            f"{name}: test.index lists {len(test_index)} nodes but tx has {tx.shape[0]} rows"
        )
    if len(test_index) and int(test_index.min()) < allx.shape[0]:
        raise UserError(
            f"{name}: test.index lists node {int(test_index.min())}, one of the "
            f"{allx.shape[0]} nodes of allx; test nodes must come after them"
        )
    if len(np.unique(test_index)) != len(test_index):
        raise UserError(f"{name}: test.index lists a node more than once")
    if y.shape[0] + NUM_VALIDATION > allx.shape[0]:
        raise UserError(
            f"{name}: allx has {allx.shape[0]} nodes, fewer than the {y.shape[0]} training and "
            f"{NUM_VALIDATION} validation nodes of the public split"
        )
    # Test nodes sit at the ids in test.index, after all other nodes. CiteSeer's index has
    # gaps (isolated nodes without features); they get zero features and no label, as in the
    # reference preprocessing, so the node ids of the graph stay valid.
    num_nodes = max(allx.shape[0], int(test_index.max()) + 1)
    # Both matrices below have a row per node: their columns together bound the allocation.
    where = f"{name}: test.index names node {num_nodes - 1:,}; a graph"
    check_dense_size(num_nodes, allx.shape[1] + ally.shape[1], where, "feature and label columns")
    features = np.zeros((num_nodes, allx.shape[1]), dtype=np.float32)
    onehot = np.zeros((num_nodes, ally.shape[1]), dtype=np.float32)
    features[: allx.shape[0]], onehot[: ally.shape[0]] = allx, ally
    features[test_index], onehot[test_index] = tx, ty
    if normalize:
        sums = features.sum(1, keepdims=True)
        features = features / np.where(sums == 0, 1, sums)

    graph = parts["graph"]
    if not isinstance(graph, dict):
        raise UserError(f"ind.{name}.graph should hold adjacency lists, got {type(graph).__name__}")
    try:
        edges = [(int(s), int(t)) for s, targets in graph.items() for t in targets]
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"ind.{name}.graph must map node ids to lists of node ids") from None
    # An id outside 0..num_nodes-1 is refused by Graph.check, naming it; one beyond int64 would
    # not even become a tensor, so it is named here.
    for edge in edges:
        for node in edge:
            if not -(2**63) <= node < 2**63:
                raise UserError(
                    f"{name}: an edge points to node {node}, but the graph has nodes "
                    f"0..{num_nodes - 1}"
                )
    edge_index = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).T
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # undirected: both ways

    def mask(ids) -> torch.Tensor:
        m = torch.zeros(num_nodes, dtype=torch.bool)
        m[torch.as_tensor(ids, dtype=torch.long)] = True
        return m

    num_train = y.shape[0]
    return Graph(
        features=torch.from_numpy(features),
        edge_index=edge_index,
        labels=torch.from_numpy(onehot.argmax(1)),
        train_mask=mask(range(num_train)),
        val_mask=mask(range(num_train, num_train + NUM_VALIDATION)),
        test_mask=mask(test_index),
        class_names=[str(c) for c in range(onehot.shape[1])],
        name=name,
    ).check()


# ------------------------------------------------------------------------ karate club


def karate_club() -> Graph:
    """Zachary's karate club: one labelled member per side, the other 32 to place.

    The validation and test masks are the same 32 nodes: with two labels there is nothing to
    tune on, and reporting the same nodes twice is more honest than pretending otherwise.
    """
    import networkx as nx

    club = nx.karate_club_graph()
    sides = sorted({club.nodes[n]["club"] for n in club})  # ['Mr. Hi', 'Officer']
    labels = torch.tensor([sides.index(club.nodes[n]["club"]) for n in club])
    edges = torch.tensor(list(club.edges()), dtype=torch.long).T
    n = club.number_of_nodes()
    train = torch.zeros(n, dtype=torch.bool)
    train[[0, n - 1]] = True  # the instructor and the administrator
    return Graph(
        features=torch.eye(n),
        edge_index=torch.cat([edges, edges.flip(0)], dim=1),
        labels=labels,
        train_mask=train,
        val_mask=~train,
        test_mask=~train,
        class_names=sides,
        name="karate",
    ).check()


def download_planetoid(repo_id: str) -> Path:
    """The folder of raw Planetoid files (``ind.NAME.*``, anywhere in the repository) of a Hub
    data-set repository, downloaded once into the Hub cache (``HF_HUB_OFFLINE=1`` reads that
    cache only). Only those files are fetched, and they are read like local ones: through the
    restricted unpickler."""
    from huggingface_hub import snapshot_download

    hint = "point data.path at a folder of ind.NAME.* files"
    try:
        folder = snapshot_download(
            repo_id, repo_type="dataset", allow_patterns=["ind.*", "**/ind.*"]
        )
    except Exception:  # offline, unknown repository, no permission: one fix for all
        raise UserError(
            f"cannot download Planetoid files from Hub data set {repo_id!r} (offline or "
            f"unknown); {hint}"
        ) from None
    graphs = sorted(Path(folder).rglob("ind.*.graph"))
    if not graphs:
        raise UserError(
            f"Hub data set {repo_id!r} holds no Planetoid files (ind.NAME.graph); {hint}"
        )
    return graphs[0].parent


def load_graph(section: GraphDataSection) -> Graph:
    """The graph a recipe's ``data`` section names: a Planetoid folder (local, or a Hub data
    set's), or an embedded one."""
    if section.hub and not section.path:
        folder = download_planetoid(section.hub)
        return load_planetoid(folder, section.name, section.normalize_features)
    if section.path:
        return load_planetoid(Path(section.path), section.name, section.normalize_features)
    if section.embedded == "karate":
        return karate_club()
    raise UserError(f"data.embedded must be karate (or set data.path), got {section.embedded!r}")


# ----------------------------------------------------------------------------- the data module

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


class GraphData(DataModule):
    """``data.module: graph``: one graph (a Planetoid folder, a Hub data set's, or networkx's
    karate club) and its node split. No tokenizer: node features are the model's input.

    Facts: ``num_features``, ``num_classes``, ``class_names``, and the ``graph`` with its
    ``batch`` (:func:`graph_batch`) for the task, which trains on that one batch."""

    Section = GraphDataSection
    no_data_files = (
        "--data is not supported for a graph model; seqkit evaluate RUN scores the run's "
        "graph (set data.path in a recipe to train on another)"
    )

    @cached_property
    def graph(self) -> Graph:
        """The recipe's graph, read once (facts and prepare both need it)."""
        return load_graph(self.data)

    @cached_property
    def batch(self) -> dict[str, torch.Tensor]:
        """The graph as the model's input tensors, built once."""
        return graph_batch(self.graph)

    def facts(self, tokenizer: Any) -> dict[str, Any]:
        graph = self.graph
        return {
            "num_features": graph.features.shape[1],
            "num_classes": graph.num_classes,
            "class_names": list(graph.class_names),
            "graph": graph,
            "batch": self.batch,
        }

    def prepare(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        graph, batch = self.graph, self.batch
        # Undirected edges without duplicates or self-loops, from the normalised edge list.
        num_edges = (batch["edge_index"].shape[1] - graph.num_nodes) // 2
        return Prepared(
            train_data=None,  # the task feeds the whole graph every step
            eval_data=WholeGraph(batch),
            collate_fn=first_item,
            summary={
                "graph": graph.name,
                "nodes / edges / features": (
                    f"{graph.num_nodes} / {num_edges} / {graph.features.shape[1]}"
                ),
                "train / val / test nodes": (
                    f"{int(graph.train_mask.sum())} / {int(graph.val_mask.sum())} / "
                    f"{int(graph.test_mask.sum())}"
                ),
            },
        )

    def card_tags(self, tokenizer: Any) -> list[str]:
        return ["graph"]
