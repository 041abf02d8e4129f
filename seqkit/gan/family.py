"""The ``dcgan`` family: a DCGAN trained on images with two optimizers on the one Trainer.

Recipe → images (the vision package's sources: digits by default, MNIST-style files or a Hub
set) → the training split in [0, 1] → :class:`~seqkit.gan.task.DCGANTask` (discriminator and
generator, each with its optimizer) → sample grids from fixed noise in ``RUN/samples/`` every
``model.sample_every`` steps → a Hub folder with both networks.

``seqkit generate RUN`` writes a grid of new samples; ``seqkit evaluate RUN`` reports the
classifier-based quality numbers of :mod:`seqkit.gan.quality` for generated images next to the
same numbers for the run's real held-out (test) images.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seqkit.checks import (
    MAX_SAMPLES,
    MAX_SEED,
    MAX_STEPS,
    MAX_WIDTH,
    check_range,
    check_ranges,
    count,
    positive,
)
from seqkit.errors import UserError
from seqkit.export.model_card import write_model_card
from seqkit.gan.models import DCGAN, DCGANConfig
from seqkit.gan.task import DCGANTask, SampleGrids
from seqkit.parts.base import Job
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.vision.data import ImageDataSection, ImageSplits, load_splits

logger = logging.getLogger(__name__)

MODEL_TYPES = (DCGANConfig.model_type,)
DataSection = ImageDataSection
DEFAULT_NUM_SAMPLES = 64


MAX_START_SIZE = 1024
"""Largest side of the generator's first feature map."""


@dataclass
class ModelSection:
    """The ``model`` section of a ``dcgan`` recipe."""

    latent_dim: int = 64
    """Length of the noise vector."""
    start_size: int = 2
    """Side of the generator's first feature map; image size / start_size must be a power of
    two (2 for 8x8 digits, 7 for 28x28 MNIST, 4 for 32x32 CIFAR-10)."""
    generator_features: int = 32
    """Channels of the generator's last hidden layer (doubling towards the noise)."""
    discriminator_features: int = 32
    """Channels of the discriminator's first layer (doubling towards the logit)."""
    generator_lr: float | None = None
    """Learning rate of the generator's optimizer (default: trainer.lr)."""
    discriminator_lr: float | None = None
    """Learning rate of the discriminator's optimizer (default: trainer.lr)."""
    sample_every: int = 200
    """Write RUN/samples/step-N.png every this many steps (and at the end); 0 = only at the end."""
    num_samples: int = 64
    """Images in each sample grid (the same noise every time)."""

    def __post_init__(self) -> None:
        check_ranges(
            "model",
            self,
            {
                "latent_dim": count(1, MAX_WIDTH),
                "start_size": count(1, MAX_START_SIZE),
                "generator_features": count(1, MAX_WIDTH),
                "discriminator_features": count(1, MAX_WIDTH),
                "generator_lr": positive(),
                "discriminator_lr": positive(),
                "sample_every": count(0, MAX_STEPS),
                "num_samples": count(1, MAX_SAMPLES),
            },
        )


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load the training images, build the DCGAN, and wrap it in the adversarial task."""
    splits = load_splits(recipe.data)
    channels, size, _ = splits.image_shape
    config = DCGANConfig(
        latent_dim=section.latent_dim,
        image_size=size,
        num_channels=channels,
        start_size=section.start_size,
        generator_features=section.generator_features,
        discriminator_features=section.discriminator_features,
    )
    try:
        config.num_stages  # noqa: B018 - validates image_size against start_size
    except ValueError as error:
        raise UserError(f"model.start_size: the images are {size}x{size}; {error}") from None
    torch.manual_seed(recipe.trainer.seed)
    model = DCGAN(config)
    task = DCGANTask(
        model.generator,
        model.discriminator,
        latent_dim=config.latent_dim,
        generator_lr=section.generator_lr,
        discriminator_lr=section.discriminator_lr,
    )
    grids = SampleGrids(
        section.sample_every, section.num_samples, config.latent_dim, seed=recipe.trainer.seed
    )

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        grids_written = sorted((run_dir / "samples").glob("step-*.png"))
        if grids_written:
            shutil.copyfile(grids_written[-1], folder / "samples.png")
        write_model_card(
            folder,
            title=f"seqkit DCGAN ({recipe.source.stem if recipe.source else 'recipe'})",
            family="dcgan",
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            datasets=[recipe.data.hub] if recipe.data.hub and not recipe.data.path else [],
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["gan", "dcgan", "image-generation"],
            pipeline_tag="unconditional-image-generation",
            how_to_load=HOW_TO_LOAD,
        )

    return Job(
        task=task,
        train_data=splits.train,
        eval_data=None,  # a GAN has no held-out loss worth the name; see `seqkit evaluate`
        save_final=save_final,
        callbacks=[grids],
        summary={
            "training images": len(splits.train),
            "image shape": "x".join(map(str, splits.image_shape)),
            "parameters (generator/discriminator)": (
                f"{sum(p.numel() for p in model.generator.parameters())}/"
                f"{sum(p.numel() for p in model.discriminator.parameters())}"
            ),
            "model": asdict(section),
        },
    )


HOW_TO_LOAD = """\
import seqkit  # registers every seqkit model type with the Auto classes
from transformers import AutoModel

