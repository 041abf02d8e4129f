"""The adversarial game as a Trainer task, and the callback that draws its progress.

The discriminator D and the generator G each have an optimizer; the Trainer steps them in the
order :meth:`DCGANTask.configure_optimizers` gives, discriminator first, on every batch:

- D minimises ``BCE(D(x), 1) + BCE(D(G(z)), 0)``: tell real from generated;
- G minimises ``BCE(D(G(z)), 1)``, the *non-saturating* loss of Goodfellow et al. 2014 (§3):
  the minimax form ``log(1 − D(G(z)))`` has vanishing gradients exactly when G is bad and D
  confident, which is how training starts.

Under ``accelerate launch`` each network is its own DDP module. G's forward in D's step runs
under ``torch.no_grad()``, so DDP never waits for a backward pass through G that is not coming;
in G's step the gradient flows through D (DDP reduces it; D's optimizer then zeroes it before
its own step), so no parameter is ever unused and ``find_unused_parameters`` is not needed.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from seqkit.trainer import Callback, Task
from seqkit.trainer.tasks import Models


class DCGANTask(Task):
    """Train ``generator`` and ``discriminator`` against each other on batches of real images.

    Batches hold ``pixel_values`` in [0, 1]; they are mapped to [-1, 1], the generator's Tanh
    range, before D sees them.
    """

    evaluation_optimizer = "discriminator"  # the default evaluation reports D's loss

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        latent_dim: int,
        generator_lr: float | None = None,
        discriminator_lr: float | None = None,
    ) -> None:
        super().__init__({"generator": generator, "discriminator": discriminator})
        self.latent_dim = latent_dim
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr

    def configure_optimizers(self, build):
        return {
            "discriminator": build(self.models["discriminator"], lr=self.discriminator_lr),
            "generator": build(self.models["generator"], lr=self.generator_lr),
        }

    def training_step(
        self, models: Models, batch: dict[str, torch.Tensor], optimizer_name: str
    ) -> dict:
        real = batch["pixel_values"] * 2 - 1  # (B, C, S, S) in [-1, 1]
        noise = torch.randn(real.shape[0], self.latent_dim, device=real.device)  # (B, Z)
        generator, discriminator = models["generator"], models["discriminator"]
        if optimizer_name == "discriminator":
            with torch.no_grad():  # D's step must not build (or wait for) a graph through G
                fake = generator(noise)
            # Real and fake in separate batches: each BatchNorm batch is all real or all fake,
            # as in the DCGAN reference implementation.
            real_logits, fake_logits = discriminator(real), discriminator(fake)
            loss = F.binary_cross_entropy_with_logits(
                real_logits, torch.ones_like(real_logits)
            ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            return {
                "loss": loss,
                "d_real": torch.sigmoid(real_logits).mean().detach(),  # D's belief: real is real
                "d_fake": torch.sigmoid(fake_logits).mean().detach(),  # ... and fake is real
            }
        fake_logits = discriminator(generator(noise))
        # Non-saturating: maximise log D(G(z)) rather than minimise log(1 − D(G(z))).
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class SampleGrids(Callback):
    """Every ``every`` steps and at the end, write ``RUN/samples/step-N.png``: a grid of images
    from the *same* noise vectors each time, so the files read as one progression."""

    def __init__(self, every: int, num_samples: int, latent_dim: int, seed: int) -> None:
        self.every = every
        # Drawn once from a private generator: the grids cost the training RNG nothing, so a
        # resumed run still ends with the same weights.
        self.noise = torch.randn(
            num_samples, latent_dim, generator=torch.Generator().manual_seed(seed)
        )

    def _write(self, trainer) -> None:
        from seqkit.vision.plots import save_image_grid

        if not trainer.accelerator.is_main_process:
            return
        generator = trainer.unwrapped_model("generator")
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            images = generator(self.noise.to(trainer.accelerator.device))
        generator.train(was_training)
        path = Path(trainer.output_dir) / "samples" / f"step-{trainer.step:06d}.png"
        save_image_grid((images + 1) / 2, path)

    def on_step_end(self, trainer, control, logs: dict) -> None:
        if (
            self.every and trainer.step % self.every == 0
        ) or trainer.step >= trainer.config.max_steps:
            self._write(trainer)
