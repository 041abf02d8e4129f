"""A family whose optional package is missing says which extra installs it, in one line."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
import tomllib

from seqkit.cli import main
from seqkit.errors import OPTIONAL_EXTRAS, missing_extra


@pytest.mark.parametrize(
    ("recipe", "package", "extra"),
    [("rl/cartpole-dqn", "gymnasium", "rl"), ("gcn/karate-club", "networkx", "graph")],
)
def test_a_missing_optional_package_is_one_line_naming_the_extra(
    recipe, package, extra, tmp_path, monkeypatch
):
    # A None entry in sys.modules makes `import package` fail as if it were not installed.
    for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["train", recipe, "--output-dir", str(tmp_path / "run")])
    assert code == 2
    assert err.getvalue().strip().splitlines()[-1] == (
        f"seqkit: error: this needs the optional package {package}: pip install 'seqkit[{extra}]'"
    )
    assert not (tmp_path / "run").exists()


def test_every_optional_package_belongs_to_a_declared_extra():
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for package, extra in OPTIONAL_EXTRAS.items():
        assert any(spec.startswith(package) for spec in extras[extra]), (package, extra)
        assert not any(spec.startswith(package) for spec in project["dependencies"]), package


def test_other_import_errors_are_not_disguised():
    assert missing_extra(ModuleNotFoundError("no", name="torch")) is None
    assert missing_extra(ValueError("gymnasium")) is None
