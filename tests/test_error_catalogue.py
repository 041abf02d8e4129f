"""Every row of docs/errors.md, run: the command fails with exactly the documented line and exit
code, without a traceback, and nothing the user made is touched.

The commands run in this process through ``seqkit.cli.main`` (no interpreter start-up per row),
so the whole catalogue takes seconds. ``python -m tests.test_error_catalogue --show`` prints the
message each row produces, for writing new rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from seqkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "errors.md"
QUICKSTART = "gpt/quickstart-pydoc-char"
TINY = [
    f"--set={override}"
    for override in (
        *("model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16"),
        *("trainer.max_steps=2", "trainer.batch_size=2", "trainer.eval_every=0"),
        *("trainer.save_every=1", "trainer.eval_batches=1", "trainer.progress_bar=false"),
        "trainer.report_to=[]",
    )
]


def rows() -> list[tuple[str, str, int]]:
    """``(command, message, exit code)`` for each row of the catalogue's table."""
    found = []
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\| `seqkit ([^`]*)` \| (.*) \| (\d+) \|", line)
        if match:
            message = match.group(2).replace("\\|", "|")
            found.append((match.group(1), message.strip("`"), int(match.group(3))))
    return found


def make_places(root: Path) -> dict[str, str]:
    """The files and folders the catalogue's placeholders stand for."""
    places = {"tmp": root / "tmp"}
    places["tmp"].mkdir()
    places["latin1"] = root / "latin1.txt"
    places["latin1"].write_bytes(b"caf" + "é".encode("latin-1") + b" au lait\n")
    places["small"] = root / "small.txt"
    places["small"].write_text('The "small" corpus.\n' * 10)
    places["empty"] = root / "empty.txt"
    places["empty"].write_text("")
    places["run"] = root / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", QUICKSTART, *TINY, "--output-dir", str(places["run"])])
    assert code == 0
    places["model"] = root / "model"
    shutil.copytree(places["run"] / "final", places["model"])
    places["partial"] = root / "partial"
    shutil.copytree(places["run"], places["partial"], ignore=shutil.ignore_patterns("final"))
    places["pickled"] = root / "pickled"
    places["pickled"].mkdir()
    shutil.copy(places["run"] / "final" / "config.json", places["pickled"])
    (places["pickled"] / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # pickle of 1
    places["not_a_run"] = root / "mine"
    places["not_a_run"].mkdir()
    (places["not_a_run"] / "notes.txt").write_text("my notes\n")
    return {name: str(path) for name, path in places.items()}


def fingerprint(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(command: str, places: dict[str, str]) -> tuple[int, str, str]:
    argv = [arg.format(**places) for arg in shlex.split(command)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def shown(line: str, places: dict[str, str]) -> str:
    """The message with this test's paths put back as placeholders (longest paths first)."""
    line = line.removeprefix("seqkit: error: ")
    for name, path in sorted(places.items(), key=lambda item: -len(item[1])):
        line = line.replace(path, "{" + name + "}")
    return line


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    return make_places(tmp_path_factory.mktemp("catalogue"))


def test_the_catalogue_is_not_empty():
    assert len(rows()) >= 30


@pytest.mark.parametrize(("command", "message", "exit_code"), rows(), ids=[r[0] for r in rows()])
def test_each_documented_error(places, monkeypatch, command, message, exit_code):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    root = Path(places["tmp"]).parent
    before = fingerprint(root)
    code, _, err = run(command, places)
    lines = err.strip().splitlines()
    assert code == exit_code, err
    assert "Traceback" not in err
    if exit_code == 2:
        assert len(lines) == 1 and lines[0].startswith("seqkit: error: "), err
    else:  # argparse's usage errors: a usage line, then the error
        assert lines[-1].startswith("seqkit"), err
    actual = shown(lines[-1], places)
    if message.endswith("…"):
        assert actual.startswith(message[:-1]), actual
    else:
        assert actual == message
    # Nothing the user made changed, and a failed command left nothing behind.
    assert fingerprint(root) == before


if __name__ == "__main__" and "--show" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        where = make_places(Path(scratch))
        for command, _, _ in rows():
            code, _, err = run(command, where)
            last = err.strip().splitlines()[-1] if err.strip() else ""
            print(json.dumps([command, code, shown(last, where)], ensure_ascii=False))


def test_every_raise_site_is_in_the_generated_catalogue():
    """docs/error-messages.md lists every UserError in seqkit/; regenerate it after adding one."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import error_catalogue
    finally:
        sys.path.pop(0)
    expected = error_catalogue.catalogue(error_catalogue.collect())
    written = error_catalogue.OUTPUT.read_text(encoding="utf-8")
    assert written == expected, (
        "docs/error-messages.md is out of date with the code: run "
        "`python scripts/error_catalogue.py --write`"
    )


def test_the_catalogue_generator_sees_each_kind_of_message(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import error_catalogue
    finally:
        sys.path.pop(0)
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text(
        "def f(x):\n"
        "    raise UserError(f'bad {x!r} in ' + 'two parts')\n"
        "class C:\n"
        "    def g(self):\n"
        "        return UserError('plain')\n"
    )
    sites = error_catalogue.collect(package)
    assert [(s.function, s.message) for s in sites] == [
        ("f", "bad {x} in two parts"),
        ("C.g", "plain"),
    ]
