"""Image models: an MLP baseline, a LeNet-style CNN, a small ResNet and a denoising autoencoder.

Each is a ``transformers`` config/model pair (``save_pretrained``, ``from_pretrained`` and the
Auto classes for free), built only from its config:

- :class:`MLPForImageClassification` flattens the image and forgets where each pixel was: the
  baseline that shows what convolutions add.
- :class:`CNNForImageClassification` is LeNet (LeCun et al. 1998, "Gradient-based learning
  applied to document recognition"): convolution → ReLU → max-pool, twice, then fully connected
  layers. Its ``features`` (the convolutions) are what transfer learning freezes.
- :class:`ResNetForImageClassification` is a small ResNet (He et al. 2016, "Deep Residual
  Learning for Image Recognition"): BatchNorm (Ioffe & Szegedy 2015) and residual blocks
  ``relu(x + F(x))`` whose identity path lets gradients skip the block.
- :class:`ConvAutoencoder` is a denoising convolutional autoencoder (Vincent et al. 2008,
  "Extracting and Composing Robust Features with Denoising Autoencoders"): strided convolutions
  squeeze a corrupted image into a small code, transposed convolutions rebuild the clean one.

Every model takes ``pixel_values`` in [0, 1], shaped (B, C, H, W), and normalises them itself
with the training set's per-channel mean and standard deviation kept in its config; so any
caller (``seqkit evaluate``, the GAN quality metrics) feeds images the same way.

Shape legend: B batch, C channels, H×W image size, K classes, D feature width.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

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
from seqkit.parts.base import ModelBuilder, same_names

# ----------------------------------------------------------------------------- configuration


class ImageConfig(PretrainedConfig):
    """What every image model knows about its input: size, channels and normalisation.

    ``num_labels`` (a ``PretrainedConfig`` argument) is the number of classes.
    """

    image_size: int = 8
    """Height and width of the (square) input images in pixels."""
    num_channels: int = 1
    """Input channels: 1 for grey digits, 3 for colour (CIFAR-10)."""
    image_mean: list[float] | None = None
    """Per-channel mean of the training images in [0, 1], subtracted first (default 0)."""
    image_std: list[float] | None = None
    """Per-channel standard deviation of the training images (default 1)."""

    def check_images(self, pixel_values: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the expected shape if ``pixel_values`` does not fit."""
        expected = (self.num_channels, self.image_size, self.image_size)
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"this model expects images of {self.num_channels} channel(s) and "
                f"{self.image_size}x{self.image_size} pixels, shaped (B, {expected[0]}, "
                f"{expected[1]}, {expected[2]}); got {tuple(pixel_values.shape)}"
            )


class MLPConfig(ImageConfig):
    """An MLP over flattened pixels."""

    model_type = "seqkit-mlp"
    hidden_sizes: list[int] | None = None
    """Width of each hidden layer (default [256, 128])."""
    dropout: float = 0.1
    """Dropout after each hidden layer."""


class CNNConfig(ImageConfig):
    """A LeNet-style CNN: two convolution/pool stages, then fully connected layers."""

    model_type = "seqkit-cnn"
    conv_channels: list[int] | None = None
    """Output channels of the two convolutions (default [32, 64])."""
    kernel_size: int = 5
    """Convolution kernel size (LeNet: 5); padding keeps the size, pooling halves it."""
    hidden_size: int = 128
    """Width of the fully connected layer before the classifier: the feature vector."""
    dropout: float = 0.25
    """Dropout before the classifier."""


class ResNetConfig(ImageConfig):
    """A small ResNet for small images: a 3×3 stem and one stage per width."""

    model_type = "seqkit-resnet"
    widths: list[int] | None = None
    """Channels of each stage (default [32, 64, 128]); every stage after the first halves the
    image with a stride-2 block."""
    blocks_per_stage: int = 1
    """Residual blocks in each stage."""


class AutoencoderConfig(ImageConfig):
    """A convolutional autoencoder trained to remove Gaussian noise."""

    model_type = "seqkit-conv-autoencoder"
    channels: list[int] | None = None
    """Channels of the two stride-2 encoder convolutions (default [32, 64]); the code is
    channels[-1] × H/4 × W/4."""
    noise_std: float = 0.3
    """Standard deviation of the Gaussian noise added to the inputs during training."""


def _hidden_sizes(config: MLPConfig) -> list[int]:
    return list(config.hidden_sizes or [256, 128])


# ----------------------------------------------------------------------------- shared base


