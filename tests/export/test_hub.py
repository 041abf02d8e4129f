"""Hub folders on disk: nothing half-written, nothing of the user's replaced, no NaN exported."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from seqkit.errors import UserError
from seqkit.export.formats import PATH_PLACEHOLDER, fill_path, model_size
from seqkit.export.hub import check_finite_weights, check_out_dir, looks_like_export, staged_folder
from seqkit.export.model_card import write_model_card


def make_export(folder):
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    write_model_card(
        folder, title="t", family="gpt", num_parameters=1, recipe=None, metrics={}, how_to_load=""
    )


def test_staged_folder_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_folder(out) as staging:
        (staging / "config.json").write_text("{}")
        raise RuntimeError("the writer failed half way")
    assert list(tmp_path.iterdir()) == []

    with staged_folder(out) as staging:
        (staging / "config.json").write_text('{"new": 1}')
        assert not out.exists()
    assert json.loads((out / "config.json").read_text()) == {"new": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staged_folder_replaces_an_earlier_export(tmp_path):
    out = tmp_path / "out"
    make_export(out)
    (out / "stale.bin").write_text("old")
    with staged_folder(out) as staging:
        (staging / "config.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_out_dir_checks(tmp_path):
    model = tmp_path / "run" / "final"
    model.mkdir(parents=True)
    check_out_dir(tmp_path / "new", overwrite=False, model_folder=model)
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", overwrite=False, model_folder=model)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        check_out_dir(tmp_path / "file", overwrite=True, model_folder=model)

    make_export(tmp_path / "earlier")
    with pytest.raises(UserError, match="--overwrite"):
        check_out_dir(tmp_path / "earlier", overwrite=False, model_folder=model)
    check_out_dir(tmp_path / "earlier", overwrite=True, model_folder=model)
    assert looks_like_export(tmp_path / "earlier")

    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "config.json").write_text("{}")  # a config, but no seqkit card
    assert not looks_like_export(tmp_path / "user")
    with pytest.raises(UserError, match="not a seqkit export"):
        check_out_dir(tmp_path / "user", overwrite=True, model_folder=model)

    run = model.parent
    for bad in (model, model / "inside", run, tmp_path):
        with pytest.raises(UserError, match="overlaps"):
            check_out_dir(bad, overwrite=True, model_folder=model, run_dir=run)
    check_out_dir(run / "exports", overwrite=False, model_folder=model, run_dir=run)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    weights = {"a": torch.ones(3), "b.weight": torch.ones(2, 2), "steps": torch.tensor([7])}
    save_file(weights, tmp_path / "model.safetensors")
    assert check_finite_weights(tmp_path) == 1
    weights["b.weight"][1, 0] = bad
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(UserError, match=r"non-finite.*'b\.weight'"):
        check_finite_weights(tmp_path)


def test_a_pickle_named_safetensors_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(UserError, match="not a valid safetensors file"):
        check_finite_weights(tmp_path)


def test_fill_path_writes_a_python_string_once():
    code = f'path = "{PATH_PLACEHOLDER}"\n# seqkit generate {PATH_PLACEHOLDER}\n'
    assert fill_path(code, 'C:\\models\\"x"') == (
        'path = "C:\\\\models\\\\\\"x\\""\n# seqkit generate C:\\models\\"x"\n'
    )
    assert fill_path(code, PATH_PLACEHOLDER).count(PATH_PLACEHOLDER) == 2


def test_model_size_reads_the_size_fields():
    config = {"n_layer": 2, "n_embd": 16, "vocab_size": 65, "use_cache": True, "n_inner": None}
    assert model_size(config) == {"n_layer": 2, "n_embd": 16, "vocab_size": 65}
