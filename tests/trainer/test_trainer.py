"""The Trainer's promises, each with a test that would catch the usual way trainers break them."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch.nn import functional as F

from seqkit.errors import UserError
from seqkit.trainer import Callback, LanguageModelingTask, Trainer, TrainerConfig

from .toys import ChainQLearning, RealNumbers, ToyGAN, ToyLM, ToySequences


def config(**overrides) -> TrainerConfig:
    base = dict(
        max_steps=4,
        batch_size=4,
        lr=0.1,
        optimizer="sgd",
        momentum=0.0,
        max_grad_norm=None,
        eval_every=0,
        save_every=0,
        log_every=1,
        report_to=[],
        progress_bar=False,
        seed=3,
    )
    base.update(overrides)
    return TrainerConfig(**base)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b, exact=True):
    assert a.keys() == b.keys()
    for key in a:
        if exact:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    data = ToySequences()
    torch.manual_seed(0)
    start = ToyLM()
    big, accumulated = copy.deepcopy(start), copy.deepcopy(start)
    Trainer(
        big, config(max_steps=1, batch_size=8), output_dir=tmp_path / "a", train_data=data
    ).train()
    Trainer(
        accumulated,
        config(max_steps=1, batch_size=2, grad_accum_steps=4),
        output_dir=tmp_path / "b",
        train_data=data,
    ).train()
    assert_same_weights(weights(big), weights(accumulated), exact=False)

    # The test can fail: averaging the four micro-batch means gives a different step.
    naive = copy.deepcopy(start)
    optimizer = torch.optim.SGD(naive.parameters(), lr=0.1)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(3))[:8]
    for chunk in order.split(2):
        batch = torch.utils.data.default_collate([data[int(i)] for i in chunk])
        (naive(**batch).loss / 4).backward()
    optimizer.step()
    differences = [(weights(naive)[k] - weights(big)[k]).abs().max().item() for k in weights(big)]
    assert max(differences) > 1e-4


def test_scheduler_steps_once_per_optimizer_step(tmp_path):
    cfg = config(
        max_steps=6, grad_accum_steps=3, optimizer="adamw", schedule="linear", warmup_steps=2
    )
    trainer = Trainer(ToyLM(), cfg, output_dir=tmp_path, train_data=ToySequences())
    trainer.train()
    scheduler = trainer.schedulers["model"]
    assert scheduler.last_epoch == 6
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [row["train/lr"] for row in rows if "train/lr" in row]
    assert len(lrs) == 6
    # Warm-up over two steps, then linear decay to zero at step 6.
    assert lrs[1] == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-9)


class CrashAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, control, logs):
        if trainer.step == self.step:
            raise RuntimeError("simulated crash")


def test_resume_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    # 40 examples / batch 4 = 10 batches an epoch: the crash at step 7 and the checkpoint at
    # step 6 fall mid-epoch in the second epoch of an accumulating run with dropout.
    data = ToySequences(size=40)
    cfg = config(
        max_steps=9,
        grad_accum_steps=2,
        optimizer="adamw",
        schedule="cosine",
        warmup_steps=2,
        save_every=3,
        log_every=2,
        eval_every=3,
        max_grad_norm=1.0,
    )
    torch.manual_seed(0)
    reference = ToyLM(dropout=0.3)
    start = weights(reference)
    Trainer(reference, cfg, output_dir=tmp_path / "ref", train_data=data, eval_data=data).train()

    crashed = ToyLM(dropout=0.3)
    crashed.load_state_dict(start)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(
            crashed, cfg, output_dir=run, train_data=data, eval_data=data, callbacks=[CrashAt(7)]
        ).train()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-3", "step-6"]

    resumed = ToyLM(dropout=0.3)  # fresh weights: everything must come from the checkpoint
    trainer = Trainer(resumed, cfg, output_dir=run, train_data=data, eval_data=data)
    trainer.train(resume=True)
    assert_same_weights(weights(reference), weights(resumed))

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    reference_rows = [
        json.loads(line) for line in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()
    ]
    timing = ("time", "/elapsed_s", "_per_s", "/mfu")  # how fast, not what was computed
    strip = lambda r: {k: v for k, v in r.items() if not k.endswith(timing)}  # noqa: E731
    assert [strip(r) for r in rows] == [strip(r) for r in reference_rows]


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    trainer = Trainer(ToyLM(), config(), output_dir=tmp_path, train_data=ToySequences())
    with pytest.raises(UserError, match="no complete checkpoint"):
        trainer.train(resume=True)


def test_evaluation_streams_the_exact_mean_over_all_targets(tmp_path):
    data = ToySequences(size=13)  # not a multiple of the batch size
    model = ToyLM()
    trainer = Trainer(
        LanguageModelingTask(model),
        config(batch_size=4),
        output_dir=tmp_path,
        train_data=data,
        eval_data=data,
    )
    metrics = trainer.evaluate()
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    with torch.no_grad():
        logits = model(batch["input_ids"]).logits
    expected = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
    assert metrics["eval/loss"] == pytest.approx(expected.item(), rel=1e-6)
    assert metrics["eval/perplexity"] == pytest.approx(torch.exp(expected).item(), rel=1e-6)


class ScriptedEval(LanguageModelingTask):
    """Reports a scripted validation loss so the best step is known in advance."""

    def __init__(self, model, losses):
        super().__init__(model)
        self.losses = iter(losses)

    def evaluation_step(self, models, batch):
        return {"loss": (torch.tensor(0.0), 1)}

    def summarize(self, metrics):
        return {"loss": next(self.losses)}


def test_early_stopping_restores_best_and_rotation_keeps_it(tmp_path):
    # Evaluations at steps 1..6 report these losses: best at step 2, then no improvement.
    task = ScriptedEval(ToyLM(), [3.0, 1.0, 2.0, 2.5, 2.6, 2.7])
    cfg = config(max_steps=20, eval_every=1, save_every=1, keep_last=1, early_stopping_patience=3)
    trainer = Trainer(
        task, cfg, output_dir=tmp_path, train_data=ToySequences(), eval_data=ToySequences()
    )
    snapshots = {}

    class Snapshot(Callback):
        def on_step_end(self, trainer, control, logs):
            snapshots[trainer.step] = weights(trainer.unwrapped_model())

    trainer.callbacks.insert(0, Snapshot())
    result = trainer.train()
    assert result.step == 5  # stopped after three evaluations without improvement
    steps = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert steps == ["step-2", "step-5"]  # the newest, and the best despite keep_last=1
    assert_same_weights(weights(trainer.unwrapped_model()), snapshots[2])


def test_two_optimizer_task_trains_and_resumes(tmp_path):
    cfg = config(max_steps=6, optimizer="adam", lr=1e-2, save_every=3, batch_size=8)
    torch.manual_seed(0)
    reference = ToyGAN()
    start = {n: weights(m) for n, m in reference.models.items()}
    trainer = Trainer(reference, cfg, output_dir=tmp_path / "ref", train_data=RealNumbers())
    trainer.train()
    assert set(trainer.optimizers) == {"discriminator", "generator"}
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(5e-3)
    for name, model in reference.models.items():
        changed = [not torch.equal(v, start[name][k]) for k, v in weights(model).items()]
        assert all(changed), name
    rows = [json.loads(x) for x in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    assert {"train/discriminator/loss", "train/generator/loss"} <= set(rows[-1])

    crashed = ToyGAN()
    for name, model in crashed.models.items():
        model.load_state_dict(start[name])
    with pytest.raises(RuntimeError):
        Trainer(
            crashed,
            cfg,
            output_dir=tmp_path / "run",
            train_data=RealNumbers(),
            callbacks=[CrashAt(4)],
        ).train()
    resumed = ToyGAN()
    Trainer(resumed, cfg, output_dir=tmp_path / "run", train_data=RealNumbers()).train(resume=True)
    for name in reference.models:
        assert_same_weights(weights(reference.models[name]), weights(resumed.models[name]))


def test_environment_fed_task_learns_and_resumes(tmp_path):
    cfg = config(max_steps=300, optimizer="sgd", lr=0.5, save_every=100, log_every=50)
    torch.manual_seed(0)
    task = ChainQLearning(seed=0)
    start = weights(task.model)
    Trainer(task, cfg, output_dir=tmp_path / "ref").train()
    # Q(s, right) = gamma^(steps to the goal - 1): 0.729, 0.81, 0.9, 1.0 from states 0..3.
    q_right = task.q(task.models, torch.arange(4)).detach()[:, 1]
    torch.testing.assert_close(q_right, torch.tensor([0.729, 0.81, 0.9, 1.0]), atol=0.05, rtol=0)

    crashed = ChainQLearning(seed=0)
    crashed.model.load_state_dict(start)
    with pytest.raises(RuntimeError):
        Trainer(crashed, cfg, output_dir=tmp_path / "run", callbacks=[CrashAt(250)]).train()
    resumed = ChainQLearning(seed=0)
    Trainer(resumed, cfg, output_dir=tmp_path / "run").train(resume=True)
    assert_same_weights(weights(task.model), weights(resumed.model))
    assert resumed.steps_taken == task.steps_taken


def test_run_directory_contents(tmp_path):
    cfg = config(max_steps=4, save_every=2, eval_every=2, report_to=["tensorboard"])
    Trainer(
        ToyLM(), cfg, output_dir=tmp_path, train_data=ToySequences(), eval_data=ToySequences()
    ).train()
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-2", "step-4"]
    files = {p.name for p in (tmp_path / "checkpoints" / "step-4").iterdir()}
    assert all(name.endswith((".json", ".safetensors")) or name == "COMPLETE" for name in files)


def test_bf16_mixed_precision_trains_on_cpu(tmp_path):
    model = ToyLM()
    before = weights(model)
    Trainer(
        model, config(mixed_precision="bf16"), output_dir=tmp_path, train_data=ToySequences()
    ).train()
    assert any(not torch.equal(before[k], v) for k, v in weights(model).items())


def test_bad_mixed_precision_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="mixed_precision"):
        Trainer(ToyLM(), config(mixed_precision="fp8x"), output_dir=tmp_path)


def autocast_dtype(trainer: Trainer) -> torch.dtype:
    with trainer.accelerator.autocast():
        return torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype


@pytest.mark.parametrize(
    ("recipe", "launched", "expected", "source"),
    [
        (None, "bf16", "bf16", "ACCELERATE_MIXED_PRECISION"),  # accelerate launch's wins ...
        (None, "BF16", "bf16", "ACCELERATE_MIXED_PRECISION"),
        ("no", "bf16", "no", "trainer.mixed_precision"),  # ... unless the recipe says otherwise
        ("bf16", None, "bf16", "trainer.mixed_precision"),
        (None, None, "no", "the default"),
    ],
)
def test_mixed_precision_follows_accelerate_unless_the_recipe_sets_it(
    tmp_path, monkeypatch, caplog, recipe, launched, expected, source
):
    if launched is None:
        monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    else:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launched)
    trainer = Trainer(
        ToyLM(), config(mixed_precision=recipe, max_steps=1), output_dir=tmp_path,
        train_data=ToySequences(),
    )  # fmt: skip
    assert trainer.accelerator.mixed_precision == expected
    assert autocast_dtype(trainer) == (torch.bfloat16 if expected == "bf16" else torch.float32)
    with caplog.at_level("INFO", logger="seqkit.trainer.trainer"):
        trainer.train()
    assert f"mixed precision: {expected}, from " in caplog.text
    assert source in caplog.text


def test_unsupported_launcher_precision_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp8")
    with pytest.raises(UserError, match=r"ACCELERATE_MIXED_PRECISION is 'fp8'.*no, bf16, fp16"):
        Trainer(ToyLM(), config(), output_dir=tmp_path)
    # A recipe that names its precision does not depend on the launcher's.
    assert Trainer(ToyLM(), config(mixed_precision="no"), output_dir=tmp_path)


class CountingSequences(ToySequences):
    """Records every example the DataLoader fetches."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fetched: list[int] = []

    def __getitem__(self, i):
        self.fetched.append(i)
        return super().__getitem__(i)


