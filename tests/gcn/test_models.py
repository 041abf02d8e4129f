"""GCN layers against the dense formula of Kipf & Welling: Â = D̃^-1/2 (A + I) D̃^-1/2."""

from __future__ import annotations

import torch

from seqkit.gcn.models import (
    GCNConfig,
    GCNForNodeClassification,
    gcn_normalize,
    propagate,
    sparse_matmul,
)


def _random_graph(num_nodes=12, num_edges=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    return torch.cat([edges, edges.flip(0)], dim=1)  # undirected, with duplicates and loops


def _dense_normalized(edge_index, n):
    a = torch.zeros(n, n)
    a[edge_index[1], edge_index[0]] = 1.0  # row = target, column = source
    a.fill_diagonal_(0)
    a = a + torch.eye(n)
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def test_message_passing_equals_dense_normalized_adjacency():
    n = 12
    edges = _random_graph(n)
    edge_index, weight = gcn_normalize(edges, n)
    hidden = torch.randn(n, 5)
    expected = _dense_normalized(edges, n) @ hidden
    assert torch.allclose(propagate(hidden, edge_index, weight), expected, atol=1e-6)
    # one self-loop per node, duplicates gone
    loops = edge_index[0] == edge_index[1]
    assert int(loops.sum()) == n
    assert len({tuple(e) for e in edge_index.T.tolist()}) == edge_index.shape[1]


def test_sparse_features_give_the_same_logits_and_gradients_as_dense():
    n, f = 10, 20
    torch.manual_seed(0)
    features = (torch.rand(n, f) < 0.2).float() * torch.rand(n, f)
    weight = torch.randn(4, f, requires_grad=True)
    sparse = features.to_sparse_coo().coalesce()
    assert torch.allclose(sparse_matmul(sparse, weight), features @ weight.T, atol=1e-6)

    model = GCNForNodeClassification(GCNConfig(num_features=f, hidden_size=8, num_classes=3))
    model.eval()
    edge_index, edge_weight = gcn_normalize(_random_graph(n, 25, seed=1), n)
    labels = torch.randint(0, 3, (n,))
    dense_out = model(features, edge_index, edge_weight, labels=labels)
    dense_out.loss.backward()
    dense_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sparse_out = model(sparse, edge_index, edge_weight, labels=labels)
    sparse_out.loss.backward()
    assert torch.allclose(dense_out.logits, sparse_out.logits, atol=1e-5)
    for a, p in zip(dense_grads, model.parameters(), strict=True):
        assert torch.allclose(a, p.grad, atol=1e-5)


def test_loss_uses_only_masked_nodes_and_model_round_trips(tmp_path):
    n = 8
    model = GCNForNodeClassification(GCNConfig(num_features=n, hidden_size=4, num_classes=2))
    model.eval()
    edge_index, weight = gcn_normalize(_random_graph(n, 10), n)
    features, labels = torch.eye(n), torch.randint(0, 2, (n,))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[:3] = True
    out = model(features, edge_index, weight, labels=labels, mask=mask)
    expected = torch.nn.functional.cross_entropy(out.logits[:3], labels[:3])
    assert torch.allclose(out.loss, expected)
    model.save_pretrained(tmp_path)
    loaded = GCNForNodeClassification.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded(features, edge_index, weight).logits, out.logits)


def test_a_graph_with_a_million_edges_never_builds_the_dense_adjacency():
    """200,000 nodes: a dense Â would be 160 GB of float32; message passing needs O(E · H)."""
    n, e = 200_000, 1_000_000
    g = torch.Generator().manual_seed(0)
    edges = torch.randint(0, n, (2, e), generator=g)
    edge_index, weight = gcn_normalize(torch.cat([edges, edges.flip(0)], dim=1), n)
    assert edge_index.shape[1] <= 2 * e + n and int((edge_index[0] == edge_index[1]).sum()) == n
    hidden = torch.randn(n, 4, generator=g)
    out = propagate(hidden, edge_index, weight)
    # Spot-check one node against its neighbourhood sum: Â_ii h_i + Σ_j Â_ij h_j.
    node = int(edges[1, 0])
    incoming = edge_index[1] == node
    expected = (weight[incoming, None] * hidden[edge_index[0, incoming]]).sum(0)
    assert torch.allclose(out[node], expected, atol=1e-5)
