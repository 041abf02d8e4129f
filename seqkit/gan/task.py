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

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from seqkit.checks import MAX_SAMPLES, MAX_SEED, check_range
from seqkit.errors import UserError
from seqkit.trainer import Callback, Task
from seqkit.trainer.tasks import Models

DEFAULT_NUM_SAMPLES = 64
"""Images in the grid ``seqkit generate`` writes without ``--num-samples``."""

logger = logging.getLogger(__name__)


class DCGANTask(Task):
    """Train ``generator`` and ``discriminator`` against each other on batches of real images.

    Batches hold ``pixel_values`` in [0, 1]; they are mapped to [-1, 1], the generator's Tanh
    range, before D sees them. The recipe's ``task: gan``: its ``models`` are the two halves of
    one :class:`~seqkit.gan.models.DCGAN`, so checkpoints hold ``model-generator.safetensors``
    and ``model-discriminator.safetensors`` and the Hub folder holds both.
    """

    evaluation_optimizer = "discriminator"  # the default evaluation reports D's loss
    default_data = "gan-images"
    pipeline_tag = "unconditional-image-generation"
    evaluates_without_data = True  # seqkit evaluate judges samples (see extra_evaluation)

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        latent_dim: int,
        generator_lr: float | None = None,
        discriminator_lr: float | None = None,
        *,
        gan: torch.nn.Module | None = None,
        sample_every: int = 200,
        num_samples: int = 64,
        seed: int = 0,
        splits: Any = None,
    ) -> None:
        super().__init__({"generator": generator, "discriminator": discriminator})
        self.latent_dim = latent_dim
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr
        self.gan = gan
        """The :class:`~seqkit.gan.models.DCGAN` holding both networks, when built from one."""
        self.sample_every = sample_every
        self.num_samples = num_samples
        self.seed = seed
        self.splits = splits
        """The run's image splits (:class:`seqkit.vision.data.ImageSplits`), for evaluation."""

    @classmethod
    def for_model(cls, model: torch.nn.Module, facts: Mapping[str, Any]) -> DCGANTask:
        return cls(
            model.generator,
            model.discriminator,
            latent_dim=model.config.latent_dim,
            generator_lr=facts.get("generator_lr"),
            discriminator_lr=facts.get("discriminator_lr"),
            gan=model,
            sample_every=facts.get("sample_every", 200),
            num_samples=facts.get("num_samples", 64),
            seed=facts.get("seed", 0),
            splits=facts.get("splits"),
        )

    def callbacks(self) -> list[Any]:
        return [SampleGrids(self.sample_every, self.num_samples, self.latent_dim, seed=self.seed)]

    def save_extras(self, folder: Path, run_dir: Path | None) -> dict[str, float]:
        """The run's last sample grid beside the model, as ``samples.png``."""
        grids = sorted((run_dir / "samples").glob("step-*.png")) if run_dir else []
        if grids:
            shutil.copyfile(grids[-1], folder / "samples.png")
        return {}

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """Mean confidence, class entropy and Fréchet distance of generated images, next to the
        same numbers for real held-out images (as many of each), and the judge's own test
        accuracy (:mod:`seqkit.gan.quality`); ``options.seed`` draws the samples."""
        return judge_samples(self.gan, self.splits, _run_dir_of(options), options)

    @classmethod
    def generate_command(cls, loaded: Any, args: Any) -> int:
        """``seqkit generate RUN [--num-samples N] [--out FILE.png] [--seed S]``: a grid of
        samples. Never overwrites a file: without ``--out`` the grid goes to
        ``samples-seed-S.png`` in the current directory, and an existing file is an error."""
        from seqkit.outputs import check_new_file
        from seqkit.vision.plots import save_image_grid

        num_samples = getattr(args, "num_samples", None)
        if num_samples is None:  # not `or`: --num-samples 0 is an error, not the default
            num_samples = DEFAULT_NUM_SAMPLES
        check_range("--num-samples", num_samples, 1, MAX_SAMPLES, integer=True)
        seed = getattr(args, "seed", 0) or 0
        check_range("--seed", seed, 0, MAX_SEED, integer=True)
        out = check_new_file(
            getattr(args, "out", None) or f"samples-seed-{seed}.png",
            overwrite=getattr(args, "overwrite", False),
            option="--out",
            suffixes=(".png",),
        )
        images = loaded.model.sample(num_samples, generator=torch.Generator().manual_seed(seed))
        save_image_grid(images, out)
        print(f"{num_samples} samples -> {out}")
        return 0

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


