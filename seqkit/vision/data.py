"""Image data: where the pictures come from, how they are split, and which classes are kept.

Sources, in the order a recipe's ``data`` section is read:

- ``data.path``: a local ``.npz`` file with ``images`` and ``labels`` arrays (read with
  ``allow_pickle=False``: nothing is ever unpickled), or a folder of MNIST-format IDX files
  (``*-images-idx3-ubyte`` and ``*-labels-idx1-ubyte``, optionally ``.gz``), which is how
  MNIST and Fashion-MNIST are distributed;
- ``data.hub``: a Hub data set such as ``ylecun/mnist``, ``zalando-datasets/fashion_mnist`` or
  ``uoft-cs/cifar10`` (needs the network or a local Hub cache);
- ``data.embedded``: ``digits``, scikit-learn's 1,797 handwritten digits (8×8, 17 grey levels),
  which ship with scikit-learn — the default, so everything runs without a download.

Whatever the source, images become a float tensor (N, C, H, W) in [0, 1] and labels a long
tensor (N,). One seeded permutation then splits them into test, validation and training parts,
so every run of a recipe (and ``seqkit evaluate`` on it later) sees the same split.

:class:`ImageData` is the ``images`` data module of :mod:`seqkit.parts`: no tokenizer; the
model learns the image shape, the classes and the training images' per-channel statistics from
its facts; training evaluates on the validation part, ``seqkit evaluate`` on the test part.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit.checks import (
    MAX_SEED,
    check_range,
    check_ranges,
    count,
    non_negative,
    probability,
)
from seqkit.errors import UserError
from seqkit.parts.base import DataModule, Prepared
from seqkit.recipes import DataSection as BaseDataSection
from seqkit.vision.augment import Augmentation

EMBEDDED = ("digits",)
MAX_CROP_PADDING = 1024
"""Widest padding of the random-crop augmentation, in pixels."""


@dataclass
class ImageDataSection(BaseDataSection):
    """The ``data`` section of an image recipe (the text fields of the base are unused)."""

    embedded: str | None = "digits"
    """An image set that ships with an installed package: digits (scikit-learn)."""
    hub_split: str = "train"
    """Split of the Hub data set to read (validation and test are cut from it)."""
    image_column: str | None = None
    """Column of the Hub data set holding the images (default: image or img)."""
    label_column: str | None = None
    """Column of the Hub data set holding the labels (default: label or labels)."""
    val_fraction: float = 0.1
    """Fraction of the images held out for validation (evaluated during training)."""
    test_fraction: float = 0.2
    """Fraction of the images held out for the test set (`seqkit evaluate`)."""
    split_seed: int = 0
    """Seed of the permutation that splits the images; fixed so that runs share one split."""
    classes: list[int] | None = None
    """Keep only these labels, renumbered 0..k-1 in this order (e.g. [5, 6, 7, 8, 9])."""
    labels_per_class: int | None = None
    """Keep only this many training images per class (few-label transfer learning)."""
    crop_padding: int = 0
    """Augmentation: random crop after padding each side by this many pixels (0 = off)."""
    flip_probability: float = 0.0
    """Augmentation: probability of a left-right flip (0 for digits: a flipped 2 is no 2)."""
    rotation_degrees: float = 0.0
    """Augmentation: random rotation within ± this many degrees (0 = off)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(
            "data",
            self,
            {
                "test_fraction": probability(),
                "split_seed": count(0, MAX_SEED),
                "labels_per_class": count(1, None),
                "crop_padding": count(0, MAX_CROP_PADDING),
                "flip_probability": probability(high_open=False),
                "rotation_degrees": non_negative(180),
            },
        )
        for i, label in enumerate(self.classes or ()):
            check_range(f"data.classes[{i}]", label, 0, None, integer=True)
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError(
                "data.val_fraction + data.test_fraction must leave images for training, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise UserError(f"data.classes has repeated labels: {self.classes}")


@dataclass
class ImageSplits:
    """Images in [0, 1] and labels for each part, plus the names of the (kept) classes."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    class_names: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


class ImageDataset(Dataset):
    """Rows ``{"pixel_values": (C, H, W) float, "labels": int64}``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.images[index], "labels": self.labels[index]}


# ---------------------------------------------------------------------------- sources


