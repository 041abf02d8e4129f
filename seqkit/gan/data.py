"""``data.module: gan-images``: the images a GAN learns to make, from the vision package's
sources (scikit-learn's digits by default, MNIST-style files or a Hub set).

The GAN trains on the training split in [0, 1] (labels are not used); the held-out test split
is the real baseline that ``seqkit evaluate`` compares generated images with
(:mod:`seqkit.gan.quality`). There is no validation loss worth the name, so there is no
evaluation data during training. The images are read through :mod:`seqkit.vision.data`'s public
names only.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from seqkit.parts.base import DataModule, Prepared
from seqkit.vision.data import ImageDataSection, ImageSplits, load_splits


class GANImages(DataModule):
    """The recipe's images, split once. Facts: ``image_shape`` (C, H, W) and the ``splits``
    (the evaluation judges samples against the run's own held-out images)."""

    Section = ImageDataSection
    no_data_files = (
        "--data is not supported for a GAN; seqkit evaluate RUN judges generated images "
        "against the run's held-out test images"
    )

    @cached_property
    def splits(self) -> ImageSplits:
        """The recipe's images, read and split once (facts and prepare both need them)."""
        return load_splits(self.data)

    def facts(self, tokenizer: Any) -> dict[str, Any]:
        return {"image_shape": self.splits.image_shape, "splits": self.splits}

    def prepare(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        splits = self.splits
        return Prepared(
            train_data=splits.train,
            eval_data=None,  # a GAN has no held-out loss worth the name; see `seqkit evaluate`
            summary={
                "training images": len(splits.train),
                "image shape": "x".join(map(str, splits.image_shape)),
            },
        )

    def card_tags(self, tokenizer: Any) -> list[str]:
        return ["images"]
