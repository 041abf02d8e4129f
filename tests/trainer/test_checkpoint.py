"""Pickle-free checkpoints: exact tree round trips, RNG states, weights and the manager."""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from seqkit.errors import UserError
from seqkit.trainer.checkpoint import (
    COMPLETE,
    CheckpointManager,
    capture_rng_state,
    load_module_weights,
    load_trainer_state,
    load_tree,
    restore_rng_state,
    save_module_weights,
    save_tree,
)


def assert_identical(a, b, path="root"):
    """Equal values *and* types, recursively; tensors equal in dtype, shape and bits."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert type(key) is type(next(k for k in b if k == key)), f"{path}: key {key!r}"
            assert_identical(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


def round_trip(tree, directory, name="tree"):
    save_tree(tree, directory, name)
    return load_tree(directory, name)


def assert_no_pickle(directory):
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert file.suffix in (".json", ".safetensors") or file.name == COMPLETE, file
        assert not file.read_bytes().startswith(b"\x80"), file  # the pickle protocol opcode


def test_tree_round_trip_keeps_types_and_values(tmp_path):
    base = torch.arange(12, dtype=torch.float32)
    tree = {
        "none": None,
        "flags": [True, False],
        "numbers": (1, -(2**40), 0.1, float("inf"), float("nan")),
        "text": "ünïcode",
        3: "int key",
        (1, "a"): "tuple key",
        "nested": {"empty_list": [], "empty_tuple": (), "empty_dict": {}},
        "tensors": {
            "bf16": torch.randn(2, 3).to(torch.bfloat16),
            "int64": torch.tensor([1, 2, 3]),
            "bool": torch.tensor([True, False]),
            "scalar": torch.tensor(5.0),
            "empty": torch.zeros(0, 4),
            # views of one storage: safetensors refuses shared memory unless copied
            "view": base[2:6],
            "transposed": base.view(3, 4).t(),
            "whole": base,
            "same_again": base,
        },
        # a user dict that looks like one of the format's markers
        "tricky": {"__tensor__": "not a reference"},
    }
    loaded = round_trip(tree, tmp_path)
    assert_identical(tree, loaded)
    assert_no_pickle(tmp_path)


def test_optimizer_states_round_trip_and_resume_exactly(tmp_path):
    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))

    def train(model, optimizer, steps, seed):
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            optimizer.zero_grad()
            model(torch.randn(5, 3, generator=generator)).square().mean().backward()
            optimizer.step()

    builders = {
        "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
        "adamw_fused": lambda p: torch.optim.AdamW(p, lr=0.01, fused=True),
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1),  # momentum_buffer is None
        "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5),
        "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),
    }
    for name, build in builders.items():
        model = make()
        optimizer = build(model.parameters())
        train(model, optimizer, 3, seed=1)
        state = optimizer.state_dict()
        loaded = round_trip(state, tmp_path, name)
        assert_identical(state, loaded)

        # Continuing from the loaded state gives the same weights as never stopping.
        copy = make()
        copy.load_state_dict(model.state_dict())
        copy_optimizer = build(copy.parameters())
        copy_optimizer.load_state_dict(loaded)
        train(model, optimizer, 2, seed=2)
        train(copy, copy_optimizer, 2, seed=2)
        for a, b in zip(model.parameters(), copy.parameters(), strict=True):
            assert torch.equal(a, b), name
    assert_no_pickle(tmp_path)


def test_rng_capture_restore_reproduces_every_generator(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in numpy's state
    save_tree(capture_rng_state(), tmp_path, "rng")

    def draw():
        return (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())

    expected = draw()
    draw()  # move every generator on
    restore_rng_state(load_tree(tmp_path, "rng"))
    assert draw() == expected
    assert_no_pickle(tmp_path)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.norm = nn.LayerNorm(3)
        self.head = nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("counter", torch.tensor(7))


def test_tied_weights_save_and_load_without_warnings(tmp_path):
    torch.manual_seed(0)
    source = Tied()
    path = tmp_path / "model.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_module_weights(source, path)
        target = Tied()
        load_module_weights(target, path)
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key
    assert target.head.weight is target.embed.weight  # still tied
    assert_no_pickle(tmp_path)


def test_loading_weights_into_the_wrong_model_is_a_user_error(tmp_path):
    path = tmp_path / "model.safetensors"
    save_module_weights(nn.Linear(3, 2), path)
    with pytest.raises(UserError, match="does not fit"):
        load_module_weights(nn.Linear(3, 4), path)
    with pytest.raises(UserError, match="does not fit"):
        load_module_weights(nn.Sequential(nn.Linear(3, 2)), path)
    with pytest.raises(UserError, match="not found"):
        load_module_weights(nn.Linear(3, 2), tmp_path / "missing.safetensors")


def write_checkpoint(manager, step):
    staging = manager.staging_dir(step)
    save_tree({"step": step}, staging, "trainer_state")
    return manager.commit(step)


def test_commit_is_atomic_and_latest_ignores_unfinished_work(tmp_path):
    manager = CheckpointManager(tmp_path / "checkpoints", keep_last=0)
    assert manager.latest() is None and manager.all_steps() == []
    write_checkpoint(manager, 5)
    staging = manager.staging_dir(10)  # a save interrupted before commit
    save_tree({"step": 10}, staging, "trainer_state")
    (manager.root / "step-20").mkdir()  # a directory without the marker
    assert manager.latest() == manager.root / "step-5"
    assert manager.all_steps() == [5]
    assert load_tree(manager.latest(), "trainer_state") == {"step": 5}

    manager.cleanup_staging()
    assert sorted(p.name for p in manager.root.iterdir()) == ["step-20", "step-5"]
    assert_no_pickle(manager.root / "step-5")


def test_commit_replaces_an_existing_checkpoint(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=0)
    write_checkpoint(manager, 3)
    staging = manager.staging_dir(3)
    save_tree({"step": 3, "attempt": 2}, staging, "trainer_state")
    final = manager.commit(3)
    assert load_tree(final, "trainer_state") == {"step": 3, "attempt": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-3"]


def test_cleanup_restores_a_checkpoint_moved_aside_by_a_crash(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=0)
    write_checkpoint(manager, 3)
    (tmp_path / "step-3").rename(tmp_path / ".step-3.old")  # crash between the two renames
    assert manager.latest() is None
    manager.cleanup_staging()
    assert manager.latest() == tmp_path / "step-3"


def test_staging_dir_starts_empty(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1)
    (manager.staging_dir(4) / "stale.json").write_text("{}")
    assert list(manager.staging_dir(4).iterdir()) == []


def test_rotation_keeps_the_newest_and_the_protected(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3, 4, 5):
        write_checkpoint(manager, step)
    assert manager.rotate(protect={2}) == [1, 3]
    assert manager.all_steps() == [2, 4, 5]
    assert manager.rotate() == [2]
    assert manager.all_steps() == [4, 5]


def test_keep_last_zero_keeps_everything(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=0)
    for step in (1, 2, 3):
        write_checkpoint(manager, step)
    assert manager.rotate() == []
    assert manager.all_steps() == [1, 2, 3]


def test_skeleton_is_readable_json(tmp_path):
    save_tree({"step": 4, "state": {0: torch.ones(2)}}, tmp_path, "t")
    document = json.loads((tmp_path / "t.json").read_text())
    assert document["tree"]["step"] == 4


# ---------------------------------------------------------------------- tampered trainer state


def _trainer_state(step: int = 2) -> dict:
    """A trainer state shaped as the Trainer saves it."""
    return {
        "step": step,
        "epoch": 0,
        "batch_in_epoch": 2,
        "skipped_steps": 0,
        "schedulers": {"model": {"last_epoch": step}},
        "callbacks": [],
        "task": {},
        "log_window": {"loss": torch.zeros(2)},
        "num_processes": 1,
    }


def _tamper(directory, change) -> None:
    path = directory / "trainer_state.json"
    document = json.loads(path.read_text())
    change(document["tree"])
    path.write_text(json.dumps(document))


TAMPERED = {
    "negative step": lambda t: t.update(step=-1),
    "step beyond max_steps": lambda t: t.update(step=7),
    "absurd step": lambda t: t.update(step=10**30),
    "float step": lambda t: t.update(step=2.0),
    "string step": lambda t: t.update(step="2"),
    "boolean step": lambda t: t.update(step=True),
    "step of another checkpoint": lambda t: t.update(step=1),
    "missing step": lambda t: t.pop("step"),
    "negative epoch": lambda t: t.update(epoch=-3),
    "absurd epoch": lambda t: t.update(epoch=2**63),
    "string batch_in_epoch": lambda t: t.update(batch_in_epoch="two"),
    "zero processes": lambda t: t.update(num_processes=0),
    "negative skipped_steps": lambda t: t.update(skipped_steps=-1),
    "schedulers a list": lambda t: t.update(schedulers=[]),
    "callbacks a mapping": lambda t: t.update(callbacks={}),
    "log_window of numbers": lambda t: t.update(log_window={"loss": 1.0}),
    "no task": lambda t: t.pop("task"),
    "state a list": lambda t: t.clear(),
}


@pytest.mark.parametrize("kind", TAMPERED)
def test_a_tampered_trainer_state_is_refused(tmp_path, kind):
    directory = tmp_path / "step-2"
    save_tree(_trainer_state(), directory, "trainer_state")
    assert load_trainer_state(directory, max_steps=5)["step"] == 2  # the untouched control
    _tamper(directory, TAMPERED[kind])
    if kind == "state a list":
        path = directory / "trainer_state.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "tree": [1, 2]}))
    with pytest.raises(UserError) as error:
        load_trainer_state(directory, max_steps=5)
    message = str(error.value)
    assert "\n" not in message
    assert "trainer_state" in message or "max_steps" in message


def test_a_checkpoint_at_max_steps_resumes_and_one_beyond_names_the_fix(tmp_path):
    directory = tmp_path / "step-5"
    save_tree(_trainer_state(5), directory, "trainer_state")
    assert load_trainer_state(directory, max_steps=5)["step"] == 5
    with pytest.raises(UserError, match=r"--set trainer\.max_steps=5 or more"):
        load_trainer_state(directory, max_steps=4)


def test_resume_from_a_tampered_checkpoint_is_one_line_and_touches_nothing(tmp_path, capsys):
    """``seqkit train --resume`` on a run whose newest checkpoint says another step: exit 2,
    one line naming the file, and the run's files as they were."""
    from seqkit.cli import main

    run = tmp_path / "run"
    sizes = (
        "model.d_model=16", "model.n_head=2", "model.num_encoder_layers=1",
        "model.num_decoder_layers=1", "model.d_ff=32", "data.generated_pairs=200",
        "trainer.max_steps=2", "trainer.batch_size=2", "trainer.eval_every=0",
        "trainer.save_every=1", "trainer.progress_bar=false", "trainer.report_to=[]",
    )  # fmt: skip
    argv = ["train", "transformer/generated-toy", "--output-dir", str(run)]
    argv += [f"--set={s}" for s in sizes]
    assert main(argv) == 0
    capsys.readouterr()
    for step, change in ((2, lambda t: t.update(step=-5)), (2, lambda t: t.update(step=1.5))):
        _tamper(run / "checkpoints" / f"step-{step}", change)
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        # One more step than the run has: resuming a finished run reads nothing.
        assert main([*argv, "--resume", "--set=trainer.max_steps=3"]) == 2
        err = capsys.readouterr().err
        # Checked before the data is read: the refusal is the only line.
        errors = err.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("seqkit: error: "), err
        assert "Traceback" not in err
        assert "trainer_state.json: step must be an integer" in errors[0]
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
