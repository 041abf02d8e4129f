"""The vision families: image classifiers (``image-mlp``, ``cnn``, ``resnet``) and the
``denoising-autoencoder``.

Recipe → images (local files, a Hub data set, or scikit-learn's digits) → one seeded split into
train/validation/test → the model named by ``task`` (or a pretrained one, ``model.init_from``,
for transfer learning) → the Trainer → a Hub folder. ``seqkit evaluate`` scores the test split:
accuracy and the confusion matrix, and with ``--plots`` the feature maps and the mistakes.

Transfer learning is three settings of one recipe: ``model.init_from`` (a classifier trained on
another task), ``model.new_head`` (replace its last layer) and ``model.freeze`` (``features``:
keep the convolutions, train the layers after them; ``all-but-classifier``: train the last layer
only; ``none``: fine-tune everything, usually with a smaller ``trainer.lr``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seqkit.checks import (
    MAX_DEPTH,
    MAX_WIDTH,
    check_choice,
    check_range,
    check_ranges,
    count,
    non_negative,
    probability,
)
from seqkit.errors import UserError
from seqkit.export.model_card import write_model_card
from seqkit.parts.base import Job
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.vision.augment import Augmentation
from seqkit.vision.data import ImageDataSection, ImageSplits, channel_statistics, load_splits
from seqkit.vision.models import (
    CLASSIFIERS,
    MODEL_CLASSES,
    AutoencoderConfig,
    ConvAutoencoder,
    ImageClassifier,
    ImageModel,
)
from seqkit.vision.tasks import DenoisingTask, ImageClassificationTask

logger = logging.getLogger(__name__)

MODEL_TYPES = tuple(MODEL_CLASSES)
AUTOENCODER_TASK = "denoising-autoencoder"
FREEZE_CHOICES = ("none", "features", "all-but-classifier")
DataSection = ImageDataSection
MAX_KERNEL = 64
"""Largest convolution kernel side."""


@dataclass
class ModelSection:
    """The ``model`` section of an image recipe; each field names the task(s) it applies to."""

    hidden_sizes: list[int] | None = None
    """image-mlp: widths of the hidden layers (default [256, 128])."""
    conv_channels: list[int] | None = None
    """cnn: channels of the two convolutions (default [32, 64])."""
    kernel_size: int = 5
    """cnn: convolution kernel size."""
    hidden_size: int = 128
    """cnn: width of the fully connected layer (the feature vector)."""
    widths: list[int] | None = None
    """resnet: channels of each stage (default [32, 64, 128])."""
    blocks_per_stage: int = 1
    """resnet: residual blocks per stage."""
    channels: list[int] | None = None
    """denoising-autoencoder: channels of the two encoder convolutions (default [32, 64])."""
    noise_std: float = 0.3
    """denoising-autoencoder: standard deviation of the training noise (images in [0, 1])."""
    dropout: float = 0.25
    """image-mlp, cnn: dropout before the classifier."""
    init_from: str | None = None
    """A classifier folder (a run's final/) to start from: transfer learning."""
    new_head: bool = True
    """With init_from: replace the last layer by a fresh one sized for this recipe's classes."""
    freeze: str = "none"
    """With init_from: features (freeze the feature extractor - a CNN's convolutions - and
    train what follows), all-but-classifier (train only the last layer: a linear probe) or
    none (fine-tune everything)."""

    def __post_init__(self) -> None:
        check_choice("model.freeze", self.freeze, FREEZE_CHOICES)
        check_ranges(
            "model",
            self,
            {
                "kernel_size": count(1, MAX_KERNEL),
                "hidden_size": count(1, MAX_WIDTH),
                "blocks_per_stage": count(1, MAX_DEPTH),
                "noise_std": non_negative(),
                "dropout": probability(),
            },
        )
        for name in ("hidden_sizes", "conv_channels", "widths", "channels"):
            widths = getattr(self, name) or []
            check_range(f"model.{name} (its length)", len(widths), 0, MAX_DEPTH)
            for i, width in enumerate(widths):
                check_range(f"model.{name}[{i}]", width, 1, MAX_WIDTH, integer=True)


# ---------------------------------------------------------------------------- building


def _check_shape(model: ImageModel, shape: tuple[int, int, int], where: str) -> None:
    config = model.config
    expected = (config.num_channels, config.image_size, config.image_size)
    if tuple(shape) != expected:
        raise UserError(
            f"{where}: the model expects images of {expected[0]} channel(s) and "
            f"{expected[1]}x{expected[2]} pixels, but the data has {shape[0]} channel(s) and "
            f"{shape[1]}x{shape[2]} pixels"
        )


def _new_model(task: str, section: ModelSection, splits: ImageSplits) -> ImageModel:
    channels, size, _ = splits.image_shape
    mean, std = channel_statistics(splits.train.images)
    common = {"image_size": size, "num_channels": channels, "image_mean": mean, "image_std": std}
    if task == AUTOENCODER_TASK:
        # The autoencoder's output is an image in [0, 1]; its input is normalised like the rest.
        return ConvAutoencoder(
            AutoencoderConfig(channels=section.channels, noise_std=section.noise_std, **common)
        )
    config_class, model_class = CLASSIFIERS[task]
    labels = {"id2label": dict(enumerate(splits.class_names))}
    if task == "image-mlp":
        config = config_class(
            hidden_sizes=section.hidden_sizes, dropout=section.dropout, **common, **labels
        )
    elif task == "cnn":
        config = config_class(
            conv_channels=section.conv_channels,
            kernel_size=section.kernel_size,
            hidden_size=section.hidden_size,
            dropout=section.dropout,
            **common,
            **labels,
        )
    else:
        config = config_class(
            widths=section.widths, blocks_per_stage=section.blocks_per_stage, **common, **labels
        )
    return model_class(config)


def _pretrained_model(task: str, section: ModelSection, splits: ImageSplits) -> ImageModel:
    folder = Path(section.init_from)
    model = load_model(folder, what="model.init_from")
    expected_type = (
        AutoencoderConfig.model_type
        if task == AUTOENCODER_TASK
        else CLASSIFIERS[task][0].model_type
    )
    if model.config.model_type != expected_type:
        raise UserError(
            f"model.init_from: {folder} holds a {model.config.model_type} model, but task "
            f"{task!r} trains {expected_type}"
        )
    _check_shape(model, splits.image_shape, "model.init_from")
    if isinstance(model, ImageClassifier):
        num_classes = len(splits.class_names)
        if section.new_head:
            model.reset_classifier(num_classes)
            model.config.id2label = dict(enumerate(splits.class_names))
            model.config.label2id = {name: i for i, name in enumerate(splits.class_names)}
        elif model.config.num_labels != num_classes:
            raise UserError(
                f"model.init_from: {folder} predicts {model.config.num_labels} classes but the "
                f"data has {num_classes}; set model.new_head=true"
            )
        if section.freeze != "none":
            model.freeze_features(up_to_classifier=section.freeze == "all-but-classifier")
    return model


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load and split the images, build (or load) the model, and wrap both for the Trainer."""
    task = recipe.task
    if section.freeze != "none" and not section.init_from:
        raise UserError("model.freeze needs model.init_from (a pretrained model to freeze)")
    splits = load_splits(recipe.data)
    torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
    if section.init_from:
        model = _pretrained_model(task, section, splits)
    else:
        try:
            model = _new_model(task, section, splits)
        except ValueError as error:  # a size the architecture cannot take
            raise UserError(f"model: {error}") from None
    if task == AUTOENCODER_TASK:
        job_task = DenoisingTask(model, noise_std=model.config.noise_std)
    else:
        data = recipe.data
        job_task = ImageClassificationTask(
            model, Augmentation(data.crop_padding, data.flip_probability, data.rotation_degrees)
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        write_model_card(
            folder,
            title=f"seqkit {task} ({recipe.source.stem if recipe.source else 'recipe'})",
            family=task,
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            datasets=[recipe.data.hub] if recipe.data.hub and not recipe.data.path else [],
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["vision", task],
            pipeline_tag=None if task == AUTOENCODER_TASK else "image-classification",
            how_to_load=HOW_TO_LOAD,
        )

    return Job(
        task=job_task,
        train_data=splits.train,
        eval_data=splits.val if len(splits.val) else None,
        save_final=save_final,
        summary={
            "images (train/val/test)": f"{len(splits.train)}/{len(splits.val)}/{len(splits.test)}",
            "image shape": "x".join(map(str, splits.image_shape)),
            "classes": len(splits.class_names),
            "parameters (trainable)": f"{model.num_parameters()} ({trainable})",
            "model": asdict(section),
        },
    )


HOW_TO_LOAD = """\
import seqkit  # registers every seqkit model type with the Auto classes
from transformers import AutoModelForImageClassification

model = AutoModelForImageClassification.from_pretrained("PATH")
# pixel_values: (B, C, H, W) floats in [0, 1]; the model normalises them itself
# or, from the command line: seqkit evaluate RUN_DIR --plots
"""


# ---------------------------------------------------------------------------- loading


def load_model(folder: Path, what: str = "model folder") -> ImageModel:
    """The image model saved in ``folder``, whichever of the four it is."""
    from seqkit.folders import check_model_folder, load_weights, read_config

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise UserError(f"{what}: {folder} is not a model folder (no config.json)")
    check_model_folder(folder)
    model_type = read_config(folder)["model_type"]
    if model_type not in MODEL_CLASSES:
        raise UserError(f"{what}: {folder} holds a {model_type!r} model, not an image model")
    return load_weights(MODEL_CLASSES[model_type], folder, what=what)


def load_pretrained(folder: Path) -> tuple[ImageModel, None]:
    """``(model, None)``: image models have no tokenizer."""
    return load_model(folder), None


def generate_command(folder: Path, args) -> int:
    raise UserError(
        f"{folder} holds an image model, which generates nothing; try `seqkit evaluate {folder}`"
    )


# ---------------------------------------------------------------------------- evaluation


def _test_split(run_dir: Path | None, folder: Path) -> ImageSplits:
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its test images"
        )
    recipe = load_recipe(run_dir / "recipe.yaml")
    splits = load_splits(recipe.data)
    if not len(splits.test):
        raise UserError(f"{run_dir}'s recipe keeps no test images (data.test_fraction is 0)")
    return splits


@torch.inference_mode()
def predict(model: ImageClassifier, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits (N, K) for images (N, C, H, W), in batches."""
    model.eval()
    return torch.cat(
        [model(images[i : i + batch_size]).logits for i in range(0, len(images), batch_size)]
    )


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """Test-split accuracy and confusion matrix (classifiers) or denoising error (autoencoder);
    ``--plots`` saves feature maps, mistakes or reconstructions under ``RUN/plots/``."""
    from seqkit.vision.plots import (
        confusion_matrix,
        format_confusion_matrix,
        save_feature_maps,
        save_image_grid,
        save_labelled_images,
    )

    model = load_model(folder)
    splits = _test_split(run_dir, folder)
    _check_shape(model, splits.image_shape, f"evaluate {folder}")
    images, labels = splits.test.images, splits.test.labels
    batch_size = getattr(args, "batch_size", None) or 256
    plots = run_dir / "plots" if getattr(args, "plots", False) else None
    if isinstance(model, ConvAutoencoder):
        generator = torch.Generator().manual_seed(getattr(args, "seed", 0) or 0)
        noisy = images + model.config.noise_std * torch.randn(images.shape, generator=generator)
        noisy = noisy.clamp(0, 1)
        with torch.inference_mode():
            model.eval()
            clean = torch.cat(
                [
                    model(noisy[i : i + batch_size]).reconstruction
                    for i in range(0, len(noisy), batch_size)
                ]
            )
        if plots is not None:
            shown = torch.cat([images[:8], noisy[:8], clean[:8]])
            path = save_image_grid(shown, plots / "denoising.png", columns=8, scale=6)
            logger.info("rows: clean, noisy, denoised -> %s", path)
        return {
            "test_mse": float(torch.nn.functional.mse_loss(clean, images)),
            "noisy_input_mse": float(torch.nn.functional.mse_loss(noisy, images)),
            "test_images": len(images),
        }
    num_classes = model.config.num_labels
    if len(splits.class_names) != num_classes:
        raise UserError(
            f"{folder} predicts {num_classes} classes but its run's data has "
            f"{len(splits.class_names)}"
        )
    logits = predict(model, images, batch_size)
    predictions = logits.argmax(dim=-1)
    matrix = confusion_matrix(predictions, labels, num_classes)
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_confusion_matrix(matrix, splits.class_names))
    if plots is not None:
        wrong = (predictions != labels).nonzero().flatten()[:32]
        names = splits.class_names
        titles = [f"{names[labels[i]]} → {names[predictions[i]]}" for i in wrong.tolist()]
        if titles:
            path = save_labelled_images(images[wrong], titles, plots / "misclassified.png")
            logger.info("misclassified test images (true → predicted): %s", path)
        if hasattr(model, "feature_maps"):
            with torch.inference_mode():
                maps = model.feature_maps(images[:1])
            # The input first, so each row of activations can be read against the digit.
            path = save_feature_maps([images[:1], *maps], plots / "feature_maps.png")
            logger.info(
                "feature maps of test image 0 (row 1: the image, then one row per convolution): %s",
                path,
            )
    return {
        "test_accuracy": float((predictions == labels).float().mean()),
        "test_loss": float(torch.nn.functional.cross_entropy(logits, labels)),
        "test_images": len(labels),
    }
