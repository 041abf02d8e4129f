"""The Python API (:mod:`seqkit.api`): what a notebook does — train twice in one process (the
second run in another precision), read the run back, generate, evaluate, and get a UserError for
a mistake instead of an exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seqkit
from seqkit.cli import main
from seqkit.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "trainer.max_steps": 4,
    "trainer.eval_every": 4,
    "trainer.eval_batches": None,  # the whole validation split, as seqkit evaluate scores
    "trainer.save_every": 4,
    "trainer.progress_bar": False,
    "trainer.report_to": [],
    "model.n_layer": 1,
    "model.n_head": 2,
    "model.n_embd": 16,
    "model.block_size": 16,
}


def test_train_twice_in_one_process_then_generate_and_evaluate(tmp_path, capsys):
    first = seqkit.train("gpt/quickstart-pydoc-char", TINY, output_dir=tmp_path / "fp32")
    # accelerate refuses a second Accelerator of another precision in one process unless
    # each Trainer starts from fresh settings.
    second = seqkit.train(
        "gpt/quickstart-pydoc-char",
        {**TINY, "trainer.mixed_precision": "bf16"},
        output_dir=tmp_path / "bf16",
    )
    for run in (first, second):
        assert run.step == 4 and (run.final / "config.json").is_file()
        assert set(run.metrics) >= {"eval/loss"}
    recipe = (tmp_path / "bf16" / "recipe.yaml").read_text()
    assert "mixed_precision: bf16" in recipe

    text = first.generate("def ", max_new_tokens=12, seed=3)
    assert text.startswith("def ") and text == first.generate("def ", max_new_tokens=12, seed=3)
    # The same text the command prints for the same settings.
    assert (
        main(
            [
                "generate",
                str(first.path),
                "--prompt",
                "def ",
                "--max-new-tokens",
                "12",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == text.strip()

    metrics = first.evaluate()
    assert metrics["eval/loss"] == pytest.approx(first.metrics["eval/loss"], rel=1e-5)
    data = tmp_path / "held-out.txt"
    data.write_text("def add(a, b):\n    return a + b\n" * 20, encoding="utf-8")
    assert "eval/loss" in first.evaluate(data=data)

    loaded = seqkit.load(first.path / "checkpoints" / "step-4")
    assert type(loaded.model).__name__ == "GPTLMHeadModel" and loaded.tokenizer is not None
    assert loaded.generate("def ", max_new_tokens=12, seed=3) == text


def test_mistakes_raise_user_errors_and_write_nothing(tmp_path):
    with pytest.raises(UserError, match=r"trainer\.max_steps"):
        seqkit.train("gpt/quickstart-pydoc-char", {"trainer.max_steps": -1}, tmp_path / "x")
    with pytest.raises(UserError, match="no recipe"):
        seqkit.train("gpt/no-such-recipe", {}, tmp_path / "y")
    with pytest.raises(UserError, match="overrides must be"):
        seqkit.train("gpt/quickstart-pydoc-char", "trainer.max_steps=3", tmp_path / "z")
    assert not any(tmp_path.iterdir())


def test_overrides_are_written_as_recipe_values():
    from seqkit.api import overrides_list

    assert overrides_list({"a.b": 3, "c.d": "char", "e.f": [4, 8], "g.h": None}) == [
        "a.b=3", 'c.d="char"', "e.f=[4, 8]", "g.h=null",
    ]  # fmt: skip
    assert overrides_list(["a.b=3"]) == ["a.b=3"]
    assert overrides_list({"data.path": Path("corpus dir/a.txt")}) == [
        'data.path="corpus dir/a.txt"'
    ]
    assert json.loads(overrides_list({"x.y": True})[0].split("=", 1)[1]) is True
