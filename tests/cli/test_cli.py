"""End-to-end smoke tests of every CLI command and every recipe, plus the bad-input contract:
one line on stderr, exit code 2, no traceback, nothing of the user's overwritten."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seqkit.cli import main
from seqkit.recipes import RECIPES_DIR

TINY = [
    "--set", "model.n_layer=1",
    "--set", "model.n_head=2",
    "--set", "model.n_embd=16",
    "--set", "model.block_size=16",
    "--set", "trainer.max_steps=4",
    "--set", "trainer.batch_size=4",
    "--set", "trainer.eval_every=2",
    "--set", "trainer.save_every=2",
    "--set", "trainer.eval_batches=2",
    "--set", "trainer.warmup_steps=1",
    "--set", "trainer.progress_bar=false",
]  # fmt: skip
QUICKSTART = "gpt/quickstart-pydoc-char"


def seqkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        timeout=300,
    )


def assert_user_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("seqkit: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A quickstart GPT run. Training it, saving its checkpoints and final folder and printing
    its sample never import transformers' PreTrainedModel (seconds and 120 MB): the run trains
    the plain-PyTorch network and writes the folder the transformers class loads."""
    run = tmp_path_factory.mktemp("runs") / "quick"
    argv = ["train", QUICKSTART, *TINY, "--output-dir", str(run)]
    code = (
        "import sys\n"
        "from seqkit.cli import main\n"
        f"assert main({argv!r}) == 0\n"
        "heavy = {'transformers.modeling_utils', 'transformers.models.auto'} & set(sys.modules)\n"
        "assert not heavy, f'a GPT run imported {sorted(heavy)}'\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_train_writes_the_run_directory(trained_run):
    assert (trained_run / "recipe.yaml").is_file()
    assert sorted(p.name for p in (trained_run / "checkpoints").iterdir()) == [
        "step-2",
        "step-4",
    ]
    final = trained_run / "final"
    for name in ("config.json", "model.safetensors", "README.md", "generation_config.json"):
        assert (final / name).is_file(), name
    assert (trained_run / "loss.png").is_file()
    assert list((trained_run / "tensorboard").rglob("events.out.tfevents.*"))
    rows = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/loss" in row for row in rows)
    assert any("train/loss" in row for row in rows)


def test_generate_is_reproducible_with_a_seed(trained_run):
    args = ["generate", str(trained_run), "--prompt", "The", "--max-new-tokens", "20"]
    first = seqkit(*args, "--seed", "7")
    again = seqkit(*args, "--seed", "7")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout
    assert first.stdout.startswith("The")
    greedy = seqkit(*args, "--temperature", "0", "--top-k", "5", "--top-p", "0.9")
    assert greedy.returncode == 0, greedy.stderr


def test_generate_from_the_model_folder_and_long_prompts(trained_run, capsys):
    long_prompt = "The " * 10  # 40 characters, context is 16
    assert main(["generate", str(trained_run / "final"), "--prompt", long_prompt,
                 "--max-new-tokens", "3"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "keeping the last 16" in captured.err


def test_generate_loads_a_gpt_folder_without_transformers(trained_run):
    # transformers' PreTrainedModel takes seconds to import; the standalone network does not
    # need it. The text is what the transformers model gives with the same seed.
    argv = ["generate", str(trained_run), "--prompt", "The", "--max-new-tokens", "30",
            "--temperature", "0.9", "--seed", "3"]  # fmt: skip
    code = (
        "import contextlib, io, sys\n"
        "from seqkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    assert main({argv!r}) == 0\n"
        "assert 'transformers' not in sys.modules, 'imported transformers'\n"
        "print(out.getvalue(), end='')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]

    from seqkit.generation import continue_prompt
    from seqkit.parts.model_folder import open_trained

    loaded = open_trained(trained_run)
    assert type(loaded.model).__name__ == "GPTLMHeadModel"
    text = continue_prompt(loaded.model, loaded.tokenizer, "The", max_new_tokens=30,
                           temperature=0.9, seed=3)  # fmt: skip
    assert result.stdout == text + "\n"


def test_generate_decodes_with_the_threads_asked_and_gives_them_back(trained_run, monkeypatch):
    import torch

    import seqkit.generation as generation

    seen = []
    real = generation.continue_prompt

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "continue_prompt", recording)
    before = torch.get_num_threads()
    argv = ["generate", str(trained_run), "--prompt", "The", "--max-new-tokens", "2"]
    assert main(argv) == 0
    assert main([*argv, "--threads", "2"]) == 0
    assert seen == [1, 2]  # one thread unless asked: a token at a time is too little to share
    assert torch.get_num_threads() == before
    assert_user_error(seqkit(*argv, "--threads", "0"), "--threads must be at least 1")


def test_folders_the_standalone_network_cannot_read_go_to_the_full_loader(trained_run, tmp_path):
    from safetensors.torch import load_file, save_file

    from seqkit.parts.model_folder import DATA_MODULE_FIELD, open_standalone

    assert open_standalone(trained_run) is not None
    assert open_standalone(trained_run / "checkpoints" / "step-4") is None
    half = tmp_path / "half"
    shutil.copytree(trained_run / "final", half)
    state = load_file(half / "model.safetensors")
    save_file({name: t.half() for name, t in state.items()}, half / "model.safetensors")
    assert open_standalone(half) is None
    assert seqkit("generate", str(half), "--prompt", "The", "--max-new-tokens", "5").returncode == 0
    music = tmp_path / "music"
    shutil.copytree(trained_run / "final", music)
    config = json.loads((music / "config.json").read_text())
    (music / "config.json").write_text(json.dumps({**config, DATA_MODULE_FIELD: "chorales"}))
    assert open_standalone(music) is None


def test_prompt_with_unknown_character(trained_run):
    result = seqkit("generate", str(trained_run), "--prompt", "snow ☃")
    assert_user_error(result, "☃")


def test_resume_extends_a_finished_run(trained_run, tmp_path):
    run = tmp_path / "copy"
    result = seqkit("train", QUICKSTART, *TINY, "--output-dir", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    result = seqkit(
        "train", QUICKSTART, *TINY, "--set", "trainer.max_steps=6", "--output-dir", str(run),
        "--resume",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "step 6" in result.stdout
    assert (run / "checkpoints" / "step-6").is_dir()


def test_existing_run_is_never_overwritten(trained_run):
    before = (trained_run / "final" / "model.safetensors").read_bytes()
    result = seqkit("train", QUICKSTART, *TINY, "--output-dir", str(trained_run))
    assert_user_error(result, "already exists", "--overwrite")
    assert (trained_run / "final" / "model.safetensors").read_bytes() == before


def test_resume_with_a_changed_recipe_is_refused(trained_run):
    result = seqkit(
        "train", QUICKSTART, *TINY, "--set", "trainer.lr=0.5", "--output-dir", str(trained_run),
        "--resume",
    )  # fmt: skip
    assert_user_error(result, "trainer.lr")


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "precious.txt").write_text("mine")
    result = seqkit("train", QUICKSTART, *TINY, "--output-dir", str(tmp_path), "--overwrite")
    assert_user_error(result, "not a seqkit run")
    assert (tmp_path / "precious.txt").read_text() == "mine"


def test_recipes_lists_every_recipe_with_a_description():
    result = seqkit("recipes")
    assert result.returncode == 0
    listed = result.stdout.splitlines()
    files = sorted(RECIPES_DIR.rglob("*.yaml"))
    assert len(listed) == len(files) >= 2
    assert any(line.startswith("gpt/shakespeare-char.yaml") for line in listed)


@pytest.mark.parametrize("argv", [["recipes"], ["--help"], ["--version"]])
def test_listing_and_help_do_not_import_torch(argv):
    # Importing torch and transformers takes seconds; printing a list or the usage must not.
    code = (
        "import contextlib, io, sys\n"
        "from seqkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert out.getvalue(), 'printed nothing'\n"
        "heavy = sorted({'torch', 'transformers', 'accelerate', 'datasets'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture
def seqkit_logger():
    """The ``seqkit`` logger, put back as it was after a test that runs ``main``."""
    logger = logging.getLogger("seqkit")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        ([], ["info", "warning"]),
        (["-q"], ["warning"]),
        (["--verbose"], ["debug", "info", "warning"]),
    ],
)
def test_library_logs_reach_stderr_at_the_chosen_level(seqkit_logger, capsys, flags, shown):
    for _ in range(2):  # a second main() in one process adds no second handler
        assert main([*flags, "recipes"]) == 0
    capsys.readouterr()
    library = logging.getLogger("seqkit.some.module")
    library.debug("debug")
    library.info("info")
    library.warning("warning")
    captured = capsys.readouterr()
    assert captured.err.splitlines() == shown
    assert captured.out == ""  # stdout is for the command's result


def test_quiet_and_verbose_exclude_each_other():
    result = seqkit("-q", "-v", "recipes")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_train_says_which_mixed_precision_it_uses(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqkit", "train", QUICKSTART, *TINY,
         "--set", "trainer.max_steps=1", "--output-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "ACCELERATE_MIXED_PRECISION": "bf16", "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mixed precision: bf16, from accelerate (ACCELERATE_MIXED_PRECISION)" in (
        result.stderr.splitlines()
    )


@pytest.mark.parametrize(
    "recipe",
    sorted(
        p.relative_to(RECIPES_DIR)
        for p in [*RECIPES_DIR.glob("gpt/*.yaml"), *RECIPES_DIR.glob("decoder/*.yaml")]
        # A recipe that starts from a Hub model needs it; tests/parts/test_init_from_stock.py
        # trains from stock folders built locally.
        if "init_from:" not in p.read_text(encoding="utf-8")
    ),
)
def test_every_gpt_and_decoder_recipe_trains_with_a_tiny_budget(recipe, tmp_path):
    # Each family's tests smoke-test its own recipes with tiny overrides of their own.
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40)
    result = seqkit(
        "train", str(RECIPES_DIR / recipe), *TINY, "--set", f"data.path={corpus}",
        "--set", "sample.prompt=First", "--output-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert "--- sample" in result.stdout


def test_sample_prompt_outside_the_vocabulary_fails_before_training(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abc abc abc\n" * 200)
    result = seqkit("train", QUICKSTART, *TINY, "--set", f"data.path={corpus}",
                    "--output-dir", str(tmp_path / "run"))  # fmt: skip
    assert_user_error(result, "sample.prompt")
    assert not (tmp_path / "run").exists()


# ------------------------------------------- bad input (the rest is in docs/errors.md's catalogue)


def test_missing_recipe():
    assert_user_error(seqkit("train", "no/such-recipe.yaml"), "no/such-recipe")


def test_unreachable_hub_dataset(tmp_path):
    result = seqkit("train", "gpt/shakespeare-char", *TINY, "--output-dir", str(tmp_path / "run"))
    assert_user_error(result, "karpathy/tiny_shakespeare", "data.path")


@pytest.mark.slow  # scores a whole validation tail; runs in the slow suite (CI)
def test_evaluate_a_gpt_run_scores_its_validation_tail(trained_run, tmp_path):
    out = tmp_path / "metrics.json"
    result = seqkit("evaluate", str(trained_run), "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert metrics["eval/examples"] > 0
    assert metrics["eval/perplexity"] == pytest.approx(
        2.718281828 ** metrics["eval/loss"], rel=1e-6
    )
    assert f"eval/loss: {metrics['eval/loss']:.4f}" in result.stdout


def test_evaluate_a_bare_model_folder_needs_its_run(trained_run, tmp_path):
    import shutil

    shutil.copytree(trained_run / "final", tmp_path / "model")
    assert_user_error(seqkit("evaluate", str(tmp_path / "model")), "--data FILE")
