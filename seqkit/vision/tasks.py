"""Training tasks for image models: classification (with augmentation) and denoising.

Both plug into the one Trainer through the :class:`seqkit.trainer.Task` contract; augmentation
runs here, on the batch already on the device, so the data set stays a plain tensor store.
"""

from __future__ import annotations

import torch

from seqkit.trainer.tasks import Models, Task, only_model
from seqkit.vision.augment import Augmentation


class ImageClassificationTask(Task):
    """Cross-entropy on augmented training batches; loss and accuracy on evaluation batches."""

    def __init__(self, model: torch.nn.Module, augmentation: Augmentation | None = None) -> None:
        super().__init__(model)
        self.augmentation = augmentation or Augmentation()

    def training_step(self, models: Models, batch: dict[str, torch.Tensor], optimizer_name: str):
        images = batch["pixel_values"]
        if self.augmentation.active:
            images = self.augmentation(images)
        return only_model(models)(pixel_values=images, labels=batch["labels"]).loss

    def evaluation_step(self, models: Models, batch: dict[str, torch.Tensor]) -> dict:
        output = only_model(models)(**batch)
        count = batch["labels"].shape[0]
        correct = (output.logits.argmax(dim=-1) == batch["labels"]).sum()
        return {"loss": (output.loss * count, count), "accuracy": (correct.float(), count)}


class DenoisingTask(Task):
    """Add Gaussian noise to the images; the autoencoder is scored on recovering the clean ones.

    Evaluation draws its noise from a private generator with a fixed seed, so every evaluation
    scores the same corrupted images and the global random stream is left alone.
    """

    def __init__(self, model: torch.nn.Module, noise_std: float) -> None:
        super().__init__(model)
        self.noise_std = noise_std

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
