"""The vision recipes end to end, in process: train, evaluate with plots, transfer learning
(also resumed), the denoising autoencoder, the old one-word task names, and the bad-input
contract (one line, exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seqkit.cli import main
from seqkit.errors import UserError

TINY_CNN = [
    "--set", "model.conv_channels=[4, 8]",
    "--set", "model.hidden_size=16",
    "--set", "trainer.max_steps=6",
    "--set", "trainer.batch_size=16",
    "--set", "trainer.eval_every=3",
    "--set", "trainer.save_every=6",
    "--set", "trainer.warmup_steps=1",
    "--set", "trainer.progress_bar=false",
    "--set", "trainer.report_to=[]",
]  # fmt: skip


def one_error_line(capsys, *fragments: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqkit: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vision") / "pretrain"
    assert main(["train", "vision/digits-0to4-cnn", *TINY_CNN, "--output-dir", str(run)]) == 0
    return run


def test_train_and_evaluate_with_plots(pretrained, capsys, tmp_path):
    assert (pretrained / "final" / "model.safetensors").is_file()
    capsys.readouterr()
    json_path = tmp_path / "m.json"
    assert main(["evaluate", str(pretrained), "--plots", "--json", str(json_path)]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix" in out and "eval/accuracy:" in out
    # The confusion matrix rows add up to the test images of each class (5 classes here).
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 5
    metrics = json.loads(json_path.read_text())
    assert sum(int(v) for row in rows for v in row[1:]) == metrics["eval/examples"] == 180
    # The test images are scored, not the validation images training reported on.
    correct = sum(int(row[1 + i]) for i, row in enumerate(rows))
    assert metrics["eval/accuracy"] == pytest.approx(correct / 180)
    # Feature maps: a row for the input image, then one per convolution (two in LeNet); each
    # row is 9 pixels (8 and a border) drawn 8x8, plus the grid's outer border.
    from matplotlib.image import imread

    assert imread(pretrained / "plots" / "feature_maps.png").shape[0] == (3 * 9 + 1) * 8
    # Six training steps leave mistakes, and each is drawn with its true and predicted class.
    assert (pretrained / "plots" / "misclassified.png").is_file()


def test_transfer_with_frozen_features_changes_only_the_head(pretrained, tmp_path):
    run = tmp_path / "transfer"
    args = ["train", "vision/digits-5to9-transfer", *TINY_CNN, "--output-dir", str(run)]
    args += ["--set", f"model.init_from={pretrained / 'final'}", "--set", "trainer.batch_size=10"]
    args += ["--set", "trainer.save_every=3"]
    assert main(args) == 0
    before = load_file(pretrained / "final" / "model.safetensors")
    after = load_file(run / "final" / "model.safetensors")
    # Resumed from step 3 (without init_from's folder), the features stay frozen and the run
    # ends with the same weights.
    shutil.rmtree(run / "checkpoints" / "step-6")
    shutil.rmtree(run / "final")
    (pretrained / "final").rename(pretrained / "moved")
    try:
        assert main([*args, "--resume"]) == 0
    finally:
        (pretrained / "moved").rename(pretrained / "final")
    resumed = load_file(run / "final" / "model.safetensors")
    assert all(torch.equal(resumed[name], after[name]) for name in after)
    for name, tensor in before.items():
        if name.startswith(("conv.", "pixel_")):  # frozen convolutions, input normalisation
            torch.testing.assert_close(after[name], tensor, msg=name)
        else:  # the head: the fully connected layer and the new classifier
            assert not torch.equal(after[name], tensor), name


def test_wrong_image_size_for_a_pretrained_model(pretrained, tmp_path, capsys):
    images = tmp_path / "big.npz"
    np.savez(images, images=np.zeros((40, 16, 16), np.float32), labels=np.arange(40) % 5)
    code = main(
        ["train", "vision/digits-5to9-transfer", *TINY_CNN, "--output-dir", str(tmp_path / "r"),
         "--set", f"model.init_from={pretrained / 'final'}", "--set", f"data.path={images}",
         "--set", "data.classes=null"]
    )  # fmt: skip
    assert code == 2
    one_error_line(capsys, "1 channel(s) and 8x8 pixels", "16x16")
    assert not (tmp_path / "r").exists()


def test_denoising_autoencoder_trains_and_evaluates(tmp_path, capsys):
    run = tmp_path / "dae"
    args = ["train", "vision/digits-denoising-autoencoder", "--output-dir", str(run)]
    args += ["--set", "trainer.max_steps=30", "--set", "trainer.eval_every=10"]
    args += ["--set", "trainer.progress_bar=false", "--set", "trainer.report_to=[]"]
    args += ["--set", "model.channels=[8, 16]", "--set", "trainer.warmup_steps=0"]
    assert main(args) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [row["eval/loss"] for row in rows if "eval/loss" in row]
    assert len(losses) == 3 and losses[-1] < losses[0]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--plots"]) == 0
    values = dict(line.split(": ") for line in capsys.readouterr().out.strip().splitlines())
    assert float(values["eval/loss"]) == pytest.approx(losses[-1], rel=0.5)
    # The baseline: noise of std 0.3, clamped to [0, 1], has a mean square under 0.3².
    assert 0.02 < float(values["eval/noisy_input_mse"]) < 0.09
    assert int(values["eval/examples"]) == 359
    assert (run / "plots" / "denoising.png").is_file()


def test_bad_model_settings_are_one_line_errors(tmp_path, capsys):
    train = ["train", "vision/digits-cnn", "--output-dir", str(tmp_path / "x")]
    assert main([*train, "--set", "model.freeze=all"]) == 2
    one_error_line(capsys, "model.freeze must be one of none, features, all-but-classifier")
    assert main([*train, "--set", "model.freeze=features"]) == 2
    one_error_line(capsys, "needs model.init_from")
    assert main([*train, "--set", "model.conv_channels=[4, 8, 16]"]) == 2
    one_error_line(capsys, "model.conv_channels lists the channels of LeNet's two convolutions")
    images = tmp_path / "odd.npz"
    np.savez(images, images=np.zeros((20, 10, 10), np.float32), labels=np.arange(20) % 2)
    assert main([*train, "--set", f"data.path={images}"]) == 2
    one_error_line(capsys, "model.architecture cnn needs images whose side is divisible by 4")
    assert not (tmp_path / "x").exists()
    assert main(["generate", str(tmp_path)]) == 2
    capsys.readouterr()


def test_old_task_names_are_shorthands_for_the_parts(tmp_path):
    from seqkit.parts.resolve import load_recipe, resolve

    source = tmp_path / "old.yaml"
    source.write_text("task: resnet\nmodel: {widths: [4], blocks_per_stage: 1}\n")
    parts = resolve(load_recipe(source))
    assert (parts.task_name, type(parts.builder).__name__) == (
        "image-classification",
        "ResNetBuilder",
    )
    assert type(parts.data).__name__ == "ImageData"
    source.write_text("task: denoising-autoencoder\nmodel: {channels: [4, 8]}\n")
    parts = resolve(load_recipe(source))
    assert parts.task_name == "image-reconstruction"
    source.write_text("task: cnn\nmodel: {architecture: resnet}\n")
    with pytest.raises(UserError, match=r"task cnn trains model\.architecture cnn"):
        load_recipe(source)


def test_a_checkpoint_evaluates_on_the_test_images_and_exports(pretrained, tmp_path, capsys):
    checkpoint = pretrained / "checkpoints" / "step-6"
    capsys.readouterr()
    assert main(["evaluate", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    final = dict(line.split(": ") for line in out.splitlines() if line.startswith("eval/"))
    assert int(final["eval/examples"]) == 180
    assert main(["export", str(checkpoint), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
