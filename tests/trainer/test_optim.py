"""Parameter groups, every optimizer, Nesterov momentum and the L1 penalty."""

from __future__ import annotations

import copy
import pickle
import warnings

import pytest
import torch
from torch import nn

from seqkit.errors import UserError
from seqkit.trainer.config import TrainerConfig
from seqkit.trainer.optim import (
    OPTIMIZERS,
    WITHOUT_COMPILER_IMPORT,
    build_optimizer,
    l1_penalty,
    parameter_groups,
)


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


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_updates_exactly_as_torchs_decorated_class(name, monkeypatch):
    """seqkit's optimizers call torch's undecorated methods (no torch._dynamo import); the
    parameters, the state and the state dict must be torch's own, bit for bit."""
    config = TrainerConfig(optimizer=name, lr=0.05, weight_decay=0.01, momentum=0.9)
    torch.manual_seed(0)
    ours_model = TinyLM()
    torchs_model = TinyLM()
    torchs_model.load_state_dict(ours_model.state_dict())
    ours = build_optimizer(ours_model, config)
    monkeypatch.setattr(
        "seqkit.trainer.optim.WITHOUT_COMPILER_IMPORT",
        {cls: cls for cls in WITHOUT_COMPILER_IMPORT},
    )
    torchs = build_optimizer(torchs_model, config)
    assert type(torchs) in type(ours).__mro__ and type(ours) is not type(torchs)
    assert type(ours).__name__ == type(torchs).__name__
    for _ in range(3):
        for model, optimizer in ((ours_model, ours), (torchs_model, torchs)):
            optimizer.zero_grad()
            loss_of(model).backward()
            optimizer.step()
    for (key, mine), theirs in zip(
        ours_model.state_dict().items(), torchs_model.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs), key
    ours_state, torchs_state = ours.state_dict(), torchs.state_dict()
    assert ours_state["param_groups"] == torchs_state["param_groups"]
    for index, values in torchs_state["state"].items():
        for key, value in values.items():
            assert torch.equal(
                torch.as_tensor(ours_state["state"][index][key]), torch.as_tensor(value)
            )


def test_state_dict_round_trip_hooks_and_scheduler_work_without_the_decorators():
    model = TinyLM()
    optimizer = build_optimizer(model, TrainerConfig(lr=0.1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    calls = []
    optimizer.register_step_pre_hook(lambda *args: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *args: calls.append("post"))
    with warnings.catch_warnings():
        # Stepping the scheduler before the optimizer (whose step it must see) would warn.
        warnings.simplefilter("error")
        loss_of(model).backward()
        optimizer.step()
        scheduler.step()
    assert calls == ["pre", "post"]
    assert {g["lr"] for g in optimizer.param_groups} == {0.05}
    assert torch.is_grad_enabled()  # the step restored the grad mode

    restored = build_optimizer(copy.deepcopy(model), TrainerConfig(lr=0.1))
    restored.load_state_dict(optimizer.state_dict())
    assert restored.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    assert len(restored.state) == len(optimizer.state)
    # A user may pickle a whole optimizer (torch.save): the class must be importable by name.
    unpickled = pickle.loads(pickle.dumps(optimizer))
    assert type(unpickled) is type(optimizer)
    assert unpickled.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]


def test_a_closure_runs_with_gradients_and_its_loss_is_returned():
    model = TinyLM()
    optimizer = build_optimizer(model, TrainerConfig(optimizer="sgd", lr=0.1))

    def closure():
        optimizer.zero_grad()
        loss = loss_of(model)
        loss.backward()
        return loss

    before = model.proj.weight.clone()
    loss = optimizer.step(closure)
    assert loss.requires_grad
    assert not torch.equal(before, model.proj.weight)