def _run_dir_of(options: Any) -> Path | None:
    """The run directory behind ``seqkit evaluate``'s model argument, if any."""
    from seqkit.folders import resolve_model_dir, run_dir_of

    path = getattr(options, "model", None)
    if path is None:
        return None
    path = Path(path)
    if path.name.startswith("step-") and path.parent.name == "checkpoints":
        return path.parent.parent
    return run_dir_of(resolve_model_dir(path))


def _quality_classifier(run_dir: Path | None, splits):
    """The classifier that judges samples; trained once and kept in ``RUN/quality-classifier``."""
    from seqkit.gan.quality import train_quality_classifier
    from seqkit.vision.models import CNNForImageClassification

    cached = run_dir / "quality-classifier" if run_dir is not None else None
    if cached is not None and (cached / "config.json").is_file():
        classifier = CNNForImageClassification.from_pretrained(cached, use_safetensors=True)
        config = classifier.config
        shape = (config.num_channels, config.image_size, config.image_size)
        if shape == splits.image_shape and config.num_labels == len(splits.class_names):
            return classifier.eval()
    logger.info("training the classifier that judges the samples...")
    try:
        classifier = train_quality_classifier(splits)
    except ValueError as error:
        raise UserError(f"cannot judge these images: {error}") from None
    if cached is not None:
        classifier.save_pretrained(cached)
    return classifier


def judge_samples(model, splits, run_dir: Path | None, options: Any = None) -> dict[str, float]:
    """The quality numbers of ``model``'s samples against ``splits`` (the run's own split: with
    another ``data.split_seed`` or other fractions a default test split would hold images the
    GAN was trained on). Without ``splits`` (a bare model folder, outside any run) it is judged
    on the default digits split. Writes ``RUN/quality.json`` and, with ``options.plots``,
    ``RUN/plots/samples-seed-S.png``."""
    from seqkit.gan.quality import accuracy, digits_splits, features_and_probabilities, judge

    if splits is None:
        splits = digits_splits()
    elif not len(splits.test):
        raise UserError(
            "the run's recipe keeps no test images (data.test_fraction is 0): the quality "
            "numbers need real held-out images to compare with"
        )
    config = model.config
    made = (config.num_channels, config.image_size, config.image_size)
    if made != splits.image_shape:
        raise UserError(
            f"the model makes images of {made[0]} channel(s) and {made[1]}x{made[2]} pixels, but "
            f"the images it is judged against have {splits.image_shape[0]} channel(s) and "
            f"{splits.image_shape[1]}x{splits.image_shape[2]} pixels"
        )
    classifier = _quality_classifier(run_dir, splits)
    # The Fréchet reference is the training split, as FID uses a data set's training images
    # (Heusel et al. 2017): it is the largest real set, and the covariance of 64 features from
    # the 180 validation digits alone is too noisy to compare with. A GAN that copies its
    # training images would score well on it; the mean confidence and the grids show that.
    reference_images = splits.train.images
    logger.info(f"Fréchet reference: {len(reference_images)} training images")
    reference, _ = features_and_probabilities(classifier, reference_images)
    real = splits.test.images
    seed = getattr(options, "seed", 0) or 0
    generated = model.sample(len(real), generator=torch.Generator().manual_seed(seed))
    if getattr(options, "plots", False) and run_dir is not None:
        from seqkit.vision.plots import save_image_grid

        path = save_image_grid(generated[:64], run_dir / "plots" / f"samples-seed-{seed}.png")
        logger.info(f"samples: {path}")
    judged = {"generated": generated, "real_heldout": real}  # equally many images of each
    metrics: dict[str, float] = {}
    for prefix, images in judged.items():
        for name, value in asdict(judge(classifier, images, reference)).items():
            metrics[f"{prefix}_{name}"] = value
    metrics["judge_test_accuracy"] = accuracy(classifier, real, splits.test.labels)
    metrics["images"] = len(real)
    if run_dir is not None:
        (run_dir / "quality.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
