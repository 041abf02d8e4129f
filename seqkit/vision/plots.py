"""Pictures of images and of what a model makes of them: grids, feature maps, mistakes, and the
confusion matrix as text.

matplotlib (already a dependency for loss plots) writes the PNGs with its non-interactive Agg
backend, so nothing here needs a display, PIL or torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def image_grid(images: torch.Tensor, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one (rows·H, columns·W[, 3]) array, with a
    ``gap``-pixel border so neighbours do not run into each other."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, channels, height, width = images.shape
    columns = columns or max(1, int(np.ceil(np.sqrt(n))))
    rows = max(1, int(np.ceil(n / columns)))
    # Mid-grey borders: visible against both dark and light backgrounds.
    grid = torch.full((channels, rows * (height + gap) + gap, columns * (width + gap) + gap), 0.5)
    for index in range(n):
        row, column = divmod(index, columns)
        top, left = gap + row * (height + gap), gap + column * (width + gap)
        grid[:, top : top + height, left : left + width] = images[index]
    array = grid.permute(1, 2, 0).numpy()  # (H', W', C)
    return array[:, :, 0] if channels == 1 else array


def save_image_grid(
    images: torch.Tensor, path: str | Path, columns: int | None = None, scale: int = 4
) -> Path:
    """Write ``images`` as one PNG grid, each pixel drawn ``scale``×``scale`` so that 8×8
    digits are visible."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    grid = image_grid(images, columns)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Grey digits are drawn dark-on-light (ink on paper); colour images as they are.
    if grid.ndim == 2:
        plt.imsave(path, 1.0 - grid, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        plt.imsave(path, grid)
    return path


def save_labelled_images(
    images: torch.Tensor, titles: Sequence[str], path: str | Path, columns: int = 8
) -> Path:
    """A figure of images with a caption each (e.g. ``true 3 → 8`` for a mistake)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = max(1, len(titles))
    rows = int(np.ceil(n / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.6 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(titles):
            image = images[index].detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy()
            if image.shape[2] == 1:
                axis.imshow(1.0 - image[:, :, 0], cmap="gray", vmin=0, vmax=1)
            else:
                axis.imshow(image)
            axis.set_title(titles[index], fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def save_feature_maps(maps: Sequence[torch.Tensor], path: str | Path, limit: int = 16) -> Path:
    """One row per layer: the first ``limit`` channels of each (1, C, H, W) activation, each
    scaled to its own range (activations have no fixed scale)."""
    tiles = []
    for activation in maps:
        channels = activation[0, :limit].detach().float().cpu()  # (c, H, W)
        low = channels.flatten(1).min(dim=1).values[:, None, None]
        high = channels.flatten(1).max(dim=1).values[:, None, None]
        tiles.append(((channels - low) / (high - low).clamp_min(1e-8)).unsqueeze(1))
    # Layers have different sizes; upsample each to the first layer's size for one grid.
    size = tiles[0].shape[-1]
    rows = [
        torch.nn.functional.interpolate(tile, size=(size, size), mode="nearest") for tile in tiles
    ]
    width = max(row.shape[0] for row in rows)
    padded = [torch.cat([row, torch.zeros(width - row.shape[0], 1, size, size)]) for row in rows]
    return save_image_grid(torch.cat(padded), path, columns=width, scale=8)


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """(K, K) counts: row = true class, column = predicted class."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


def format_confusion_matrix(matrix: torch.Tensor, names: Sequence[str]) -> str:
    """The matrix as an aligned text table, rows true, columns predicted."""
    width = max(4, max(len(n) for n in names), len(str(int(matrix.max()))) + 1)
    header = "true\\pred".ljust(10) + "".join(name.rjust(width) for name in names)
    rows = [
        str(name)[:10].ljust(10) + "".join(str(int(v)).rjust(width) for v in matrix[i])
        for i, name in enumerate(names)
    ]
    return "\n".join([header, *rows])