gan = AutoModel.from_pretrained("PATH")
images = gan.sample(16)  # (16, C, S, S) in [0, 1]
# or, from the command line: seqkit generate PATH --num-samples 16 --out grid.png
"""


def load_pretrained(folder: Path) -> tuple[DCGAN, None]:
    """``(model, None)``: a GAN has no tokenizer."""
    from seqkit.folders import load_weights

    return load_weights(DCGAN, folder), None


def generate_command(folder: Path, args) -> int:
    """``seqkit generate RUN [--num-samples N] [--out FILE.png] [--seed S]``: a grid of samples.

    Never overwrites a file: without ``--out`` the grid goes to ``samples-seed-S.png`` in the
    current directory, and an existing file is an error.
    """
    from seqkit.outputs import check_new_file
    from seqkit.vision.plots import save_image_grid

    num_samples = getattr(args, "num_samples", None)
    if num_samples is None:  # not `or`: --num-samples 0 is an error, not the default
        num_samples = DEFAULT_NUM_SAMPLES
    check_range("--num-samples", num_samples, 1, MAX_SAMPLES, integer=True)
    seed = getattr(args, "seed", 0) or 0
    check_range("--seed", seed, 0, MAX_SEED, integer=True)
    out = check_new_file(
        getattr(args, "out", None) or f"samples-seed-{seed}.png",
        overwrite=getattr(args, "overwrite", False),
        option="--out",
        suffixes=(".png",),
    )
    model, _ = load_pretrained(folder)
    images = model.sample(num_samples, generator=torch.Generator().manual_seed(seed))
    save_image_grid(images, out)
    print(f"{num_samples} samples -> {out}")
    return 0


def _judged_splits(folder: Path, run_dir: Path | None) -> ImageSplits:
    """The images the judge trains on and the real held-out baseline: the run's own split.

    Using the run's recipe (not a default split) matters: with another ``data.split_seed`` or
    other fractions, a default test split would hold images the GAN was trained on. A bare
    model folder, outside any run, is judged on the default digits split.
    """
    from seqkit.gan.quality import digits_splits
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        return digits_splits()
    recipe = load_recipe(run_dir / "recipe.yaml")
    splits = load_splits(recipe.data)
    if not len(splits.test):
        raise UserError(
            f"{run_dir}'s recipe keeps no test images (data.test_fraction is 0): the quality "
            "numbers need real held-out images to compare with"
        )
    return splits


def _quality_classifier(run_dir: Path | None, splits: ImageSplits):
    """The classifier that judges samples; trained once and kept in ``RUN/quality-classifier``."""
    from seqkit.gan.quality import train_quality_classifier
    from seqkit.vision.models import CNNForImageClassification

    cached = run_dir / "quality-classifier" if run_dir is not None else None
    if cached is not None and (cached / "config.json").is_file():
        classifier = CNNForImageClassification.from_pretrained(cached, use_safetensors=True)
        config = classifier.config
        shape = (config.num_channels, config.image_size, config.image_size)
        if shape == splits.image_shape and config.num_labels == len(splits.class_names):
            return classifier.eval()
    logger.info("training the classifier that judges the samples...")
    try:
        classifier = train_quality_classifier(splits)
    except ValueError as error:
        raise UserError(f"cannot judge these images: {error}") from None
    if cached is not None:
        classifier.save_pretrained(cached)
    return classifier


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """Mean confidence, class entropy and Fréchet distance of generated images, next to the same
    numbers for real held-out images (as many of each), and the judge's own test accuracy."""
    from seqkit.gan.quality import accuracy, features_and_probabilities, judge

    model, _ = load_pretrained(folder)
    config = model.config
    splits = _judged_splits(folder, run_dir)
    made = (config.num_channels, config.image_size, config.image_size)
    if made != splits.image_shape:
        raise UserError(
            f"{folder} makes images of {made[0]} channel(s) and {made[1]}x{made[2]} pixels, but "
            f"the images it is judged against have {splits.image_shape[0]} channel(s) and "
            f"{splits.image_shape[1]}x{splits.image_shape[2]} pixels"
        )
    classifier = _quality_classifier(run_dir, splits)
    # The Fréchet reference is the training split, as FID uses a data set's training images
    # (Heusel et al. 2017): it is the largest real set, and the covariance of 64 features from
    # the 180 validation digits alone is too noisy to compare with. A GAN that copies its
    # training images would score well on it; the mean confidence and the grids show that.
    reference_images = splits.train.images
    logger.info("Fréchet reference: %d training images", len(reference_images))
    reference, _ = features_and_probabilities(classifier, reference_images)
    real = splits.test.images
    seed = getattr(args, "seed", 0) or 0
    generated = model.sample(len(real), generator=torch.Generator().manual_seed(seed))
    if getattr(args, "plots", False) and run_dir is not None:
        from seqkit.vision.plots import save_image_grid

        path = save_image_grid(generated[:64], run_dir / "plots" / f"samples-seed-{seed}.png")
        logger.info("samples: %s", path)
    judged = {"generated": generated, "real_heldout": real}  # equally many images of each
    metrics: dict[str, float] = {}
    for prefix, images in judged.items():
        for name, value in asdict(judge(classifier, images, reference)).items():
            metrics[f"{prefix}_{name}"] = value
    metrics["judge_test_accuracy"] = accuracy(classifier, real, splits.test.labels)
    metrics["images"] = len(real)
    if run_dir is not None:
        (run_dir / "quality.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