def load_images(data: ImageDataSection) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """All images (N, C, H, W) in [0, 1], labels (N,) and class names, from the recipe's source."""
    if data.path:
        images, labels = _load_local(Path(data.path))
        names = None
    elif data.hub:
        images, labels, names = _load_hub(data)
    elif data.embedded:
        if data.embedded not in EMBEDDED:
            raise UserError(
                f"data.embedded must be one of {', '.join(EMBEDDED)}, got {data.embedded!r}"
            )
        images, labels, names = _load_digits()
        names = list(names)
    else:
        raise UserError(
            "the data section names no images: set data.path, data.hub or data.embedded"
        )
    images = _to_nchw(images, where=data.path or data.hub or data.embedded)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(labels) != len(images):
        raise UserError(f"{len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise UserError("the data set holds no images")
    if int(labels.min()) < 0:
        raise UserError(f"labels must be >= 0, found {int(labels.min())}")
    num_classes = int(labels.max()) + 1
    return images, labels, names or [str(i) for i in range(num_classes)]


@functools.cache
def _load_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's digits, read once per process; callers copy before changing anything.

    The 1,797 rows of 64 pixel counts (0..16) and a label are read straight from the CSV that
    scikit-learn ships, found without importing scikit-learn (whose import alone takes longer
    than the whole read); ``sklearn.datasets.load_digits`` is the fallback.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise UserError("data.embedded=digits needs scikit-learn, which is not installed")
    csv_path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if csv_path.is_file():
        table = np.loadtxt(csv_path, delimiter=",", dtype=np.float32)
        pixels, target = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels, target = digits.data, digits.target
    # Pixel values count set pixels in 4×4 blocks of the original 32×32 scans: 0..16.
    return pixels.reshape(-1, 8, 8) / 16.0, target, [str(i) for i in range(10)]


def _load_local(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise UserError(f"data.path {path} does not exist")
    if path.is_dir():
        return _load_idx_folder(path)
    if path.suffix != ".npz":
        raise UserError(f"data.path {path}: expected a .npz file or a folder of IDX files")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "labels"} - set(archive.files)
            if missing:
                raise UserError(
                    f"{path} lacks the array(s) {', '.join(sorted(missing))}; it has "
                    f"{', '.join(archive.files) or 'none'}"
                )
            return _scaled(archive["images"]), archive["labels"]
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path} as .npz: {error}") from None


def _load_idx_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-format IDX files; every ``*-images-idx3-ubyte`` with its ``*-labels-idx1-ubyte``."""
    image_files = sorted(folder.glob("*-images-idx3-ubyte*"))
    if not image_files:
        raise UserError(f"{folder} holds no *-images-idx3-ubyte files (MNIST format)")
    images, labels = [], []
    for image_file in image_files:
        label_file = Path(str(image_file).replace("-images-idx3-", "-labels-idx1-"))
        if not label_file.is_file():
            raise UserError(f"{image_file} has no matching labels file {label_file.name}")
        images.append(_read_idx(image_file, dims=3))
        labels.append(_read_idx(label_file, dims=1))
    return _scaled(np.concatenate(images)), np.concatenate(labels)


def _read_idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file (LeCun's MNIST format): magic 0x0000 08 DIMS, DIMS big-endian int32 sizes,
    then unsigned bytes."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 + 4 * dims or raw[:3] != b"\x00\x00\x08" or raw[3] != dims:
        raise UserError(f"{path} is not an IDX file of unsigned bytes with {dims} dimension(s)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: expected {shape}, found {body.size} bytes")
    return body.reshape(shape)


def _load_hub(data: ImageDataSection) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    try:
        from datasets import load_dataset

        table = load_dataset(data.hub, split=data.hub_split)
    except Exception as error:  # network, cache or name problems all end the same way
        raise UserError(
            f"cannot load Hub data set {data.hub!r} (split {data.hub_split!r}): "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    columns = table.column_names
    image_column = data.image_column or next((c for c in ("image", "img") if c in columns), None)
    label_column = data.label_column or next(
        (c for c in ("label", "labels", "fine_label") if c in columns), None
    )
    for what, column in (("image", image_column), ("label", label_column)):
        if column is None or column not in columns:
            raise UserError(
                f"Hub data set {data.hub!r} has no {what} column {column or ''}; columns: "
                f"{', '.join(columns)} (set data.{what}_column)"
            )
    images = np.stack([np.asarray(image) for image in table[image_column]])
    feature = table.features[label_column]
    names = list(feature.names) if hasattr(feature, "names") else None
    return _scaled(images), np.asarray(table[label_column]), names


def _scaled(images: np.ndarray) -> np.ndarray:
    """Bytes 0..255 → [0, 1]; float images are taken as already in [0, 1]."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def _to_nchw(images: np.ndarray, where: str | None) -> torch.Tensor:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} → float (N, C, H, W)."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] not in (1, 3) or array.shape[2] != array.shape[3]:
        raise UserError(
            f"{where}: expected square images shaped (N, H, W), (N, H, W, C) or (N, C, H, W) "
            f"with 1 or 3 channels, got {tuple(array.shape)}"
        )
    # NaN compares false with everything, so the range test alone would let it through.
    if array.size and not np.isfinite(array).all():
        raise UserError(
            f"{where}: {int((~np.isfinite(array)).sum())} pixel value(s) are NaN or inf"
        )
    if array.size and (array.min() < 0 or array.max() > 1):
        raise UserError(f"{where}: float pixel values must be in [0, 1] (or bytes 0..255)")
    return torch.from_numpy(np.ascontiguousarray(array))


