"""seqkit from Python — a notebook, a script: train a recipe in one call and get the run back.

    import seqkit

    run = seqkit.train("gpt/quickstart-pydoc-char", {"trainer.max_steps": 200},
                       output_dir="runs/notebook")
    run.metrics                       # the final evaluation: {"eval/loss": ...}
    print(run.generate("def ", max_new_tokens=80))
    run.evaluate(data="held-out.txt") # the numbers `seqkit evaluate` prints
    model, tokenizer = run.model, run.tokenizer
    seqkit.load("runs/notebook/checkpoints/step-100").generate("def ")

The calls do what the commands do (``seqkit train``, ``generate``, ``evaluate``) with the same
checks and defaults; a mistake raises :class:`seqkit.errors.UserError` with the line the command
would print, instead of exiting. Several trainings may run in one process, each with its own
settings (mixed precision included).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from seqkit.errors import UserError


def overrides_list(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``--set`` strings from ``{"trainer.max_steps": 200}`` (values written as JSON, which the
    recipe reader parses as YAML: numbers, strings, lists, null; a ``Path`` as its text) or
    from such strings."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        # default=str: a notebook's Path (or other object) is written as its text.
        return [f"{key}={json.dumps(value, default=str)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise UserError(
            f"overrides must be a dict or a list of 'key=value' strings, not {overrides!r}"
        )
    return [str(item) for item in overrides]


def _command_defaults(command: str, *argv: str) -> Any:
    """The options of ``seqkit COMMAND`` as the command line parses them: the defaults the
    commands use, so the calls here cannot drift from them."""
    from seqkit.cli import build_parser

    return build_parser().parse_args([command, *argv])


@dataclass
class Trained:
    """A trained model on disk — a run, its ``final/`` folder, a checkpoint or any seqkit model
    folder — read on first use, with what the commands do to it."""

    path: Path

    @cached_property
    def loaded(self) -> Any:
        """The model, its tokenizer, recipe (None outside a run) and parts, read once."""
        from seqkit.parts.model_folder import open_trained

        return open_trained(self.path)

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
    ) -> str:
        """``prompt`` and its continuation by a text model, sampled with a generator seeded by
        ``seed``: the text ``seqkit generate`` prints for the same options."""
        from seqkit.checks import MAX_SEED, check_range
        from seqkit.generation import continue_prompt
        from seqkit.parts.registry import TASKS
        from seqkit.recipes import check_sampling

        loaded = self.loaded
        if not TASKS.get(loaded.task_name).generates_text:
            raise UserError(
                f"{self.path} holds a {loaded.task_name} model, which does not write text"
            )
        check_sampling("", max_new_tokens, temperature, top_k, top_p)
        check_range("seed", seed, 0, MAX_SEED, integer=True)
        return continue_prompt(
            loaded.model,
            loaded.tokenizer,
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )

    def evaluate(self, data: str | Path | None = None, batch_size: int | None = None) -> dict:
        """The run's evaluation (its validation data, or every example of the file ``data``):
        the numbers ``seqkit evaluate`` prints."""
        from seqkit.parts.evaluation import evaluate

        options = _command_defaults("evaluate", str(self.path))
        return evaluate(self.loaded, None if data is None else str(data), batch_size, options)


@dataclass
class Run(Trained):
    """A run :func:`train` finished: its folder (:attr:`path`), the step it reached and its
    final evaluation."""

    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def final(self) -> Path:
        """The trained model's folder (Hub format)."""
        return self.path / "final"


def train(
    recipe: str | Path,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    output_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> Run:
    """Train ``recipe`` — a shipped recipe's name (``gpt/shakespeare-char``), a YAML file, or
    with ``resume=True`` a run folder — with ``overrides`` into ``output_dir`` (default
    ``runs/<recipe name>``), as ``seqkit train`` does, and return the run."""
    from seqkit.training import train_run

    trained = train_run(
        recipe, overrides_list(overrides), output_dir, resume=resume, overwrite=overwrite
    )
    return Run(trained.run_dir, trained.step, trained.eval_metrics)


def load(path: str | Path) -> Trained:
    """A run, a model folder or a checkpoint, to read (``.model``, ``.tokenizer``), generate from
    or evaluate."""
    return Trained(Path(path))