class ImageModel(PreTrainedModel):
    """Input normalisation, shape checks and He initialisation shared by the image models."""

    config_class = ImageConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"

    def _register_normalisation(self, config: ImageConfig) -> None:
        mean = torch.tensor(config.image_mean or [0.0] * config.num_channels)
        std = torch.tensor(config.image_std or [1.0] * config.num_channels)
        # Buffers, not parameters: they follow .to(device) but are never trained. They are
        # saved with the weights (as well as in the config): transformers builds a model on the
        # meta device before loading, and a buffer missing from the file would stay garbage.
        self.register_buffer("pixel_mean", mean.view(1, -1, 1, 1))
        self.register_buffer("pixel_std", std.view(1, -1, 1, 1))

    def normalise(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] → zero-mean, unit-variance per channel (training statistics)."""
        self.config.check_images(pixel_values)
        return (pixel_values - self.pixel_mean) / self.pixel_std

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """He initialisation (He et al. 2015) for layers followed by ReLU; unit BatchNorms."""
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class ImageClassifier(ImageModel):
    """A classifier: ``features`` (B, D) then a linear ``classifier`` to K logits.

    Subclasses define ``features(pixel_values)`` and ``feature_extractor``, the name prefixes of
    the layers that transfer learning may freeze: the convolutions of a CNN, the stem and
    residual blocks of a ResNet, the hidden layers of an MLP. Keeping the last layer separate
    makes transfer learning a matter of replacing :attr:`classifier` (:meth:`reset_classifier`)
    and, for the frozen-features variant, turning off gradients in the feature extractor
    (:meth:`freeze_features`).
    """

    feature_size: int
    feature_extractor: tuple[str, ...] = ()

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **kwargs
    ) -> ImageClassifierOutput:
        """Logits (B, K) and, with ``labels`` (B,), the mean cross-entropy."""
        logits = self.classifier(self.features(pixel_values))  # (B, K)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reset_classifier(self, num_labels: int) -> None:
        """A fresh, randomly initialised last layer with ``num_labels`` outputs."""
        self.classifier = nn.Linear(self.feature_size, num_labels)
        self._init_weights(self.classifier)
        self.config.num_labels = num_labels

    def freeze_features(self, up_to_classifier: bool = False) -> None:
        """Stop training the feature extractor (``feature_extractor`` layers): their parameters
        take no gradients and their BatchNorm layers keep the pretrained running statistics
        (see :meth:`train`). What follows them — a CNN's fully connected layer and the
        classifier — keeps training: the "new head" of the textbook experiment. With
        ``up_to_classifier`` only the classifier trains (a linear probe of the features)."""
        # "" is a prefix of every name: everything but the classifier is frozen.
        self._frozen_prefixes = ("",) if up_to_classifier else self.feature_extractor
        for name, param in self.named_parameters():
            if name.startswith(self._frozen_prefixes) and not name.startswith("classifier."):
                param.requires_grad = False

    def train(self, mode: bool = True) -> ImageClassifier:
        super().train(mode)
        frozen = getattr(self, "_frozen_prefixes", None)
        if frozen:
            # Frozen features must be frozen entirely: BatchNorm in training mode would keep
            # updating its running statistics from the new task's batches.
            for name, module in self.named_modules():
                if isinstance(module, nn.BatchNorm2d) and name.startswith(frozen):
                    module.eval()
        return self


# ----------------------------------------------------------------------------- MLP


class MLPForImageClassification(ImageClassifier):
    """Flatten → (Linear → ReLU → Dropout) × len(hidden_sizes) → Linear."""

    config_class = MLPConfig
    feature_extractor = ("hidden.",)

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        self._register_normalisation(config)
        sizes = [config.num_channels * config.image_size**2, *_hidden_sizes(config)]
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(sizes):
            layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(config.dropout)]
        self.hidden = nn.Sequential(*layers)
        self.feature_size = sizes[-1]
        self.classifier = nn.Linear(self.feature_size, config.num_labels)
        self.post_init()

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.normalise(pixel_values).flatten(1)  # (B, C·H·W): pixel positions forgotten
        return self.hidden(x)  # (B, D)


# ----------------------------------------------------------------------------- LeNet CNN


class CNNForImageClassification(ImageClassifier):
    """LeNet: (conv → ReLU → 2×2 max-pool) × 2 → flatten → fc → ReLU → dropout → classifier.

    Convolutions share one small kernel across the image, so a stroke is detected wherever it
    is; pooling then tolerates small shifts. Padding ``kernel_size // 2`` keeps the size through
    each convolution, so the feature map is H/4 × W/4 before flattening.
    """

    config_class = CNNConfig
    feature_extractor = ("conv.",)

    def __init__(self, config: CNNConfig) -> None:
        super().__init__(config)
        if config.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {config.image_size}")
        self._register_normalisation(config)
        c1, c2 = config.conv_channels or [32, 64]
        k = config.kernel_size
        self.conv = nn.Sequential(
            nn.Conv2d(config.num_channels, c1, k, padding=k // 2),  # (B, c1, H, W)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, k, padding=k // 2),  # (B, c2, H/2, W/2)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c2, H/4, W/4)
        )
        flat = c2 * (config.image_size // 4) ** 2
        self.fc = nn.Sequential(nn.Linear(flat, config.hidden_size), nn.ReLU())
        self.dropout = nn.Dropout(config.dropout)
        self.feature_size = config.hidden_size
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def feature_maps(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The output of each convolution (after ReLU), for plotting what the filters see."""
        x, maps = self.normalise(pixel_values), []
        for layer in self.conv:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                maps.append(x)
        return maps

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.normalise(pixel_values))  # (B, c2, H/4, W/4)
        return self.dropout(self.fc(x.flatten(1)))  # (B, D)


