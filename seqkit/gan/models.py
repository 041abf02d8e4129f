"""DCGAN: a generator of transposed convolutions against a discriminator of strided ones.

Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", on the GAN game of Goodfellow et al. 2014. The paper's
architecture guidelines, each kept here:

- no pooling: the generator upsamples with fractionally-strided (transposed) convolutions, the
  discriminator downsamples with strided convolutions;
- BatchNorm in both networks, except the generator's output and the discriminator's input layer;
- ReLU in the generator with Tanh at the output (images in [-1, 1]); LeakyReLU(0.2) in the
  discriminator;
- weights drawn from N(0, 0.02).

Each network halves (or doubles) the image and doubles (or halves) the channels per stage: the
generator starts from a ``start_size``² map made from the noise vector, the discriminator ends on
one. The paper starts from 4×4 for 64×64 images; 8×8 digits start from 2×2.

Shape legend: B batch, Z latent_dim, C image channels, S image_size, F feature width.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init

from seqkit.checks import MAX_SAMPLES, MAX_STEPS, MAX_WIDTH, check_ranges, count, positive
from seqkit.errors import UserError
from seqkit.parts.base import ModelBuilder, same_names
from seqkit.recipes import Recipe


class DCGANConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`DCGAN` (generator and discriminator)."""

    model_type = "seqkit-dcgan"

    latent_dim: int = 64
    """Length Z of the noise vector the generator turns into an image."""
    image_size: int = 8
    """Height and width S of the generated images; start_size × a power of two."""
    num_channels: int = 1
    """Image channels C."""
    start_size: int = 2
    """Side of the generator's first feature map (and the discriminator's last)."""
    generator_features: int = 32
    """Channels F of the generator's last hidden map; each earlier stage has twice as many."""
    discriminator_features: int = 32
    """Channels of the discriminator's first map; each later stage has twice as many."""

    @property
    def num_stages(self) -> int:
        """Number of ×2 up- (or down-)sampling stages between start_size and image_size."""
        ratio = self.image_size / self.start_size
        stages = round(math.log2(ratio)) if ratio >= 1 else -1
        if stages < 1 or self.start_size * 2**stages != self.image_size:
            raise ValueError(
                f"image_size ({self.image_size}) must be start_size ({self.start_size}) times a "
                "power of two, at least 2"
            )
        return stages


class Generator(nn.Module):
    """z (B, Z) → image (B, C, S, S) in [-1, 1].

    A transposed convolution with kernel ``start_size`` turns the noise (viewed as a 1×1 map)
    into a start_size² map; each further stage ConvTranspose(4, stride 2, padding 1) doubles
    the size: (s − 1)·2 − 2 + 4 = 2s.
    """

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        stages, width = config.num_stages, config.generator_features
        channels = [width * 2 ** (stages - 1 - i) for i in range(stages)]  # e.g. [64, 32]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.latent_dim, channels[0], config.start_size, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
        ]  # (B, channels[0], start, start)
        for channels_in, channels_out in itertools.pairwise(channels):
            layers += [
                nn.ConvTranspose2d(channels_in, channels_out, 4, 2, 1, bias=False),  # ×2 size
                nn.BatchNorm2d(channels_out),
                nn.ReLU(),
            ]
        # The output layer: no BatchNorm (the paper's guideline), Tanh to [-1, 1].
        layers += [nn.ConvTranspose2d(channels[-1], config.num_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = config.latent_dim

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(noise[:, :, None, None])  # (B, Z, 1, 1) → (B, C, S, S)


class Discriminator(nn.Module):
    """image (B, C, S, S) → one logit per image: "real" when positive.

    Each stage Conv(4, stride 2, padding 1) halves the size; a last convolution with kernel
    ``start_size`` reduces the start_size² map to a single number.
    """

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        stages, width = config.num_stages, config.discriminator_features
        channels = [width * 2**i for i in range(stages)]  # e.g. [32, 64]
        # The input layer: no BatchNorm (the paper's guideline).
        layers: list[nn.Module] = [
            nn.Conv2d(config.num_channels, channels[0], 4, 2, 1),  # (B, F, S/2, S/2)
            nn.LeakyReLU(0.2),
        ]
        for channels_in, channels_out in itertools.pairwise(channels):
            layers += [
                nn.Conv2d(channels_in, channels_out, 4, 2, 1, bias=False),  # ÷2 size
                nn.BatchNorm2d(channels_out),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(channels[-1], 1, config.start_size))  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten()  # (B,) logits


class DCGAN(PreTrainedModel):
    """Both networks in one Hub folder. ``forward(noise)`` generates images in [-1, 1]; the
    training task (:class:`seqkit.gan.task.DCGANTask`) trains the two halves against each
    other with their own optimizers."""

    config_class = DCGANConfig
    base_model_prefix = "dcgan"
    main_input_name = "noise"

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The paper's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) BatchNorm gains."""
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.normal_(module.weight, mean=1.0, std=0.02)
            init.zeros_(module.bias)

    def forward(self, noise: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.generator(noise)

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num_samples`` images in [0, 1] (B, C, S, S), from noise drawn with ``generator``."""
        noise = torch.randn(num_samples, self.config.latent_dim, generator=generator)
        was_training = self.generator.training
        self.generator.eval()  # BatchNorm uses its running statistics: samples do not interact
        images = self.generator(noise.to(self.device))
        self.generator.train(was_training)
        return (images + 1) / 2


MAX_START_SIZE = 1024
"""Largest side of the generator's first feature map."""


@dataclass
class DCGANBuilder(ModelBuilder):
    """The ``model`` section of a recipe that trains a DCGAN (``model.architecture: dcgan``):
    the two networks' sizes, and how the ``gan`` task trains and draws them."""

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

    heads: ClassVar[dict[str, type]] = {"gan": DCGAN}
    shape_fields: ClassVar[dict[str, str]] = same_names(
        "latent_dim", "start_size", "generator_features", "discriminator_features"
    )
    tags: ClassVar[tuple[str, ...]] = ("gan", "dcgan", "image-generation")

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

    def config(self, task: str, facts: dict[str, Any]) -> DCGANConfig:
        channels, size, _ = facts["image_shape"]
        config = DCGANConfig(
            latent_dim=self.latent_dim,
            image_size=size,
            num_channels=channels,
            start_size=self.start_size,
            generator_features=self.generator_features,
            discriminator_features=self.discriminator_features,
        )
        try:
            config.num_stages  # noqa: B018 - validates image_size against start_size
        except ValueError as error:
            raise UserError(f"model.start_size: the images are {size}x{size}; {error}") from None
        return config

    def window(self, config: Any) -> tuple[int, int | None]:
        return 1, None  # an image is one example; there is no window to cut

    def task_settings(self, recipe: Recipe) -> dict[str, Any]:
        return {
            "generator_lr": self.generator_lr,
            "discriminator_lr": self.discriminator_lr,
            "sample_every": self.sample_every,
            "num_samples": self.num_samples,
            "seed": recipe.trainer.seed,
        }
