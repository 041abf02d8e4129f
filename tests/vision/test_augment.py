"""Tensor augmentations: each draw is a real crop/flip/rotation of its own image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqkit.vision.augment import Augmentation, random_crop, random_flip, random_rotation


def test_random_crop_is_a_window_of_the_padded_image():
    torch.manual_seed(0)
    images = torch.rand(16, 2, 6, 6)
    cropped = random_crop(images, padding=2)
    padded = F.pad(images, (2, 2, 2, 2))
    offsets = set()
    for b in range(16):
        matches = [
            (top, left)
            for top in range(5)
            for left in range(5)
            if torch.equal(cropped[b], padded[b, :, top : top + 6, left : left + 6])
        ]
        assert matches, b
        offsets.add(matches[0])
    assert len(offsets) > 1  # images get different offsets


def test_random_flip_flips_some_images_and_leaves_others():
    torch.manual_seed(0)
    images = torch.rand(32, 1, 4, 4)
    out = random_flip(images, 0.5)
    flipped = [torch.equal(out[b], images[b].flip(-1)) for b in range(32)]
    kept = [torch.equal(out[b], images[b]) for b in range(32)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)
    assert torch.equal(random_flip(images, 1.0), images.flip(-1))


def test_random_rotation_of_a_centred_disc_keeps_it():
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    disc = (((y - 7.5) ** 2 + (x - 7.5) ** 2) < 16).float()[None, None].repeat(4, 1, 1, 1)
    rotated = random_rotation(disc, 30)
    assert (rotated - disc).abs().mean() < 0.05
    bar = torch.zeros(1, 1, 16, 16)
    bar[..., 7:9, 2:14] = 1
    assert (random_rotation(bar, 45) - bar).abs().sum() > 1  # a bar does turn


def test_augmentation_keeps_shape_and_is_inactive_by_default():
    images = torch.rand(4, 3, 8, 8)
    assert not Augmentation().active
    assert torch.equal(Augmentation()(images), images)
    assert Augmentation(1, 0.5, 10)(images).shape == images.shape