# ----------------------------------------------------------------------------- ResNet


class ResidualBlock(nn.Module):
    """relu(shortcut(x) + BN(conv(relu(BN(conv(x)))))): the "basic block" of ResNet-18/34.

    When the block changes the shape (stride 2 or more channels), the shortcut is a 1×1
    convolution with BatchNorm (the paper's projection shortcut, option B); otherwise the
    identity, which is what lets a deep stack start out as (nearly) the identity function.
    """

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H/stride, W/stride)
        out = self.bn2(self.conv2(out))  # convolutions have no bias: BatchNorm's shift is one
        return F.relu(out + self.shortcut(x))


class ResNetForImageClassification(ImageClassifier):
    """Stem (3×3 conv, BN, ReLU) → stages of residual blocks → global average pool → classifier.

    No 7×7 stem or max-pool as in the ImageNet ResNets: on 8×8 to 32×32 images they would throw
    away most of the picture before the first block (the CIFAR ResNets of the paper, §4.2, do
    the same).
    """

    config_class = ResNetConfig
    feature_extractor = ("stem.", "blocks.")

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)
        self._register_normalisation(config)
        widths = config.widths or [32, 64, 128]
        self.stem = nn.Sequential(
            nn.Conv2d(config.num_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        blocks, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for index in range(config.blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(ResidualBlock(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.feature_size = channels
        self.classifier = nn.Linear(channels, config.num_labels)
        self.post_init()

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(self.normalise(pixel_values)))  # (B, D, H', W')
        return x.mean(dim=(2, 3))  # global average pool: (B, D), any image size works


# ----------------------------------------------------------------------------- autoencoder


@dataclass
class AutoencoderOutput(ModelOutput):
    """``reconstruction`` (B, C, H, W) in [0, 1]; ``loss`` the mean squared error to the
    clean images when they were given."""

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None


class ConvAutoencoder(ImageModel):
    """Encoder: two stride-2 convolutions (H → H/4). Decoder: two stride-2 transposed
    convolutions back to H, and a sigmoid so the output is an image in [0, 1].

    Trained on noisy inputs against clean targets, the narrow code cannot simply copy its input:
    it must learn what digits look like to tell strokes from noise.
    """

    config_class = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        if config.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {config.image_size}")
        self._register_normalisation(config)
        c1, c2 = config.channels or [32, 64]
        channels = config.num_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, c1, 3, stride=2, padding=1),  # (B, c1, H/2, W/2)
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),  # (B, c2, H/4, W/4): the code
            nn.ReLU(),
        )
        # Kernel 4, stride 2, padding 1 exactly doubles the size: (H - 1)·2 - 2 + 4 = 2H.
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),  # (B, c1, H/2, W/2)
            nn.ReLU(),
            nn.ConvTranspose2d(c1, channels, 4, stride=2, padding=1),  # (B, C, H, W)
        )
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        clean_pixel_values: torch.Tensor | None = None,
        **kwargs,
    ) -> AutoencoderOutput:
        """Reconstruct ``pixel_values`` (possibly noisy); the loss compares with the clean ones."""
        code = self.encoder(self.normalise(pixel_values))
        reconstruction = torch.sigmoid(self.decoder(code))  # (B, C, H, W) in [0, 1]
        loss = None
        if clean_pixel_values is not None:
            loss = F.mse_loss(reconstruction, clean_pixel_values)
        return AutoencoderOutput(loss=loss, reconstruction=reconstruction)


# ----------------------------------------------------------------------------- lookup tables

# ----------------------------------------------------------------------------- builders
#
# The recipe's ``model`` section for each architecture (``model.architecture``), turned into a
# config with what the images say (their size, channels, statistics and classes). Sizes left
# unset take the architecture's default, or with ``init_from`` the folder's.

