"""Image sources and splits: digits, .npz and IDX files, class selection, few labels."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from seqkit.errors import UserError
from seqkit.vision.data import ImageDataSection, load_splits


def test_digits_split_is_disjoint_and_complete():
    splits = load_splits(ImageDataSection())
    sizes = [len(splits.train), len(splits.val), len(splits.test)]
    assert sum(sizes) == 1797 and sizes[2] == round(1797 * 0.2)
    assert splits.image_shape == (1, 8, 8)
    assert float(splits.train.images.min()) >= 0 and float(splits.train.images.max()) <= 1
    # The same seed gives the same split; a different one another.
    again = load_splits(ImageDataSection())
    assert torch.equal(again.test.images, splits.test.images)
    other = load_splits(ImageDataSection(split_seed=1))
    assert not torch.equal(other.test.images, splits.test.images)


def test_classes_are_renumbered_and_labels_per_class_limits_training():
    splits = load_splits(ImageDataSection(classes=[7, 3], labels_per_class=4))
    assert splits.class_names == ["7", "3"]
    assert torch.bincount(splits.train.labels).tolist() == [4, 4]
    assert set(splits.test.labels.tolist()) == {0, 1}


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_folder_and_npz_load(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 12, 12))
    labels = np.arange(40) % 4
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    splits = load_splits(ImageDataSection(path=str(tmp_path), val_fraction=0.1, test_fraction=0.1))
    assert splits.image_shape == (1, 12, 12) and len(splits.class_names) == 4
    assert float(splits.train.images.max()) <= 1.0
    npz = tmp_path / "colour.npz"
    np.savez(npz, images=rng.random((30, 6, 6, 3)).astype(np.float32), labels=np.arange(30) % 3)
    assert load_splits(ImageDataSection(path=str(npz))).image_shape == (3, 6, 6)


def test_bad_image_data_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((10, 4, 5)), labels=np.zeros(10))
    with pytest.raises(UserError, match="square images"):
        load_splits(ImageDataSection(path=str(bad)))
    unlabeled = tmp_path / "nolabels.npz"
    np.savez(unlabeled, images=np.zeros((10, 4, 4)))
    with pytest.raises(UserError, match="lacks the array"):
        load_splits(ImageDataSection(path=str(unlabeled)))
    with pytest.raises(UserError, match="no images with label"):
        load_splits(ImageDataSection(classes=[3, 11]))
    with pytest.raises(UserError, match="leave images for training"):
        ImageDataSection(val_fraction=0.5, test_fraction=0.5)
    poisoned = tmp_path / "nan.npz"
    pixels = np.full((10, 4, 4), 0.5, np.float32)
    pixels[3, 1, 2] = np.nan  # min() and max() of this array are NaN: no range test catches it
    np.savez(poisoned, images=pixels, labels=np.zeros(10))
    with pytest.raises(UserError, match="1 pixel value\\(s\\) are NaN or inf"):
        load_splits(ImageDataSection(path=str(poisoned)))


def test_a_class_without_training_images_is_refused(tmp_path):
    path = tmp_path / "rare.npz"
    labels = np.array([0] * 20 + [1])  # class 1 has one image, which lands in test or val
    np.savez(path, images=np.zeros((21, 4, 4), np.float32), labels=labels)
    with pytest.raises(UserError, match="class\\(es\\) 1 have no training images"):
        load_splits(
            ImageDataSection(path=str(path), val_fraction=0.3, test_fraction=0.6, split_seed=3)
        )


def test_hub_images_are_read_by_column(monkeypatch):
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    table = datasets.Dataset.from_dict(
        {
            "img": [
                Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)) for _ in range(20)
            ],
            "label": [i % 2 for i in range(20)],
        },
        features=datasets.Features(
            {"img": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])}
        ),
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: table)
    splits = load_splits(ImageDataSection(hub="someone/pets"))
    assert splits.image_shape == (3, 6, 6) and splits.class_names == ["cat", "dog"]
    monkeypatch.setattr(
        datasets, "load_dataset", lambda name, split: table.rename_column("img", "x")
    )
    with pytest.raises(UserError, match="no image column"):
        load_splits(ImageDataSection(hub="someone/pets"))


def test_every_vision_recipe_validates():
    from seqkit.parts.resolve import load_recipe, resolve
    from seqkit.recipes import RECIPES_DIR

    paths = sorted((RECIPES_DIR / "vision").glob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        parts = resolve(load_recipe(path))
        assert parts.task_name in ("image-classification", "image-reconstruction"), path
        assert type(parts.data).__name__ == "ImageData"
