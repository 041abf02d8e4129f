"""DCGAN: network shapes, the two-optimizer task on the Trainer, sample grids, generate,
quality numbers and a diverging run stopped with its last good checkpoint kept."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.gan.models import DCGAN, DCGANConfig
from seqkit.gan.quality import frechet_distance, judge
from seqkit.gan.task import DCGANTask
from seqkit.parts.model_folder import open_trained
from seqkit.trainer import Callback, Trainer, TrainerConfig
from seqkit.trainer.trainer import TrainingDiverged
from seqkit.vision.data import ImageDataSection, load_splits

TINY = [
    "--set", "model.latent_dim=8",
    "--set", "model.generator_features=4",
    "--set", "model.discriminator_features=4",
    "--set", "model.sample_every=3",
    "--set", "model.num_samples=4",
    "--set", "trainer.max_steps=6",
    "--set", "trainer.batch_size=16",
    "--set", "trainer.save_every=3",
    "--set", "trainer.progress_bar=false",
    "--set", "trainer.report_to=[]",
]  # fmt: skip


@pytest.mark.parametrize("size, start, channels", [(8, 2, 1), (28, 7, 1), (32, 4, 3)])
def test_generator_and_discriminator_shapes(size, start, channels):
    config = DCGANConfig(
        image_size=size, start_size=start, num_channels=channels, latent_dim=8,
        generator_features=4, discriminator_features=4,
    )  # fmt: skip
    model = DCGAN(config)
    images = model(torch.randn(3, 8))
    assert images.shape == (3, channels, size, size)
    assert float(images.detach().abs().max()) <= 1.0  # Tanh
    assert model.discriminator(images).shape == (3,)


def test_image_size_must_be_start_size_times_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        DCGAN(DCGANConfig(image_size=12, start_size=4))


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gan") / "run"
    # Not the default split: evaluate must judge against this run's own held-out images.
    split = ["--set", "data.split_seed=1", "--set", "data.test_fraction=0.1"]
    assert main(["train", "gan/digits-dcgan", *TINY, *split, "--output-dir", str(run)]) == 0
    return run


def test_training_logs_both_optimizers_and_writes_grids(gan_run):
    import json

    rows = [json.loads(x) for x in (gan_run / "metrics.jsonl").read_text().splitlines()]
    assert any("train/generator/loss" in r and "train/discriminator/loss" in r for r in rows)
    grids = sorted(p.name for p in (gan_run / "samples").iterdir())
    assert grids == ["step-000003.png", "step-000006.png"]
    assert (gan_run / "final" / "samples.png").is_file()


def test_generate_writes_a_grid_and_never_overwrites(gan_run, tmp_path):
    loaded = open_trained(gan_run / "final")
    out = tmp_path / "grid.png"
    args = argparse.Namespace(num_samples=9, out=str(out), seed=1)
    assert DCGANTask.generate_command(loaded, args) == 0
    assert out.stat().st_size > 0
    with pytest.raises(UserError, match="already exists"):
        DCGANTask.generate_command(loaded, args)
    empty = argparse.Namespace(num_samples=0, out=str(tmp_path / "none.png"), seed=1)
    with pytest.raises(UserError, match="--num-samples must be at least 1, got 0"):
        DCGANTask.generate_command(loaded, empty)
    # The grid holds exactly num_samples images: 9 tiles of 8x8 in a 3x3 grid, drawn 4x.
    from matplotlib.image import imread

    assert imread(out).shape[:2] == ((3 * 9 + 1) * 4, (3 * 9 + 1) * 4)
    # Same seed, same samples: the grid is reproducible.
    model = loaded.model
    first = model.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, model.sample(4, generator=torch.Generator().manual_seed(1)))


def test_generate_from_the_command_line(gan_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", str(gan_run), "--seed", "3"]) == 0
    assert (tmp_path / "samples-seed-3.png").is_file()


def test_evaluate_reports_generated_and_real_numbers(gan_run, capsys):
    from seqkit.gan.quality import train_quality_classifier

    splits = load_splits(ImageDataSection(split_seed=1, test_fraction=0.1))
    # A quickly trained judge, placed where evaluate looks for its cached one.
    train_quality_classifier(splits, steps=20).save_pretrained(gan_run / "quality-classifier")
    assert main(["evaluate", str(gan_run)]) == 0
    captured = capsys.readouterr()
    out = dict(line.split(": ") for line in captured.out.strip().splitlines())
    for prefix in ("eval/generated", "eval/real_heldout"):
        assert 0 < float(out[f"{prefix}_mean_confidence"]) <= 1
        assert 0 <= float(out[f"{prefix}_class_entropy"]) <= np.log(10) + 1e-4
        assert float(out[f"{prefix}_frechet_distance"]) >= 0
    assert 0 <= float(out["eval/judge_test_accuracy"]) <= 1
    # The real baseline is the run's test split (10% of 1,797), not the default one (20%).
    assert int(out["eval/images"]) == len(splits.test) == 180
    # The Fréchet reference is the run's training split (1,797 - 180 test - 180 validation).
    assert "Fréchet reference: 1437 training images" in captured.err
    assert (gan_run / "quality.json").is_file()


def test_real_baseline_is_the_runs_own_test_split(gan_run):
    loaded = open_trained(gan_run)
    judged = loaded.data_class(loaded.recipe).facts(None)["splits"]
    own = load_splits(ImageDataSection(split_seed=1, test_fraction=0.1))
    assert torch.equal(judged.test.images, own.test.images)
    assert torch.equal(judged.train.images, own.train.images)  # what the GAN trained on


def test_a_checkpoint_holds_both_networks_and_generates(gan_run, tmp_path):
    checkpoint = gan_run / "checkpoints" / "step-6"
    names = sorted(p.name for p in checkpoint.glob("model-*.safetensors"))
    assert names == ["model-discriminator.safetensors", "model-generator.safetensors"]
    from_checkpoint, final = open_trained(checkpoint).model, open_trained(gan_run / "final").model
    for name, tensor in final.state_dict().items():
        assert torch.equal(tensor, from_checkpoint.state_dict()[name]), name
    out = tmp_path / "from-checkpoint.png"
    assert main(["generate", str(checkpoint), "--out", str(out), "--num-samples", "4"]) == 0
    assert out.is_file()


def test_an_old_dcgan_recipe_still_loads(tmp_path):
    from seqkit.parts.resolve import load_recipe

    old = tmp_path / "old.yaml"
    old.write_text("task: dcgan\nmodel: {latent_dim: 8}\ndata: {embedded: digits}\n")
    recipe = load_recipe(old)
    assert recipe.task == "gan" and recipe.model == {"architecture": "dcgan", "latent_dim": 8}


def test_evaluate_refuses_images_the_judge_cannot_compare(tmp_path, capsys):
    config = DCGANConfig(image_size=16, start_size=4, latent_dim=8)
    DCGAN(config).save_pretrained(tmp_path / "big")  # a bare folder: judged on 8x8 digits
    assert main(["evaluate", str(tmp_path / "big")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "16x16 pixels" in err[0] and "8x8 pixels" in err[0], err


def test_frechet_distance_matches_the_matrix_square_root_formula():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    b = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.5
    covariance_a, covariance_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(covariance_a @ covariance_b).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(
        covariance_a + covariance_b - 2 * root
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_mode_collapse_shows_in_the_class_entropy():
    from seqkit.vision.models import CNNConfig, CNNForImageClassification

    torch.manual_seed(0)
    classifier = CNNForImageClassification(CNNConfig(conv_channels=[4, 8], num_labels=10)).eval()
    one_image = torch.rand(1, 1, 8, 8).repeat(50, 1, 1, 1)
    reference = np.random.default_rng(0).normal(size=(100, 128))
    assert judge(classifier, one_image, reference).class_entropy == 0.0


class PoisonDiscriminator(Callback):
    """Sets the discriminator's weights to NaN after step 3, as a diverging run would."""

    def on_step_end(self, trainer, control, logs):
        if trainer.step == 3:
            with torch.no_grad():
                for p in trainer.unwrapped_model("discriminator").parameters():
                    p.fill_(float("nan"))


