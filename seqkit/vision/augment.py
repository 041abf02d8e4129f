"""Data augmentation on batches of image tensors: random crop, horizontal flip, small rotation.

Each transform acts on a whole batch (B, C, H, W) at once, on whatever device it lives, with a
different random draw per image — no per-image Python loop, no PIL, no torchvision. Random
numbers come from torch's global generator, which the Trainer seeds and checkpoints, so a
resumed run draws the same augmentations as an uninterrupted one.

Random crop with zero padding and horizontal flips are the augmentations of the CIFAR ResNets
(He et al. 2016, §4.2); small rotations are the classic augmentation for handwritten digits.
Flipping a digit makes another symbol, so it is off by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """Pad each side by ``padding`` zeros, then cut a random H×W window from each image."""
    if padding <= 0:
        return images
    B, _, H, W = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
    top = torch.randint(0, 2 * padding + 1, (B,), device=images.device)
    left = torch.randint(0, 2 * padding + 1, (B,), device=images.device)
    rows = top[:, None] + torch.arange(H, device=images.device)  # (B, H)
    cols = left[:, None] + torch.arange(W, device=images.device)  # (B, W)
    batch = torch.arange(B, device=images.device)[:, None, None]
    # Advanced indexing picks padded[b, :, rows[b, i], cols[b, j]]: (B, H, W, C).
    cropped = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def random_flip(images: torch.Tensor, probability: float = 0.5) -> torch.Tensor:
    """Mirror each image left–right with ``probability``."""
    if probability <= 0:
        return images
    flip = torch.rand(images.shape[0], device=images.device) < probability
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_rotation(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate each image about its centre by an angle drawn uniformly from ±``degrees``.

    One affine grid per image and one ``grid_sample`` for the batch; corners that rotate in
    from outside the image are filled with zeros (the background).
    """
    if degrees <= 0:
        return images
    B = images.shape[0]
    angles = (torch.rand(B, device=images.device) * 2 - 1) * math.radians(degrees)
    cos, sin = angles.cos(), angles.sin()
    zero = torch.zeros_like(cos)
    # Rows of the 2×3 matrices mapping output coordinates to input ones, in [-1, 1] units.
    theta = torch.stack(
        [torch.stack([cos, -sin, zero], dim=1), torch.stack([sin, cos, zero], dim=1)], dim=1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)


@dataclass
class Augmentation:
    """The augmentations a recipe asks for, applied in order crop → flip → rotation."""

    crop_padding: int = 0
    flip_probability: float = 0.0
    rotation_degrees: float = 0.0

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip_probability > 0 or self.rotation_degrees > 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = random_crop(images, self.crop_padding)
        images = random_flip(images, self.flip_probability)
        return random_rotation(images, self.rotation_degrees)