FREEZE_CHOICES = ("none", "features", "all-but-classifier")
"""``model.freeze``: what transfer learning keeps fixed."""
MAX_KERNEL = 64
"""Largest convolution kernel side."""


def _check_widths(name: str, widths: list[int] | None) -> None:
    widths = widths or []
    check_range(f"model.{name} (its length)", len(widths), 0, MAX_DEPTH)
    for i, width in enumerate(widths):
        check_range(f"model.{name}[{i}]", width, 1, MAX_WIDTH, integer=True)


@dataclass
class ImageBuilder(ModelBuilder):
    """What every image architecture shares: the data's image shape and statistics."""

    tags: ClassVar[tuple[str, ...]] = ()

    def image_fields(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The config fields every image model takes from the data."""
        fields = ("image_size", "num_channels", "image_mean", "image_std")
        return {name: facts[name] for name in fields}

    def check_divisible(self, facts: dict[str, Any], by: int) -> None:
        """Refuse images whose side the architecture's pooling cannot halve ``log2(by)`` times."""
        size = facts["image_size"]
        if size % by:
            raise UserError(
                f"model.architecture {self.name()} needs images whose side is divisible by {by}, "
                f"but the data's are {size}x{size} pixels"
            )

    def window(self, config: Any) -> tuple[int, int | None]:
        """Images are whole examples: no window of tokens."""
        return 0, None

    def check_image_shape(self, model: ImageModel, facts: dict[str, Any]) -> None:
        """Refuse an ``init_from`` model made for other images than the data's."""
        config = model.config
        expected = (config.num_channels, config.image_size, config.image_size)
        got = (facts["num_channels"], facts["image_size"], facts["image_size"])
        if got != expected:
            raise UserError(
                f"model.init_from: the model expects images of {expected[0]} channel(s) and "
                f"{expected[1]}x{expected[2]} pixels, but the data has {got[0]} channel(s) and "
                f"{got[1]}x{got[2]} pixels"
            )

    def fit_to_data(self, model: Any, facts: dict[str, Any]) -> Any:
        self.check_image_shape(model, facts)
        return model


@dataclass
class ImageClassifierBuilder(ImageBuilder):
    """Transfer learning, shared by the classifiers: ``model.init_from`` (a classifier trained
    on another task), ``model.new_head`` (replace its last layer) and ``model.freeze``
    (``features``: keep the feature extractor — a CNN's convolutions — and train what follows;
    ``all-but-classifier``: train the last layer only, a linear probe; ``none``: fine-tune
    everything, usually with a smaller ``trainer.lr``)."""

    new_head: bool = True
    """With init_from: replace the last layer by a fresh one sized for this recipe's classes."""
    freeze: str = "none"
    """With init_from: features, all-but-classifier or none (see the class docstring)."""

    def __post_init__(self) -> None:
        check_choice("model.freeze", self.freeze, FREEZE_CHOICES)
        if self.freeze != "none" and not self.init_from:
            raise UserError("model.freeze needs model.init_from (a pretrained model to freeze)")

    def label_fields(self, facts: dict[str, Any]) -> dict[str, Any]:
        return {"id2label": dict(enumerate(facts["class_names"]))}

    def fit_to_data(self, model: Any, facts: dict[str, Any]) -> Any:
        self.check_image_shape(model, facts)
        names = facts["class_names"]
        if self.new_head:
            model.reset_classifier(len(names))
            model.config.id2label = dict(enumerate(names))
            model.config.label2id = {name: i for i, name in enumerate(names)}
        elif model.config.num_labels != len(names):
            raise UserError(
                f"model.init_from: {self.init_from} predicts {model.config.num_labels} classes "
                f"but the data has {len(names)}; set model.new_head=true"
            )
        return model

    def set_trainable(self, model: Any) -> None:
        if self.freeze != "none":
            model.freeze_features(up_to_classifier=self.freeze == "all-but-classifier")


@dataclass
class ImageMLPBuilder(ImageClassifierBuilder):
    """``image-mlp``: :class:`MLPForImageClassification`, the baseline without convolutions."""

    hidden_sizes: list[int] | None = None
    """Widths of the hidden layers (default [256, 128])."""
    dropout: float = 0.25
    """Dropout after each hidden layer."""

    heads: ClassVar[dict[str, type]] = {"image-classification": MLPForImageClassification}
    shape_fields: ClassVar[dict[str, str]] = same_names("hidden_sizes")
    tags: ClassVar[tuple[str, ...]] = ("mlp",)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges("model", self, {"dropout": probability()})
        _check_widths("hidden_sizes", self.hidden_sizes)

    def config(self, task: str, facts: dict[str, Any]) -> MLPConfig:
        return MLPConfig(
            hidden_sizes=self.hidden_sizes or [256, 128],
            dropout=self.dropout,
            **self.image_fields(facts),
            **self.label_fields(facts),
        )


@dataclass
class CNNBuilder(ImageClassifierBuilder):
    """``cnn``: :class:`CNNForImageClassification`, LeNet."""

    conv_channels: list[int] | None = None
    """Channels of the two convolutions (default [32, 64])."""
    kernel_size: int | None = None
    """Convolution kernel size (default 5)."""
    hidden_size: int | None = None
    """Width of the fully connected layer, the feature vector (default 128)."""
    dropout: float = 0.25
    """Dropout before the classifier."""

    heads: ClassVar[dict[str, type]] = {"image-classification": CNNForImageClassification}
    shape_fields: ClassVar[dict[str, str]] = same_names(
        "conv_channels", "kernel_size", "hidden_size"
    )
    tags: ClassVar[tuple[str, ...]] = ("cnn",)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(
            "model",
            self,
            {
                "kernel_size": count(1, MAX_KERNEL),
                "hidden_size": count(1, MAX_WIDTH),
                "dropout": probability(),
            },
        )
        _check_widths("conv_channels", self.conv_channels)
        if self.conv_channels is not None and len(self.conv_channels) != 2:
            raise UserError(
                f"model.conv_channels lists the channels of LeNet's two convolutions, got "
                f"{len(self.conv_channels)} values"
            )

    def config(self, task: str, facts: dict[str, Any]) -> CNNConfig:
        self.check_divisible(facts, 4)
        return CNNConfig(
            conv_channels=self.conv_channels or [32, 64],
            kernel_size=self.kernel_size or 5,
            hidden_size=self.hidden_size or 128,
            dropout=self.dropout,
            **self.image_fields(facts),
            **self.label_fields(facts),
        )


@dataclass
class ResNetBuilder(ImageClassifierBuilder):
    """``resnet``: :class:`ResNetForImageClassification`."""

    widths: list[int] | None = None
    """Channels of each stage (default [32, 64, 128])."""
    blocks_per_stage: int | None = None
    """Residual blocks per stage (default 1)."""

    heads: ClassVar[dict[str, type]] = {"image-classification": ResNetForImageClassification}
    shape_fields: ClassVar[dict[str, str]] = same_names("widths", "blocks_per_stage")
    tags: ClassVar[tuple[str, ...]] = ("resnet",)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges("model", self, {"blocks_per_stage": count(1, MAX_DEPTH)})
        _check_widths("widths", self.widths)
        if self.widths is not None and not self.widths:
            raise UserError("model.widths must list at least one stage's channels")

    def config(self, task: str, facts: dict[str, Any]) -> ResNetConfig:
        return ResNetConfig(
            widths=self.widths or [32, 64, 128],
            blocks_per_stage=self.blocks_per_stage or 1,
            **self.image_fields(facts),
            **self.label_fields(facts),
        )


@dataclass
class DenoisingAutoencoderBuilder(ImageBuilder):
    """``denoising-autoencoder``: :class:`ConvAutoencoder`, trained for ``image-reconstruction``."""

    channels: list[int] | None = None
    """Channels of the two encoder convolutions (default [32, 64])."""
    noise_std: float = 0.3
    """Standard deviation of the training noise (images in [0, 1])."""

    heads: ClassVar[dict[str, type]] = {"image-reconstruction": ConvAutoencoder}
    shape_fields: ClassVar[dict[str, str]] = {"channels": "channels"}
    tags: ClassVar[tuple[str, ...]] = ("autoencoder",)

    def __post_init__(self) -> None:
        check_ranges("model", self, {"noise_std": non_negative()})
        _check_widths("channels", self.channels)
        if self.channels is not None and len(self.channels) != 2:
            raise UserError(
                f"model.channels lists the channels of the two encoder convolutions, got "
                f"{len(self.channels)} values"
            )

    def config(self, task: str, facts: dict[str, Any]) -> AutoencoderConfig:
        self.check_divisible(facts, 4)
        # The output is an image in [0, 1]; the input is normalised like the classifiers'.
        return AutoencoderConfig(
            channels=self.channels or [32, 64],
            noise_std=self.noise_std,
            **self.image_fields(facts),
        )

    def runtime_settings(self) -> dict[str, Any]:
        """The recipe's training noise, also for a model it starts from (``init_from``)."""
        return {"noise_std": self.noise_std}
