"""Planetoid files through the restricted unpickler, planted pickles, bad graphs, karate club."""

from __future__ import annotations

import os
import pickle
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from seqkit.errors import UserError
from seqkit.gcn.data import karate_club, load_planetoid, restricted_load

CLASSES, PER_CLASS, FEATURES = 3, 20, 6


def write_planetoid(folder, name="tiny", *, num_nodes=600, graph=None, ally_rows=None):
    """A Planetoid data set in the original layout, pickled by scipy/numpy themselves."""
    rng = np.random.default_rng(0)
    labels = np.eye(CLASSES)[rng.integers(0, CLASSES, num_nodes)]
    features = sp.csr_matrix((rng.random((num_nodes, FEATURES)) < 0.3).astype(np.float32))
    num_test = 40  # the 560 nodes before them hold the public split: 60 train, 500 validation
    test_ids = np.arange(num_nodes - num_test, num_nodes)
    rest = num_nodes - num_test
    train = CLASSES * PER_CLASS
    order = test_ids[::-1]  # tx/ty rows follow test.index, which need not be sorted
    parts = {
        "x": features[:train],
        "y": labels[:train],
        "allx": features[:rest],
        "ally": labels[: ally_rows or rest],
        "tx": features[order],
        "ty": labels[order],
        "graph": graph
        if graph is not None
        else defaultdict(list, {i: [(i + 1) % num_nodes] for i in range(num_nodes)}),
    }
    for part, value in parts.items():
        (folder / f"ind.{name}.{part}").write_bytes(pickle.dumps(value, protocol=2))
    (folder / f"ind.{name}.test.index").write_text("\n".join(map(str, order)) + "\n")
    return labels, test_ids


def test_planetoid_split_and_features(tmp_path):
    labels, test_ids = write_planetoid(tmp_path)
    graph = load_planetoid(tmp_path)
    assert graph.num_nodes == 600 and graph.num_classes == CLASSES
    assert int(graph.train_mask.sum()) == CLASSES * PER_CLASS
    assert int(graph.val_mask.sum()) == 500
    assert graph.test_mask.nonzero().flatten().tolist() == test_ids.tolist()
    assert graph.labels.tolist() == labels.argmax(1).tolist()
    sums = graph.features.sum(1)
    assert np.allclose(sums[sums > 0], 1.0)  # row-normalised bag of words
    assert graph.edge_index.shape[1] == 2 * 600  # both directions


class _Planted:
    """Unpickling this would run ``os.system`` (a real attack's shape)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_planted_malicious_pickle_is_refused_before_it_runs(tmp_path):
    write_planetoid(tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / "ind.tiny.graph").write_bytes(pickle.dumps(_Planted(marker), protocol=2))
    with pytest.raises(UserError, match="refusing to load it"):
        load_planetoid(tmp_path)
    assert not marker.exists()
    # Hidden inside an allowed container, and via a codec other than latin-1: still refused.
    nested = pickle.dumps(defaultdict(list, {0: [_Planted(marker)]}), protocol=2)
    (tmp_path / "nested").write_bytes(nested)
    with pytest.raises(UserError, match=r"(posix|os|nt)\.system"):
        restricted_load(tmp_path / "nested")
    (tmp_path / "zlib").write_bytes(
        b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R."
    )
    with pytest.raises(UserError):
        restricted_load(tmp_path / "zlib")
    assert not marker.exists()


def test_edges_to_missing_nodes_are_refused(tmp_path):
    write_planetoid(tmp_path, graph=defaultdict(list, {0: [1], 1: [9999]}))
    with pytest.raises(UserError, match="edge points to node 9999"):
        load_planetoid(tmp_path)
    write_planetoid(tmp_path, graph=defaultdict(list, {0: [1], 2: [-3]}))
    with pytest.raises(
        UserError, match=r"edge points to node -3, but the graph has nodes 0\.\.599"
    ):
        load_planetoid(tmp_path)


def test_features_and_labels_of_different_lengths_are_refused(tmp_path):
    write_planetoid(tmp_path, ally_rows=100)
    with pytest.raises(UserError, match="different lengths"):
        load_planetoid(tmp_path)


def test_a_graph_with_fewer_labels_than_nodes_is_refused():
    graph = karate_club()
    graph.labels = graph.labels[:30]
    with pytest.raises(UserError, match="34 nodes have features but 30 have labels"):
        graph.check()


def test_karate_club_has_one_label_per_side():
    graph = karate_club()
    assert graph.num_nodes == 34 and graph.class_names == ["Mr. Hi", "Officer"]
    assert graph.train_mask.nonzero().flatten().tolist() == [0, 33]
    assert graph.labels[0] != graph.labels[33]
    assert graph.edge_index.shape[1] == 2 * 78


def test_a_hub_data_set_of_planetoid_files_loads_like_a_local_folder(tmp_path, monkeypatch):
    import huggingface_hub

    from seqkit.gcn.data import GraphDataSection, load_graph

    repo = tmp_path / "snapshot"
    (repo / "raw").mkdir(parents=True)  # files in a subfolder, as many repos keep them
    write_planetoid(repo / "raw", num_nodes=600)
    asked = {}

    def fake_snapshot_download(repo_id, **options):
        asked.update(repo_id=repo_id, **options)
        return str(repo)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    graph = load_graph(GraphDataSection(hub="someone/planetoid-tiny", embedded=None))
    local = load_planetoid(repo / "raw")
    assert torch.equal(graph.features, local.features)
    assert asked["repo_id"] == "someone/planetoid-tiny" and asked["repo_type"] == "dataset"
    assert all("ind." in pattern for pattern in asked["allow_patterns"])  # nothing else fetched

    (repo / "raw" / "ind.tiny.graph").unlink()
    with pytest.raises(UserError, match="holds no Planetoid files"):
        load_graph(GraphDataSection(hub="someone/planetoid-tiny", embedded=None))


def test_an_unreachable_hub_data_set_is_one_line(monkeypatch):
    from seqkit.gcn.data import GraphDataSection, load_graph

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with pytest.raises(UserError, match="cannot download Planetoid files from Hub data set"):
        load_graph(GraphDataSection(hub="no-such-user/no-such-planetoid", embedded=None))
