"""seqkit installed as a user installs it: a wheel, in a fresh virtual environment, used from a
folder that is not the repository. The recipes ship inside the wheel; the license and the
version are there too."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from seqkit import __version__

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT), "-w", str(out)],
        check=True,
        timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    (found,) = out.glob("seqkit-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_carries_recipes_license_and_no_test_only_dependencies(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {
        n.removeprefix("seqkit/_recipes/") for n in names if n.startswith("seqkit/_recipes/")
    }
    in_repo = {
        p.relative_to(ROOT / "recipes").as_posix() for p in (ROOT / "recipes").rglob("*.yaml")
    }
    assert shipped == in_repo
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    lines = zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
    assert "License-Expression: Apache-2.0" in lines
    required = [
        line for line in lines if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not any("mido" in line or "pretty_midi" in line for line in required)


@pytest.mark.slow
def test_a_wheel_install_lists_recipes_and_trains(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    # The dependencies come from this environment (installing torch again would take minutes);
    # seqkit itself only from the wheel. A .pth line adds the directory without running its
    # own .pth files, so this environment's editable seqkit stays out of sight.
    (purelib,) = Path(venv / "lib").glob("python3*/site-packages")
    (purelib / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    seqkit = venv / "bin" / "seqkit"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(seqkit), *args], capture_output=True, text=True, cwd=work,
                              env=env, timeout=600)  # fmt: skip

    where = subprocess.run(
        [str(python), "-c", "import seqkit; print(seqkit.__file__)"],
        capture_output=True, text=True, cwd=work, env=env, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(venv)), where.stdout
    assert run("--version").stdout.strip() == f"seqkit {__version__}"
    listed = run("recipes")
    assert listed.returncode == 0, listed.stderr
    assert "gpt/quickstart-pydoc-char.yaml" in listed.stdout
    trained = run(
        "train", "gpt/quickstart-pydoc-char",
        *("--set", "trainer.max_steps=5", "--set", "trainer.eval_every=0"),
        *("--set", "trainer.progress_bar=false", "--set", "trainer.report_to=[]"),
        *("--set", "model.n_layer=1", "--set", "model.n_embd=16", "--set", "model.n_head=2"),
        "--output-dir", "run",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (work / "run" / "final" / "model.safetensors").is_file()
