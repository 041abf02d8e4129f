"""Non-finite losses: stop by default with the step named and the last good checkpoint kept, or
skip the step and count it; a NaN is never written into a checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from seqkit.errors import UserError
from seqkit.trainer import LanguageModelingTask, Trainer
from seqkit.trainer.trainer import TrainingDiverged

from .test_trainer import config, weights
from .toys import ToyLM, ToySequences


class PoisonedTask(LanguageModelingTask):
    """Returns a NaN loss on the given (1-based) training-step calls."""

    def __init__(self, model, poisoned_calls: set[int], value: float = float("nan")):
        super().__init__(model)
        self.poisoned_calls = poisoned_calls
        self.value = value
        self.calls = 0

    def training_step(self, models, batch, optimizer_name):
        self.calls += 1
        loss = super().training_step(models, batch, optimizer_name)
        return loss * self.value if self.calls in self.poisoned_calls else loss


def test_nan_loss_stops_with_the_step_named_and_keeps_the_good_checkpoint(tmp_path):
    model = ToyLM()
    task = PoisonedTask(model, {5})
    trainer = Trainer(task, config(max_steps=8, save_every=2), output_dir=tmp_path,
                      train_data=ToySequences())  # fmt: skip
    with pytest.raises(TrainingDiverged, match="not finite at step 5") as raised:
        trainer.train()
    assert isinstance(raised.value, UserError)  # the CLI prints it as one line, exit 2
    assert "step-4" in str(raised.value)
    assert trainer.checkpoints.all_steps() == [2, 4]
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_skip_policy_leaves_the_weights_of_a_bad_step_and_counts_it(tmp_path, value):
    data = ToySequences()
    clean = ToyLM()
    start = weights(clean)
    Trainer(LanguageModelingTask(clean), config(max_steps=3), output_dir=tmp_path / "clean",
            train_data=data).train()  # fmt: skip

    skipped = ToyLM()
    skipped.load_state_dict(start)
    trainer = Trainer(PoisonedTask(skipped, {4, 5}, value), config(max_steps=5, nan_policy="skip"),
                      output_dir=tmp_path / "skip", train_data=data)  # fmt: skip
    trainer.train()
    assert trainer.skipped_steps == 2
    # Steps 4 and 5 changed nothing, so the weights are those after three clean steps.
    for key, tensor in weights(clean).items():
        assert torch.equal(tensor, weights(skipped)[key]), key
    rows = [json.loads(line) for line in (tmp_path / "skip" / "metrics.jsonl").open()]
    assert rows[-1]["train/skipped_steps"] == 2
    assert all(torch.isfinite(torch.tensor(r.get("train/loss", 0.0))) for r in rows)


def test_a_checkpoint_of_non_finite_weights_is_refused(tmp_path):
    model = ToyLM()
    trainer = Trainer(model, config(max_steps=1), output_dir=tmp_path, train_data=ToySequences())
    trainer.train()
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    trainer.step = 2
    with pytest.raises(TrainingDiverged, match="non-finite weights at step 2"):
        trainer.save_checkpoint()
    assert trainer.checkpoints.all_steps() == [1]


def test_unknown_nan_policy_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="nan_policy"):
        Trainer(ToyLM(), config(nan_policy="ignore"), output_dir=tmp_path)
