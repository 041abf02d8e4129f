"""Trackers get the project, the run's name (its folder) and the resolved config."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import pytest
from accelerate import tracking

from seqkit.errors import UserError
from seqkit.trainer import Trainer, TrainerConfig
from seqkit.trainer import config as config_module
from seqkit.trainer.trackers import flatten_hyperparameters, tracker_init_kwargs

from .toys import ToyLM, ToySequences


def config(**overrides) -> TrainerConfig:
    base = dict(
        max_steps=2,
        batch_size=4,
        optimizer="sgd",
        eval_every=0,
        save_every=0,
        log_every=1,
        progress_bar=False,
        project="toys",
    )
    return TrainerConfig(**(base | overrides))


def test_flattened_hyperparameters_are_values_every_tracker_stores():
    flat = flatten_hyperparameters(
        {
            "task": "gpt",
            "model": {"n_layer": 2, "attention": {"dropout": 0.1, "bias": True}},
            "trainer": {"betas": (0.9, 0.999), "decay_steps": None, "max_grad_norm": float("inf")},
            "data": {"path": Path("/data/corpus.txt")},
        }
    )
    assert flat == {
        "task": "gpt",
        "model.n_layer": 2,
        "model.attention.dropout": 0.1,
        "model.attention.bias": True,
        "trainer.betas": "[0.9, 0.999]",
        "trainer.decay_steps": "null",
        "trainer.max_grad_norm": "inf",
        "data.path": "/data/corpus.txt",
    }


def test_each_tracker_gets_the_run_name_under_its_own_keyword(tmp_path):
    kwargs = tracker_init_kwargs(["tensorboard", "wandb", "mlflow", "comet_ml"], "r1", tmp_path)
    assert kwargs == {
        "wandb": {"name": "r1", "dir": str(tmp_path)},  # wandb's files stay in the run
        "mlflow": {"run_name": "r1"},
    }


def read_tensorboard(run_dir):
    """(scalar tags, hparams) of the run's TensorBoard files."""
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    plugin_data = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")
    scalars, hparams = set(), {}
    for events in (run_dir / "tensorboard").rglob("events.out.tfevents.*"):
        accumulator = event_accumulator.EventAccumulator(str(events))
        accumulator.Reload()
        scalars |= set(accumulator.Tags()["scalars"])
        try:
            contents = accumulator.PluginTagToContent("hparams").values()
        except KeyError:  # the metrics' file; add_hparams writes a file of its own
            contents = []
        for content in contents:
            start = plugin_data.HParamsPluginData.FromString(content).session_start_info
            for name, value in start.hparams.items():
                hparams[name] = getattr(value, value.WhichOneof("kind"))
    return scalars, hparams


def test_tensorboard_records_metrics_and_hyperparameters_in_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    run_dir = tmp_path / "my-run"
    Trainer(ToyLM(), config(lr=0.25), output_dir=run_dir, train_data=ToySequences()).train()
    # The run folder's layout does not depend on the project's name.
    assert not (run_dir / "toys").exists()
    scalars, hparams = read_tensorboard(run_dir)
    assert "train/loss" in scalars
    assert hparams["run.name"] == "my-run"
    assert hparams["run.project"] == "toys"
    assert hparams["trainer.lr"] == 0.25
    assert hparams["trainer.report_to"] == '["tensorboard"]'
    # The precision the run used, not the recipe's null (left to accelerate).
    assert hparams["trainer.mixed_precision"] == "bf16"


def test_given_hyperparameters_replace_the_trainer_config(tmp_path):
    run_dir = tmp_path / "r"
    recipe = {"task": "toy", "trainer": {"lr": 0.5, "mixed_precision": None}}
    Trainer(
        ToyLM(), config(), output_dir=run_dir, train_data=ToySequences(), hyperparameters=recipe
    ).train()
    _, hparams = read_tensorboard(run_dir)
    assert hparams["task"] == "toy"
    assert hparams["trainer.lr"] == 0.5
    assert hparams["trainer.mixed_precision"] == "no"
    assert "trainer.batch_size" not in hparams


class FakeWandb(types.ModuleType):
    """Stands in for wandb (not installed here): records what accelerate's tracker calls."""

    def __init__(self):
        super().__init__("wandb")
        self.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
        self.inits, self.logged, self.finished = [], [], 0
        self.config = types.SimpleNamespace(update=self._update)
        self.hyperparameters = {}

    def _update(self, values, allow_val_change=False):
        self.hyperparameters.update(values)

    def init(self, **kwargs):
        self.inits.append(kwargs)
        fake = self

        class Run:
            def log(self, values, step=None):
                fake.logged.append((step, dict(values)))

            def finish(self):
                fake.finished += 1

        return Run()


def test_wandb_gets_the_project_the_run_name_and_the_config(tmp_path, monkeypatch):
    wandb = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    monkeypatch.setattr(config_module, "_installed", lambda distribution: True)
    monkeypatch.setattr(tracking, "_available_trackers", [tracking.LoggerType.WANDB])
    run_dir = tmp_path / "shakespeare-small"
    cfg = config(report_to=["wandb"], project="poems")
    Trainer(ToyLM(), cfg, output_dir=run_dir, train_data=ToySequences()).train()
    assert wandb.inits == [{"project": "poems", "name": "shakespeare-small", "dir": str(run_dir)}]
    assert wandb.hyperparameters["run.name"] == "shakespeare-small"
    assert wandb.hyperparameters["trainer.max_steps"] == 2
    assert [step for step, values in wandb.logged if "train/loss" in values] == [1, 2]
    assert wandb.finished == 1


def test_a_folder_named_like_a_tracker_is_not_the_tracker(tmp_path, monkeypatch):
    # wandb leaves a wandb/ folder in the working directory; importable, but not wandb, and
    # accelerate would silently log nowhere.
    (tmp_path / "wandb").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="wandb tracker needs the wandb package"):
        config(report_to=["wandb"])


@pytest.mark.parametrize("project", ["", "a/b", "x" * 129, 3, "two\nlines"])
def test_a_project_name_trackers_refuse_is_a_user_error(project):
    with pytest.raises(UserError, match=r"trainer\.project must be"):
        config(project=project)
