"""Tasks: the part of training that differs from one model family to the next.

The Trainer owns everything that is the same for every model (devices, precision, accumulation,
clipping, schedules, the loop, evaluation cadence, checkpoints). A task owns the rest: which
models exist, which optimizers update them, and how a batch becomes a loss. This is the split
minGPT's trainer argues for ("nothing in this file has anything to do with GPT") taken one step
further, so that a GAN (two optimizers) or a DQN agent (batches drawn from an environment) trains
with the same loop as a language model.

The Trainer writes nothing into a task: what a call needs, it passes. In particular the modules
to run come in as an argument on every call (as ``compute_loss(model, inputs)`` does in Hugging
Face's Trainer), because the Trainer runs different objects at different times: the modules
wrapped for distributed training in a training step, the plain modules in evaluation (a DDP
forward on one process alone would wait for the others).

Contract, in the order the Trainer uses it:

- ``models``: the plain named modules the task was built with. The Trainer moves them to the
  device and wraps them for distributed training in its own copy, never replacing these; a
  task never moves them to a device itself. Code outside a step (acting in an environment,
  updating a target network, saving) uses them.
- ``configure_optimizers(build)``: optimizers by name, in the order they step. ``build(module,
  lr=None)`` returns the optimizer the recipe asked for.
- ``train_batches()``: ``None`` to train on the Trainer's DataLoader, or an endless iterator of
  batches (an environment feeding a replay buffer).
- ``training_step(models, batch, optimizer_name)``: the mean loss over the batch's targets (or a
  dict with ``"loss"`` and extra scalars to log), computed with ``models`` (name → module, as
  wrapped for training). Called once per micro-batch and optimizer.
- ``num_targets(batch)``: how many targets the mean in ``training_step`` is over, so gradient
  accumulation can weight micro-batches by targets rather than count them equally. An int, or
  a 0-d tensor when counting needs the device (reading it back would make the host wait).
- ``evaluation_step(models, batch)``: ``{metric: (sum, count)}`` so evaluation streams batch by
  batch; ``models`` are the plain modules, in eval mode. The default reports the training loss
  of the optimizer named by ``evaluation_optimizer``.
- ``throughput_unit`` and ``flops_per_target()``: what a target is (tokens, examples), for the
  logged ``train/<unit>_per_s``, and the training FLOPs per target when known (for MFU).
- ``summarize(metrics)``: derived metrics (perplexity from loss) once evaluation is complete.
- ``state_dict()``/``load_state_dict()``: anything beyond model weights that resume must restore.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from seqkit.metrics import confusion_counts, summarize_confusion

OptimizerFactory = Callable[..., torch.optim.Optimizer]
Batch = Any
Models = Mapping[str, nn.Module]
"""Named modules, as passed to a step: ``{"model": ...}`` for a one-model task."""


def only_model(models: Models) -> nn.Module:
    """The single module of a one-model task's ``models``."""
    if len(models) != 1:
        raise ValueError(f"expected one model, got {len(models)}: {sorted(models)}")
    return next(iter(models.values()))