# ---------------------------------------------------------------------------- splits


def load_splits(data: ImageDataSection) -> ImageSplits:
    """Load, keep ``data.classes``, split by one seeded permutation, limit training labels."""
    images, labels, names = load_images(data)
    if data.classes is not None:
        missing = [c for c in data.classes if not (labels == c).any()]
        if missing:
            raise UserError(f"data.classes: no images with label(s) {missing}")
        keep = torch.isin(labels, torch.tensor(data.classes))
        images, labels = images[keep], labels[keep]
        # Renumber to 0..k-1 so the classifier has exactly k outputs.
        renumber = {old: new for new, old in enumerate(data.classes)}
        labels = torch.tensor([renumber[int(label)] for label in labels], dtype=torch.long)
        names = [names[c] if c < len(names) else str(c) for c in data.classes]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(data.split_seed))
    n_test = round(len(order) * data.test_fraction)
    n_val = round(len(order) * data.val_fraction)
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    if data.labels_per_class is not None:
        # The first N of each class in the permuted order: a seeded, class-balanced subset.
        kept, counts = [], dict.fromkeys(range(len(names)), 0)
        for index in train.tolist():
            label = int(labels[index])
            if counts[label] < data.labels_per_class:
                counts[label] += 1
                kept.append(index)
        train = torch.tensor(kept, dtype=torch.long)
    present = torch.bincount(labels[train], minlength=len(names))
    empty = [names[i] for i in range(len(names)) if present[i] == 0]
    if empty:
        raise UserError(
            f"class(es) {', '.join(empty)} have no training images; use more data, drop them "
            "with data.classes, or lower data.val_fraction/test_fraction"
        )
    return ImageSplits(
        train=ImageDataset(images[train], labels[train]),
        val=ImageDataset(images[val], labels[val]),
        test=ImageDataset(images[test], labels[test]),
        class_names=names,
    )


def channel_statistics(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (N, C, H, W) images, for normalisation."""
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return mean.tolist(), std.tolist()


# ---------------------------------------------------------------------------- data module


class ImageData(DataModule):
    """The ``images`` data module: the recipe's images, split once (:func:`load_splits`).

    There is no tokenizer: what the model must know of the data (image size, channels, the
    training images' per-channel mean and standard deviation, the class names) are its
    :meth:`facts`, with the recipe's augmentation for the task.
    """

    Section = ImageDataSection
    no_data_files = (
        "--data is not supported for image models; seqkit evaluate scores the test images "
        "of the run's recipe (data.test_fraction)"
    )
    how_to_load = (
        "# pixel_values: (B, C, H, W) floats in [0, 1]; the model normalises them itself\n"
        "# or, from the command line: seqkit evaluate RUN_DIR --plots\n"
    )

    @cached_property
    def splits(self) -> ImageSplits:
        """The recipe's images, read and split once."""
        return load_splits(self.data)

    def facts(self, tokenizer: None) -> dict[str, object]:
        channels, size, _ = self.splits.image_shape
        mean, std = channel_statistics(self.splits.train.images)
        data = self.data
        return {
            "image_size": size,
            "num_channels": channels,
            "image_mean": mean,
            "image_std": std,
            "class_names": self.splits.class_names,
            "augmentation": Augmentation(
                data.crop_padding, data.flip_probability, data.rotation_degrees
            ),
        }

    def prepare(self, tokenizer: None, window: int, most: int | None) -> Prepared:
        splits = self.splits
        return Prepared(
            train_data=splits.train,
            eval_data=splits.val if len(splits.val) else None,
            summary={
                "images (train/val/test)": f"{len(splits.train)}/{len(splits.val)}/"
                f"{len(splits.test)}",
                "image shape": "x".join(map(str, splits.image_shape)),
                "classes": len(splits.class_names),
            },
        )

    def evaluation_data(self, tokenizer: None, window: int, most: int | None) -> Prepared:
        """The test part: images no run of the recipe trained or selected a model on."""
        if not len(self.splits.test):
            raise UserError("the run's recipe keeps no test images (data.test_fraction is 0)")
        return Prepared(train_data=None, eval_data=self.splits.test)

    def card_tags(self, tokenizer: None) -> list[str]:
        return ["vision"]