def test_resume_fetches_only_the_batches_after_the_checkpoint(tmp_path):
    cfg = config(max_steps=7, save_every=5)
    Trainer(ToyLM(), config(max_steps=5, save_every=5), output_dir=tmp_path,
            train_data=ToySequences(size=40)).train()  # fmt: skip
    data = CountingSequences(size=40)
    Trainer(ToyLM(), cfg, output_dir=tmp_path, train_data=data).train(resume=True)
    # Two more steps of batch 4: eight examples, none of the twenty already seen replayed.
    assert len(data.fetched) == 8
    order = torch.randperm(40, generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    assert data.fetched == order[20:28]


class RecordingTask(LanguageModelingTask):
    """Records the modules each step was given and whether they were in training mode."""

    def __init__(self, model):
        super().__init__(model)
        self.seen: list[tuple[str, dict, bool]] = []

    def training_step(self, models, batch, optimizer_name):
        self.seen.append(("train", dict(models), models["model"].training))
        return super().training_step(models, batch, optimizer_name)

    def evaluation_step(self, models, batch):
        self.seen.append(("eval", dict(models), models["model"].training))
        return {"loss": (models["model"](**batch).loss, 1)}


def test_the_trainer_passes_models_and_writes_nothing_into_the_task(tmp_path):
    model = ToyLM()
    task = RecordingTask(model)
    models_before, attributes_before = task.models, set(vars(task))
    cfg = config(max_steps=2, eval_every=1, eval_batches=1)
    Trainer(
        task, cfg, output_dir=tmp_path, train_data=ToySequences(), eval_data=ToySequences()
    ).train()
    assert task.models is models_before and task.models["model"] is model  # never replaced
    assert set(vars(task)) == attributes_before  # no attribute written from outside
    kinds = [kind for kind, _, _ in task.seen]
    assert "train" in kinds and "eval" in kinds
    for kind, models, training in task.seen:
        assert set(models) == {"model"} and training == (kind == "train")
        if kind == "eval":  # evaluation runs the plain module, never a wrapper
            assert models["model"] is model


def test_a_default_evaluation_needs_an_optimizer_of_the_task(tmp_path):
    class Misnamed(LanguageModelingTask):
        evaluation_optimizer = "generator"

    trainer = Trainer(
        Misnamed(ToyLM()),
        config(max_steps=1, eval_every=1),
        output_dir=tmp_path,
        train_data=ToySequences(),
        eval_data=ToySequences(),
    )
    with pytest.raises(ValueError, match="evaluation_optimizer is 'generator'"):
        trainer.train()