class Task:
    """Base class; override what differs. See the module docstring for the contract."""

    throughput_unit = "examples"
    """What one target is, in the logged ``train/<unit>_per_s``."""

    evaluation_optimizer = "model"
    """The optimizer whose training loss the default :meth:`evaluation_step` reports; a task
    whose :meth:`configure_optimizers` names its optimizers otherwise sets it to one of them."""

    # What a recipe-built run needs to know of its task (see seqkit.parts).
    default_data: str | None = None
    """The data module a recipe of this task reads unless ``data.module`` names another."""
    generates_text = False
    """Whether the trained model continues a prompt (a closing sample; ``seqkit generate``)."""
    generation_defaults: ClassVar[dict[str, Any] | None] = None
    """The ``generation_config.json`` written beside the model, if any."""
    pipeline_tag: str | None = None
    """The Hub pipeline the model card names."""
    auto_class = "AutoModel"
    """The ``transformers`` Auto class that loads the trained model."""
    evaluates_without_data = False
    """Whether ``seqkit evaluate`` measures the model without evaluation data (an agent plays
    episodes in its environment): only :meth:`extra_evaluation` runs when there is none."""

    @classmethod
    def for_model(cls, model: nn.Module, facts: Mapping[str, Any]) -> Task:
        """The task for a recipe-built ``model``. ``facts`` are what the data module said about
        the data; they may be empty (a checkpoint read back without its data), so what the
        model's config also holds is read from there."""
        return cls(model)

    def callbacks(self) -> list[Any]:
        """Trainer callbacks the task needs (a GAN's sample grids)."""
        return []

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """Scores beyond :meth:`evaluation_step`'s that ``seqkit evaluate`` reports (BLEU of
        beam-searched translations, return over greedy episodes); ``options`` are the
        command's (beam size, episodes...), None when called from code."""
        return {}

    def save_extras(self, folder: Path, run_dir: Path | None) -> dict[str, float]:
        """Write the task's own files beside the trained model saved in ``folder`` (a GAN's
        last sample grid, a GCN's embedding plot) and return numbers measured on that model
        for its card; called once the run has ended."""
        return {}

    def __init__(self, models: Mapping[str, nn.Module] | nn.Module):
        if isinstance(models, nn.Module):
            models = {"model": models}
        self.models: dict[str, nn.Module] = dict(models)

    @property
    def model(self) -> nn.Module:
        """The single (plain) model of a one-model task."""
        if len(self.models) != 1:
            raise AttributeError("task.model is only defined for tasks with one model")
        return only_model(self.models)

    def configure_optimizers(self, build: OptimizerFactory) -> dict[str, torch.optim.Optimizer]:
        """One optimizer over every model, by default."""
        modules = list(self.models.values())
        target = modules[0] if len(modules) == 1 else nn.ModuleList(modules)
        return {"model": build(target)}

    def train_batches(self) -> Iterator[Batch] | None:
        """Batches from somewhere other than the Trainer's DataLoader; None means use it."""
        return None

    def training_step(
        self, models: Models, batch: Batch, optimizer_name: str
    ) -> torch.Tensor | dict:
        raise NotImplementedError

    def num_targets(self, batch: Batch) -> int | torch.Tensor:
        """Targets behind the mean loss: non-ignored labels if the batch has them, else rows."""
        if isinstance(batch, Mapping):
            labels = batch.get("labels")
            if isinstance(labels, torch.Tensor):
                if labels.dim() > 1 and not labels.is_floating_point():
                    return (labels != -100).sum()  # token-level targets, -100 = ignored
                return labels.shape[0]
            first = next((v for v in batch.values() if isinstance(v, torch.Tensor)), None)
            return 1 if first is None else first.shape[0]
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
            return batch[0].shape[0]
        return 1

    def evaluation_step(
        self, models: Models, batch: Batch
    ) -> dict[str, tuple[torch.Tensor, float]]:
        """Default: the training loss of :attr:`evaluation_optimizer`, summed over targets."""
        out = self.training_step(models, batch, self.evaluation_optimizer)
        loss = out["loss"] if isinstance(out, dict) else out
        count = self.num_targets(batch)
        return {"loss": (loss.detach().float() * count, count)}

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        return metrics

    def flops_per_target(self) -> float | None:
        """Training FLOPs (forward and backward) per target, or None when unknown."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class SupervisedTask(Task):
    """A model whose ``forward(**batch)`` returns an output with ``.loss``: no task code needed."""

    def training_step(self, models: Models, batch: Mapping[str, torch.Tensor], optimizer_name: str):
        return only_model(models)(**batch).loss


class LanguageModelingTask(SupervisedTask):
    """Supervised next-token prediction; also reports perplexity = exp(mean loss)."""

    throughput_unit = "tokens"
    default_data = "text"
    generates_text = True
    generation_defaults: ClassVar[dict[str, Any] | None] = {
        "do_sample": True,
        "temperature": 0.8,
        "max_new_tokens": 200,
        "top_k": None,
        "top_p": None,
    }
    pipeline_tag = "text-generation"
    auto_class = "AutoModelForCausalLM"

    def flops_per_target(self) -> float | None:
        """6·N per token for the weights (2 forward, 4 backward; Kaplan et al. 2020), plus
        12·L·T·C for a Transformer's attention scores over a context of T (nanoGPT's
        ``estimate_mfu``); recurrent models have no such term."""
        weights = sum(p.numel() for m in self.models.values() for p in m.parameters())
        config = getattr(self.model, "config", None)
        layers = getattr(config, "n_layer", None)
        width = getattr(config, "n_embd", None)
        context = getattr(config, "n_positions", None)
        attention = 12 * layers * context * width if layers and width and context else 0
        return float(6 * weights + attention)

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        if "loss" in metrics:
            # Clamp so an untrained model's huge loss reports inf-free perplexity.
            metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
        return metrics


class ClassificationTask(SupervisedTask):
    """Cross-entropy training on one label per example; evaluation also reports accuracy.

    Given ``num_labels``, evaluation streams the confusion matrix too (:mod:`seqkit.metrics`),
    and :meth:`summarize` turns it into the macro scores (precision, recall, F1) over the whole
    evaluation set, not averages of per-batch scores. ``seqkit evaluate`` adds what needs every
    prediction at once (:meth:`extra_evaluation`): ROC-AUC of a binary task, the per-class
    report and the confusion matrix (drawn with ``--plots``).
    """

    default_data = "labelled-text"
    pipeline_tag = "text-classification"
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, model: nn.Module, num_labels: int | None = None) -> None:
        super().__init__(model)
        self.num_labels = num_labels

    @classmethod
    def for_model(cls, model: nn.Module, facts: Mapping[str, Any]) -> Task:
        return cls(model, facts.get("num_labels") or model.config.num_labels)

    def evaluation_step(self, models: Models, batch: Mapping[str, torch.Tensor]) -> dict:
        output = only_model(models)(**batch)
        labels = batch["labels"]
        predicted = output.logits.argmax(dim=-1)
        count = labels.numel()
        metrics = {
            "loss": (output.loss.detach().float() * count, count),
            "accuracy": ((predicted == labels).sum().float(), count),
        }
        if self.num_labels is not None:
            metrics.update(confusion_counts(labels, predicted, self.num_labels))
        return metrics

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        if self.num_labels is None:
            return metrics
        return summarize_confusion(metrics, self.num_labels)

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """The scores of :func:`seqkit.metrics.classification_report` (scikit-learn's
        definitions) on the class probabilities of every example of ``eval_data`` (batched by
        its ``collate_fn``): accuracy, macro precision/recall/F1, and ROC-AUC when binary.
        From ``seqkit evaluate`` (``options`` given) the per-class report and the confusion
        matrix are printed, and ``options.plots`` draws the matrix to
        ``RUN/plots/confusion-matrix.png``."""
        from seqkit.metrics import classification_report

        labels, probabilities = self.predict(eval_data, getattr(options, "batch_size", None))
        config = self.model.config
        names = [str(config.id2label.get(i, i)) for i in range(probabilities.shape[1])]
        plot_path = None
        if options is not None and getattr(options, "plots", False):
            plot_path = _run_dir_of(options.model) / "plots" / "confusion-matrix.png"
        scores, text = classification_report(labels, probabilities, names, plot_path)
        if options is not None:
            print(text)
            if plot_path is not None:
                print(f"wrote {plot_path}", file=sys.stderr)
        return scores

    @torch.inference_mode()
    def predict(self, data: Any, batch_size: int | None = None) -> tuple[Any, Any]:
        """``(labels, class probabilities)`` as numpy arrays, one row per example of
        ``data``."""
        from torch.utils.data import DataLoader

        model = self.model
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        labels, probabilities = [], []
        loader = DataLoader(
            data, batch_size=batch_size or 256, collate_fn=getattr(data, "collate_fn", None)
        )
        for batch in loader:
            batch = {
                k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
            }
            labels.append(batch["labels"].cpu())
            probabilities.append(model(**batch).logits.float().softmax(dim=-1).cpu())
        model.train(was_training)
        return torch.cat(labels).numpy(), torch.cat(probabilities).numpy()

    @classmethod
    def generate_command(cls, loaded: Any, args: Any) -> int:
        """``seqkit generate MODEL --prompt TEXT``: print the three likeliest classes of the
        text and their probabilities."""
        from seqkit.errors import UserError
        from seqkit.recipes import Recipe

        if not args.prompt:
            raise UserError("--prompt is required: the text to classify")
        recipe = loaded.recipe or Recipe(task=loaded.task_name, data=loaded.data_class.Section())
        data = loaded.data_class(recipe)
        data.builder, data.model_config = loaded.builder, loaded.model.config
        window = loaded.builder.window(loaded.model.config)
        inputs = data.unlabelled(loaded.tokenizer, [args.prompt], *window)
        _, probabilities = cls(loaded.model).predict(inputs)
        ranked = probabilities[0].argsort()[::-1]
        for c in ranked[:3]:
            print(f"{loaded.model.config.id2label[int(c)]}\t{probabilities[0][c]:.3f}")
        return 0


def _run_dir_of(path: Any) -> Path:
    """The run directory behind ``seqkit evaluate``'s model argument (a run, a model folder
    inside one, or a checkpoint), where ``--plots`` writes."""
    from seqkit.errors import UserError
    from seqkit.folders import run_dir_of

    path = Path(path)
    if path.name.startswith("step-") and path.parent.name == "checkpoints":
        return path.parent.parent
    if (path / "recipe.yaml").is_file():
        return path
    run_dir = run_dir_of(path)
    if run_dir is None:
        raise UserError("--plots needs a run directory to write RUN/plots/ into")
    return run_dir


class MaskedLMTask(SupervisedTask):
    """Masked-LM cross-entropy (Devlin et al. 2019); evaluation also reports the accuracy on
    the masked tokens (``masked_accuracy``) when the model returns logits."""

    throughput_unit = "tokens"
    default_data = "masked-text"
    pipeline_tag = "fill-mask"
    auto_class = "AutoModelForMaskedLM"

    def evaluation_step(self, models: Models, batch: Mapping[str, torch.Tensor]) -> dict:
        out = only_model(models)(**batch)
        targets = batch["labels"] != -100
        count = targets.sum()
        # A batch may hold no masked token (a small one, or a process's share of a small
        # evaluation): its mean loss is NaN, but its sum is 0 over 0 tokens.
        loss_sum = torch.where(count > 0, out.loss.detach().float() * count, 0.0)
        metrics = {"loss": (loss_sum, count)}
        if getattr(out, "logits", None) is not None:
            labels = batch["labels"]
            if out.logits.dim() == 2:  # one row per masked position (``masked_positions``)
                labels = labels.reshape(-1)[batch["masked_positions"]]
            correct = (out.logits.argmax(dim=-1) == labels) & (labels != -100)
            metrics["masked_accuracy"] = (correct.sum().float(), count)
        return metrics

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """How many masked tokens the evaluation scored."""
        return {
            "masked_tokens": sum(int((row["labels"] != -100).sum()) for row in eval_data),
        }
