"""Quality numbers for generated digits that need no download: ask a digits classifier.

The Inception Score and FID (Salimans et al. 2016; Heusel et al. 2017) judge ImageNet-sized
images with an Inception network that would have to be downloaded. For 8×8 digits the same ideas
work with a small LeNet trained here on scikit-learn's digits (:mod:`seqkit.vision`) — or on
whatever labelled images the GAN was trained on (MNIST, Fashion-MNIST), from the same split:

- **mean confidence**: the classifier's mean top-class probability. Recognisable digits score
  high; blobs between classes score low.
- **class entropy**: the entropy (nats) of the histogram of predicted classes. Ten equally
  frequent digits give ln 10 ≈ 2.303; a generator that collapsed onto a few modes scores low.
- **Fréchet distance** between Gaussians fitted to the classifier's penultimate features of
  real training digits and of the images judged (FID's formula, a smaller feature space):
  ``|μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½)``.

The same three numbers for *real* held-out digits (the GAN run's test split, which neither the
GAN nor the judge trained on) are the baseline a generator is measured against: a perfect
generator would match them (the Fréchet distance of two real samples is not 0, since each is a
finite sample; compare numbers computed on equally many images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seqkit.vision.data import ImageDataSection, ImageSplits, channel_statistics, load_splits
from seqkit.vision.models import CNNConfig, CNNForImageClassification


def digits_splits() -> ImageSplits:
    """scikit-learn's digits with the default split (the one the digits recipes use)."""
    return load_splits(ImageDataSection())


def train_quality_classifier(
    splits: ImageSplits, steps: int = 600, seed: int = 0
) -> CNNForImageClassification:
    """A small LeNet trained on ``splits.train``: a fixed measuring instrument.

    Sized from the data (channels, image size, classes), so the same judge works for the 8×8
    digits and for MNIST-style images. A plain loop rather than the Trainer: this is an internal
    tool with no run directory, checkpoints or logs of its own; its accuracy on the held-out
    images is reported next to the numbers it produces (:func:`accuracy`).
    """
    channels, size, _ = splits.image_shape
    if size % 4:
        raise ValueError(f"the judging CNN needs an image size divisible by 4, got {size}")
    torch.manual_seed(seed)
    mean, std = channel_statistics(splits.train.images)
    config = CNNConfig(
        conv_channels=[16, 32],
        hidden_size=64,
        dropout=0.1,
        image_size=size,
        num_channels=channels,
        image_mean=mean,
        image_std=std,
        num_labels=len(splits.class_names),
    )
    model = CNNForImageClassification(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    images, labels = splits.train.images, splits.train.labels
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(labels), (64,), generator=generator)
        loss = model(pixel_values=images[index], labels=labels[index]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.inference_mode()
def accuracy(classifier: CNNForImageClassification, images: torch.Tensor, labels) -> float:
    """Fraction of ``images`` the judge labels correctly: how far its verdicts can be trusted."""
    _, probabilities = features_and_probabilities(classifier, images)
    return float((probabilities.argmax(-1) == labels).float().mean())


@dataclass
class Judgement:
    """What the classifier makes of a set of images."""

    mean_confidence: float
    class_entropy: float
    frechet_distance: float


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` (N, D) and ``b`` (M, D).

    tr((Σ₁Σ₂)^½) is computed as the sum of square roots of the eigenvalues of the symmetric
    matrix Σ₁^½ Σ₂ Σ₁^½ (same eigenvalues as Σ₁Σ₂), which stays real and stable where a
    general matrix square root picks up imaginary round-off.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    sqrt_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    trace_sqrt = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


@torch.inference_mode()
def features_and_probabilities(
    classifier: CNNForImageClassification, images: torch.Tensor, batch_size: int = 512
) -> tuple[np.ndarray, torch.Tensor]:
    """Penultimate features (N, D) and class probabilities (N, K) of images in [0, 1]."""
    classifier.eval()
    # In batches: 60,000 MNIST images at once would hold gigabytes of activations.
    features = torch.cat(
        [classifier.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )
    probabilities = F.softmax(classifier.classifier(features), dim=-1)
    return features.numpy(), probabilities


def judge(
    classifier: CNNForImageClassification, images: torch.Tensor, reference: np.ndarray
) -> Judgement:
    """The three numbers for ``images``; ``reference`` the features of real reference images."""
    features, probabilities = features_and_probabilities(classifier, images)
    histogram = torch.bincount(
        probabilities.argmax(-1), minlength=probabilities.shape[1]
    ).double() / len(images)
    entropy = -sum(float(p) * math.log(float(p)) for p in histogram if p > 0)
    return Judgement(
        mean_confidence=float(probabilities.max(-1).values.mean()),
        class_entropy=entropy,
        frechet_distance=frechet_distance(features, reference),
    )