def test_a_diverging_gan_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    splits = load_splits(ImageDataSection())
    config = DCGANConfig(latent_dim=8, generator_features=4, discriminator_features=4)
    model = DCGAN(config)
    task = DCGANTask(model.generator, model.discriminator, latent_dim=8)
    trainer_config = TrainerConfig(
        max_steps=5, batch_size=16, save_every=2, progress_bar=False, report_to=[]
    )
    trainer = Trainer(
        task, trainer_config, output_dir=tmp_path, train_data=splits.train,
        callbacks=[PoisonDiscriminator()],
    )  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"'discriminator'.*step 4.*step-2"):
        trainer.train()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-2"]


def test_a_diverging_gan_run_from_the_command_line_is_one_line_naming_the_step(tmp_path, capsys):
    # A learning rate of 1e30 makes Adam's first step send every weight to ~1e30: the
    # discriminator's logits overflow and the generator's loss is NaN at once.
    run = tmp_path / "run"
    lr = ["--set", "model.generator_lr=1e30", "--set", "model.discriminator_lr=1e30"]
    assert main(["train", "gan/digits-dcgan", *TINY, *lr, "--output-dir", str(run)]) == 2
    # The run's summary is printed before training starts; the failure is one last line.
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("seqkit: error: ")]
    assert errors == err[-1:] and "Traceback" not in "\n".join(err), err
    assert "not finite at step 1" in err[-1] and "no checkpoint was written" in err[-1]
    assert not (run / "final").exists()  # nothing diverged is ever published


def test_generate_from_the_command_line_with_a_sample_count_and_a_file(gan_run, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["generate", str(gan_run), "--num-samples", "9", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    # A second call never overwrites the grid: one line, exit 2.
    assert main(["generate", str(gan_run), "--num-samples", "9", "--out", str(out)]) == 2
