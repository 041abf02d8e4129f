"""Training tasks for image models: ``image-classification`` (with augmentation) and
``image-reconstruction`` (a denoising autoencoder).

Both plug into the one Trainer through the :class:`seqkit.trainer.Task` contract; augmentation
runs here, on the batch already on the device, so the data set stays a plain tensor store.
Classification is the shared :class:`~seqkit.trainer.tasks.ClassificationTask` (loss, accuracy
and the macro scores of the streamed confusion matrix) with augmented training batches;
``seqkit evaluate`` adds the confusion matrix as text and, with ``--plots``, pictures of the
mistakes and of the feature maps (:meth:`ImageClassificationTask.extra_evaluation`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from seqkit.trainer.tasks import ClassificationTask, Models, Task, only_model
from seqkit.vision.augment import Augmentation

PLOTS = "plots"
"""The run's folder that ``seqkit evaluate --plots`` writes pictures into."""


def plots_folder(options: Any) -> Path | None:
    """``RUN/plots`` when the command asked for ``--plots`` on a model of a run; None when it
    did not. A model outside any run is refused: its pictures would have no place to go."""
    from seqkit.errors import UserError

    if not getattr(options, "plots", False):
        return None
    path = Path(options.model)
    for candidate in (path, path.parent, path.parent.parent):  # RUN, RUN/final, a checkpoint
        if (candidate / "recipe.yaml").is_file():
            return candidate / PLOTS
    raise UserError(f"--plots: {path} is not inside a run directory, where the plots would go")


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class ImageClassificationTask(ClassificationTask):
    """Cross-entropy on augmented training batches; loss, accuracy and macro scores on
    evaluation batches."""

    generate_command = None  # an image classifier takes images, not a text prompt

    default_data = "images"
    pipeline_tag = "image-classification"
    auto_class = "AutoModelForImageClassification"

    def __init__(
        self,
        model: torch.nn.Module,
        num_labels: int | None = None,
        augmentation: Augmentation | None = None,
    ) -> None:
        super().__init__(model, num_labels)
        self.augmentation = augmentation or Augmentation()

    @classmethod
    def for_model(cls, model: torch.nn.Module, facts: Mapping[str, Any]) -> Task:
        # A checkpoint read back without its data has no facts: it is only evaluated.
        return cls(model, model.config.num_labels, facts.get("augmentation"))

    def training_step(self, models: Models, batch: dict[str, torch.Tensor], optimizer_name: str):
        images = batch["pixel_values"]
        if self.augmentation.active:
            images = self.augmentation(images)
        return only_model(models)(pixel_values=images, labels=batch["labels"]).loss

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """Print the confusion matrix of ``eval_data``; with ``--plots`` also draw the first 32
        mistakes (true → predicted) and, for a CNN, the feature maps of the first image."""
        from seqkit.vision.plots import (
            confusion_matrix,
            format_confusion_matrix,
            save_feature_maps,
            save_labelled_images,
        )

        model = self.model.eval()
        images, labels = eval_data.images, eval_data.labels
        batch_size = getattr(options, "batch_size", None) or 256
        device = _device_of(model)
        with torch.inference_mode():
            logits = torch.cat(
                [
                    model(images[i : i + batch_size].to(device)).logits.cpu()
                    for i in range(0, len(images), batch_size)
                ]
            )
        predictions = logits.argmax(dim=-1)
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        matrix = confusion_matrix(predictions, labels, len(names))
        print("confusion matrix (rows: true class, columns: predicted):")
        print(format_confusion_matrix(matrix, names))
        plots = plots_folder(options)
        if plots is not None:
            wrong = (predictions != labels).nonzero().flatten()[:32]
            titles = [f"{names[labels[i]]} → {names[predictions[i]]}" for i in wrong.tolist()]
            if titles:
                path = save_labelled_images(images[wrong], titles, plots / "misclassified.png")
                print(f"misclassified images (true → predicted): {path}", file=sys.stderr)
            if hasattr(model, "feature_maps"):
                with torch.inference_mode():
                    maps = [m.cpu() for m in model.feature_maps(images[:1].to(device))]
                # The input first, so each row of activations can be read against the digit.
                path = save_feature_maps([images[:1], *maps], plots / "feature_maps.png")
                print(
                    f"feature maps of image 0 (row 1: the image, then one row per "
                    f"convolution): {path}",
                    file=sys.stderr,
                )
        return {}


class DenoisingTask(Task):
    """Add Gaussian noise to the images; the autoencoder is scored on recovering the clean ones
    (Vincent et al. 2008, "Extracting and Composing Robust Features with Denoising
    Autoencoders").

    Evaluation draws its noise from a private generator with a fixed seed, so every evaluation
    scores the same corrupted images and the global random stream is left alone.
    """

    default_data = "images"
    auto_class = "AutoModel"

    def __init__(self, model: torch.nn.Module, noise_std: float) -> None:
        super().__init__(model)
        self.noise_std = noise_std

    @classmethod
    def for_model(cls, model: torch.nn.Module, facts: Mapping[str, Any]) -> Task:
        return cls(model, noise_std=model.config.noise_std)

    def _corrupt(self, clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(clean.shape, generator=generator, device="cpu").to(clean.device)
        return (clean + self.noise_std * noise).clamp(0.0, 1.0)

    def training_step(self, models: Models, batch: dict[str, torch.Tensor], optimizer_name: str):
        clean = batch["pixel_values"]
        noisy = self._corrupt(clean, None)
        return only_model(models)(pixel_values=noisy, clean_pixel_values=clean).loss

    def evaluation_step(self, models: Models, batch: dict[str, torch.Tensor]) -> dict:
        clean = batch["pixel_values"]
        noisy = self._corrupt(clean, torch.Generator().manual_seed(0))
        count = clean.shape[0]
        loss = only_model(models)(pixel_values=noisy, clean_pixel_values=clean).loss
        # The baseline a denoiser must beat: the noisy input's own error.
        noisy_mse = torch.nn.functional.mse_loss(noisy, clean)
        return {"loss": (loss * count, count), "noisy_input_mse": (noisy_mse * count, count)}

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """With ``--plots``: eight images clean, noisy (noise drawn with ``--seed``) and
        denoised, one row each."""
        from seqkit.vision.plots import save_image_grid

        plots = plots_folder(options)
        if plots is None:
            return {}
        model = self.model.eval()
        clean = eval_data.images[:8]
        generator = torch.Generator().manual_seed(getattr(options, "seed", 0) or 0)
        noisy = self._corrupt(clean, generator)
        with torch.inference_mode():
            denoised = model(pixel_values=noisy.to(_device_of(model))).reconstruction.cpu()
        path = save_image_grid(
            torch.cat([clean, noisy, denoised]), plots / "denoising.png", columns=8, scale=6
        )
        print(f"rows: clean, noisy, denoised -> {path}", file=sys.stderr)
        return {}
