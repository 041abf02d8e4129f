"""Parameter groups, every optimizer, Nesterov momentum and the L1 penalty."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqkit.errors import UserError
from seqkit.trainer.config import TrainerConfig
from seqkit.trainer.optim import OPTIMIZERS, build_optimizer, l1_penalty, parameter_groups


class TinyLM(nn.Module):
    """Embedding tied to the head, a Linear+LayerNorm block, a BatchNorm and a frozen layer."""

    def __init__(self, vocab: int = 7, width: int = 4):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.proj = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.batch_norm = nn.BatchNorm1d(width)
        self.scale = nn.Parameter(torch.ones(width))  # a bare 1-D parameter
        self.frozen = nn.Linear(width, width)
        self.frozen.requires_grad_(False)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied: the head comes after the embedding

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.norm(torch.tanh(self.proj(self.embed(ids))))
        hidden = self.batch_norm(hidden.flatten(0, -2)).view_as(hidden) * self.scale
        return self.head(self.frozen(hidden))


class HeadFirst(nn.Module):
    """The tied parameter is met first through the Linear: no-decay must still win."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 7, bias=False)
        self.embed = nn.Embedding(7, 4)
        self.embed.weight = self.head.weight


def names_of(model: nn.Module, params: list[nn.Parameter]) -> set[str]:
    ids = {id(p) for p in params}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def loss_of(model: TinyLM) -> torch.Tensor:
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    return model(ids).square().mean()


def test_groups_split_decay_from_no_decay():
    model = TinyLM()
    groups = parameter_groups(model, weight_decay=0.1)
    assert [g["name"] for g in groups] == ["decay", "no_decay"]
    decay, no_decay = groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert names_of(model, decay["params"]) == {"proj.weight"}
    assert names_of(model, no_decay["params"]) == {
        "embed.weight",  # named_parameters lists the tied tensor once, under its first name
        "proj.bias",
        "norm.weight",
        "norm.bias",
        "batch_norm.weight",
        "batch_norm.bias",
        "scale",
    }
    # Every trainable parameter exactly once; the frozen layer nowhere.
    all_params = [p for g in groups for p in g["params"]]
    assert len(all_params) == len({id(p) for p in all_params})
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in all_params} == trainable


def test_tied_embedding_takes_no_decay_whichever_owner_comes_first():
    groups = parameter_groups(HeadFirst(), weight_decay=0.1)
    assert [g["name"] for g in groups] == ["no_decay"]  # the empty decay group is skipped
    assert len(groups[0]["params"]) == 1


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_builds_and_steps(name):
    torch.manual_seed(0)
    model = TinyLM()
    config = TrainerConfig(optimizer=name, lr=0.05, weight_decay=0.01)
    optimizer = build_optimizer(model, config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(2):
        optimizer.zero_grad()
        loss_of(model).backward()
        optimizer.step()
    after = model.state_dict()
    assert not torch.equal(before["proj.weight"], after["proj.weight"])
    assert not torch.equal(before["embed.weight"], after["embed.weight"])
    assert torch.equal(before["frozen.weight"], after["frozen.weight"])
    assert [g["name"] for g in optimizer.param_groups] == ["decay", "no_decay"]
    assert all(g["lr"] == 0.05 for g in optimizer.param_groups)


def test_adamw_decay_is_decoupled_and_spares_no_decay_params():
    # With zero gradients Adam's update is zero, so only decoupled decay moves the weights.
    model = TinyLM()
    optimizer = build_optimizer(model, TrainerConfig(lr=0.1, weight_decay=0.5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(model.proj.weight, before["proj.weight"] * (1 - 0.1 * 0.5))
    torch.testing.assert_close(model.embed.weight, before["embed.weight"])
    torch.testing.assert_close(model.norm.weight, before["norm.weight"])


def test_lr_argument_overrides_config():
    optimizer = build_optimizer(TinyLM(), TrainerConfig(lr=0.1), lr=0.003)
    assert {g["lr"] for g in optimizer.param_groups} == {0.003}


def test_sgd_nesterov_matches_the_formula():
    torch.manual_seed(0)
    model = nn.Linear(3, 2, bias=False)
    config = TrainerConfig(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True)
    optimizer = build_optimizer(model, config)
    assert optimizer.param_groups[0]["nesterov"] is True
    weight = model.weight.detach().clone()
    velocity = torch.zeros_like(weight)
    for gradient in (torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)):
        model.weight.grad = gradient.clone()
        optimizer.step()
        # Sutskever et al. 2013 in PyTorch's form: v = mu*v + g; w -= lr * (g + mu*v).
        velocity = 0.9 * velocity + gradient
        weight -= 0.1 * (gradient + 0.9 * velocity)
        torch.testing.assert_close(model.weight.detach(), weight)


def test_nesterov_without_momentum_is_a_user_error():
    config = TrainerConfig(optimizer="sgd", momentum=0.0, nesterov=True)
    with pytest.raises(UserError, match="momentum"):
        build_optimizer(TinyLM(), config)


def test_l1_penalty_value_and_gradient():
    model = TinyLM()
    penalty = l1_penalty(model)
    assert penalty.ndim == 0
    torch.testing.assert_close(penalty, model.proj.weight.abs().sum())
    penalty.backward()
    torch.testing.assert_close(model.proj.weight.grad, model.proj.weight.detach().sign())
    assert model.embed.weight.grad is None and model.norm.weight.grad is None


def test_l1_penalty_is_zero_without_decayed_weights():
    assert l1_penalty(nn.LayerNorm(4)).item() == 0.0


def test_unknown_optimizer_lists_the_valid_names():
    with pytest.raises(UserError, match="adamw, adam, sgd, rmsprop, adagrad"):
        build_optimizer(TinyLM(), TrainerConfig(optimizer="lion"))
