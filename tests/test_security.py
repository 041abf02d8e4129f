"""Nothing unsafe is ever loaded: planted pickles never run, recipes never build objects, seqkit
never trusts remote code, and malformed files get seqkit's one-line errors, never a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import seqkit
from seqkit.data import CharTokenizer
from seqkit.errors import UserError
from seqkit.folders import check_model_folder
from seqkit.recipes import load_recipe
from seqkit.trainer import Trainer
from seqkit.trainer.checkpoint import load_tree

from .trainer.test_trainer import config
from .trainer.toys import ToyLM, ToySequences

PACKAGE = Path(seqkit.__file__).parent


class Bomb:
    """Unpickling this creates ``marker``: proof that a pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(Bomb(marker)))


def run_seqkit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "seqkit", *args], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip


def test_a_model_folder_with_pickled_weights_is_refused_and_never_unpickled(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "seqkit-gpt"}))
    marker = tmp_path / "pwned"
    plant(folder / "pytorch_model.bin", marker)
    result = run_seqkit("generate", str(folder), "--prompt", "a")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("seqkit: error: ")
    assert "pytorch_model.bin" in result.stderr and "safetensors" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    with pytest.raises(UserError, match="no safetensors weights"):
        check_model_folder(folder)


@pytest.mark.parametrize("victim", ["trainer_state.safetensors", "model-model.safetensors",
                                    "trainer_state.json", "rng-0.safetensors"])  # fmt: skip
def test_a_pickle_planted_in_a_checkpoint_never_runs(tmp_path, victim):
    Trainer(ToyLM(), config(max_steps=2, save_every=2), output_dir=tmp_path,
            train_data=ToySequences()).train()  # fmt: skip
    marker = tmp_path / "pwned"
    plant(tmp_path / "checkpoints" / "step-2" / victim, marker)
    trainer = Trainer(ToyLM(), config(max_steps=3), output_dir=tmp_path, train_data=ToySequences())
    with pytest.raises(UserError, match="step-2"):
        trainer.train(resume=True)
    assert not marker.exists()


def test_recipes_never_build_python_objects(tmp_path):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(
        f"task: gpt\ndescription: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(UserError):
        load_recipe(recipe)
    assert not marker.exists()


def test_seqkit_never_trusts_remote_code_or_calls_eval():
    offenders = []
    pattern = re.compile(r"trust_remote_code\s*=\s*True|(?<![.\w])(eval|exec)\(|pickle\.loads?\(")
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line.split("#")[0]):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, offenders


def test_every_torch_load_in_seqkit_is_weights_only():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in match.group(1), f"{path}: {match.group(0)}"


# ---------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(text=st.text(max_size=300))
def test_fuzzed_recipe_text_fails_only_with_user_errors(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(UserError):
        load_recipe(path)


recipe_like = st.fixed_dictionaries(
    {"task": st.sampled_from(["gpt", 3, None, ""])},
    optional={
        section: json_values
        | st.dictionaries(
            st.sampled_from(["max_steps", "lr", "path", "kind", "n_layer", "x"]),
            json_values,
            max_size=3,
        )
        for section in ("model", "tokenizer", "data", "trainer", "sample", "unknown")
    },
)


@FUZZ
@given(document=recipe_like, overrides=st.lists(st.text(max_size=20), max_size=3))
def test_fuzzed_recipe_structures_and_overrides_fail_only_with_user_errors(
    tmp_path, document, overrides
):
    path = tmp_path / "fuzz.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    with contextlib.suppress(UserError):
        load_recipe(path, overrides)


@FUZZ
@given(document=json_values | st.fixed_dictionaries({"model": json_values}))
def test_fuzzed_tokenizer_files_fail_only_with_user_errors(tmp_path, document):
    (tmp_path / "tokenizer.json").write_text(json.dumps(document), encoding="utf-8")
    with contextlib.suppress(UserError):
        CharTokenizer.from_pretrained(tmp_path)


tree_documents = json_values | st.builds(
    lambda tree: {"format": "seqkit-tree", "version": 1, "tree": tree},
    json_values
    | st.dictionaries(st.sampled_from(["__tensor__", "__tuple__", "__dict__", "a"]), json_values),
)


def _tree(tree):
    return {"format": "seqkit-tree", "version": 1, "tree": tree}


@FUZZ
@given(document=tree_documents, blob=st.binary(max_size=64) | st.just(b""))
@example(document=_tree({"__tensor__": 5}), blob=b"")
@example(document=_tree({"__tuple__": 3}), blob=b"")
@example(document=_tree({"__dict__": [[1]]}), blob=b"")
@example(document=_tree({"__dict__": [[{"__tuple__": 1}, 2]]}), blob=b"")
def test_fuzzed_checkpoint_files_fail_only_with_user_errors(tmp_path, document, blob):
    (tmp_path / "state.json").write_text(json.dumps(document), encoding="utf-8")
    if blob:
        (tmp_path / "state.safetensors").write_bytes(blob)
    else:  # a valid tensor file, so the JSON skeleton itself is what gets decoded
        save_file({"a": torch.zeros(2)}, str(tmp_path / "state.safetensors"))
    with contextlib.suppress(UserError):
        load_tree(tmp_path, "state")


def test_a_valid_checkpoint_still_loads_after_all_this(tmp_path):
    trainer = Trainer(ToyLM(), config(max_steps=1, save_every=1), output_dir=tmp_path,
                      train_data=ToySequences())  # fmt: skip
    trainer.train()
    state = load_tree(tmp_path / "checkpoints" / "step-1", "trainer_state")
    assert state["step"] == 1
    assert isinstance(
        load_tree(tmp_path / "checkpoints" / "step-1", "rng-0")["torch"], torch.Tensor
    )
