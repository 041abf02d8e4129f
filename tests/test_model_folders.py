"""Damaged, tampered and foreign model folders, read by every command that reads one.

A matrix of corruption kind x command, built from one tiny trained run per family: each
corruption is applied to a copy of a good model folder, the command runs, and it must fail with
exit code 2 and exactly one ``seqkit: error:`` line on stderr, no traceback, and the folder's
bytes as they were. The default suite runs every corruption through ``seqkit generate`` and a
share of them through the other readers in-process (``seqkit.cli.main``), plus a few through a
real ``python -m seqkit``; the whole matrix, by subprocess, is marked slow.

``python tests/test_model_folders.py`` runs the whole matrix in-process against the seqkit found
on PYTHONPATH and prints how many cases ended in a traceback (how the count before and after
the checked loader in :mod:`seqkit.folders` was measured).

A hypothesis test mutates a folder's ``model.safetensors`` and ``config.json`` bytes and loads
it through :func:`seqkit.parts.model_folder.load_folder` in-process: only success or UserError.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TINY = [
    "trainer.max_steps=2", "trainer.batch_size=2", "trainer.eval_every=0",
    "trainer.save_every=0", "trainer.eval_batches=1", "trainer.progress_bar=false",
    "trainer.report_to=[]",
]  # fmt: skip
RUNS: dict[str, tuple[str, list[str]]] = {
    "gpt": ("gpt/quickstart-pydoc-char", [
        "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16"]),
    "bert": ("bert/pydoc-mlm", [
        "model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2",
        "model.intermediate_size=32", "data.max_length=32"]),
    "transformer": ("transformer/generated-toy", [
        "model.d_model=16", "model.n_head=2", "model.num_encoder_layers=1",
        "model.num_decoder_layers=1", "model.d_ff=32", "data.generated_pairs=200"]),
}  # fmt: skip

# Per family: the config fields a corruption changes (a width, a layer count, a vocabulary) and
# the file its tokenizer lives in.
WIDTH = {"gpt": "n_embd", "bert": "hidden_size", "transformer": "d_model"}
LAYERS = {"gpt": "n_layer", "bert": "num_hidden_layers", "transformer": "num_encoder_layers"}
VOCAB = {"gpt": "vocab_size", "bert": "vocab_size", "transformer": "src_vocab_size"}
TOKENIZER = {"gpt": "tokenizer.json", "bert": "tokenizer.json"}
TOKENIZER["transformer"] = "translation_vocab.json"
WEIGHTS = "model.safetensors"


def train_runs(root: Path, families=tuple(RUNS)) -> dict[str, Path]:
    """One tiny run per family, trained in this process; ``{family: run directory}``."""
    from seqkit.cli import main

    runs = {}
    for family in families:
        recipe, sizes = RUNS[family]
        run = root / f"run-{family}"
        argv = ["train", recipe, *[f"--set={s}" for s in [*TINY, *sizes]]]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main([*argv, "--output-dir", str(run)]) == 0, family
        runs[family] = run
    return runs


# ----------------------------------------------------------------------------- corruptions


def _header(data: bytes) -> tuple[dict, bytes]:
    """A safetensors file's JSON header and its tensor bytes."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _edit_header(folder: Path, change: Callable[[str, dict], None]) -> None:
    """Rewrite the header of the folder's weights, ``change(name, entry)`` on the first 2-D
    tensor whose dimensions differ; the tensor bytes stay as they are."""
    header, body = _header((folder / WEIGHTS).read_bytes())
    name = next(
        n
        for n, e in sorted(header.items())
        if n != "__metadata__" and len(e["shape"]) == 2 and e["shape"][0] != e["shape"][1]
    )
    change(name, header)
    (folder / WEIGHTS).write_bytes(_with_header(header, body))


def _transposed_shape(name: str, header: dict) -> None:
    # The same number of bytes, so safetensors' own checks pass: only the model can tell.
    header[name]["shape"] = header[name]["shape"][::-1]


def _offsets_past_end(name: str, header: dict) -> None:
    start, end = header[name]["data_offsets"]
    header[name]["data_offsets"] = [start, end + 10**6]


def _renamed_tensor(name: str, header: dict) -> None:
    header[name.replace(".weight", ".wieght")] = header.pop(name)


def _config(change: Callable[[dict, str], None]) -> Callable[[Path, str, dict], None]:
    def corrupt(folder: Path, family: str, pristine: dict) -> None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        change(config, family)
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")

    return corrupt


def _fewer_ids(folder: Path, family: str, pristine: dict) -> None:
    """Drop the tokenizer's last three ids; the model's vocabulary keeps them."""
    path = folder / TOKENIZER[family]
    data = json.loads(path.read_text(encoding="utf-8"))
    if family == "transformer":
        data["source"]["itos"] = data["source"]["itos"][:-3]
    else:
        vocab = data["model"]["vocab"]
        dropped = sorted(vocab, key=vocab.get)[-3:]
        data["model"]["vocab"] = {t: i for t, i in vocab.items() if t not in dropped}
        if "merges" in data["model"]:  # BPE: the merges that made the dropped tokens go too
            data["model"]["merges"] = [
                m
                for m in data["model"]["merges"]
                if "".join(m if isinstance(m, list) else m.split(" ")) not in dropped
            ]
    path.write_text(json.dumps(data), encoding="utf-8")


def _symlink_out(folder: Path, family: str, pristine: dict) -> None:
    """The weights replaced by a link to a (good) copy outside the folder."""
    outside = folder.parent / f"{folder.name}-outside.safetensors"
    shutil.copy(pristine[family] / WEIGHTS, outside)
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).symlink_to(outside)


def _dangling_symlink(folder: Path, family: str, pristine: dict) -> None:
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).symlink_to(folder.parent / "nowhere.safetensors")


def _pickle_only(folder: Path, family: str, pristine: dict) -> None:
    (folder / WEIGHTS).unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle of 1


def _weights_directory(folder: Path, family: str, pristine: dict) -> None:
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).mkdir()


def _foreign_weights(folder: Path, family: str, pristine: dict) -> None:
    other = "bert" if family != "bert" else "gpt"
    shutil.copy(pristine[other] / WEIGHTS, folder / WEIGHTS)


def _foreign_tokenizer(folder: Path, family: str, pristine: dict) -> None:
    """Another run's tokenizer (another vocabulary) in place of the folder's own."""
    other = {"gpt": "bert", "bert": "gpt", "transformer": "gpt"}[family]
    (folder / TOKENIZER[family]).write_bytes((pristine[other] / TOKENIZER[other]).read_bytes())


def _write(name: str, data: bytes) -> Callable[[Path, str, dict], None]:
    def corrupt(folder: Path, family: str, pristine: dict) -> None:
        (folder / (TOKENIZER[family] if name == "TOKENIZER" else name)).write_bytes(data)

    return corrupt


def _truncate(folder: Path, family: str, pristine: dict) -> None:
    data = (folder / WEIGHTS).read_bytes()
    (folder / WEIGHTS).write_bytes(data[: len(data) // 2])


def _random_weights(folder: Path, family: str, pristine: dict) -> None:
    size = (folder / WEIGHTS).stat().st_size
    (folder / WEIGHTS).write_bytes(random.Random(0).randbytes(size))


def _delete_tokenizer(folder: Path, family: str, pristine: dict) -> None:
    (folder / TOKENIZER[family]).unlink()


CORRUPTIONS: dict[str, Callable[[Path, str, dict], None]] = {
    "truncated weights": _truncate,
    "random-byte weights": _random_weights,
    "empty weights": _write(WEIGHTS, b""),
    "another model's weights": _foreign_weights,
    "header lies about a shape": lambda f, *_: _edit_header(f, _transposed_shape),
    "header offsets past the end": lambda f, *_: _edit_header(f, _offsets_past_end),
    "header renames a tensor": lambda f, *_: _edit_header(f, _renamed_tensor),
    "weights symlink out of the folder": _symlink_out,
    "weights symlink to nowhere": _dangling_symlink,
    "weights file is a directory": _weights_directory,
    "pickle-only folder": _pickle_only,
    "config not JSON": _write("config.json", b'{"model_type": "seqkit-'),
    "config not UTF-8": _write("config.json", b'{"model_type": "\xff\xfe"}'),
    "config not a mapping": _write("config.json", b"[1, 2, 3]"),
    "config without model_type": _config(lambda c, f: c.pop("model_type")),
    "config of an unknown model_type": _config(lambda c, f: c.update(model_type="llama-9")),
    "config width not the weights'": _config(lambda c, f: c.update({WIDTH[f]: 2 * c[WIDTH[f]]})),
    "config negative width": _config(lambda c, f: c.update({WIDTH[f]: -16})),
    "config absurd layer count": _config(lambda c, f: c.update({LAYERS[f]: 10**9})),
    "config layer count a string": _config(lambda c, f: c.update({LAYERS[f]: "two"})),
    "config layer count a float": _config(lambda c, f: c.update({LAYERS[f]: 1.5})),
    "config absurd vocabulary": _config(lambda c, f: c.update({VOCAB[f]: 10**12})),
    "config dtype unknown": _config(lambda c, f: c.update(dtype="float7")),
    "generation config not JSON": _write("generation_config.json", b"{num_beams: 4"),
    "generation config num_beams -2": _write("generation_config.json", b'{"num_beams": -2}'),
    "tokenizer with fewer ids": _fewer_ids,
    "tokenizer of another model": _foreign_tokenizer,
    "tokenizer missing": _delete_tokenizer,
    "tokenizer not JSON": _write("TOKENIZER", b"\x00\x01 not json"),
    "tokenizer a JSON list": _write("TOKENIZER", b"[]"),
}


# ----------------------------------------------------------------------------- commands

# command -> (family whose folder it reads, argv for a folder, where a run directory is
# needed instead of a bare folder). {folder} is the model folder, {out} a fresh path.
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "generate": ("gpt", ["generate", "{folder}", "--prompt", "def", "--max-new-tokens", "2"]),
    "evaluate": ("gpt", ["evaluate", "{run}"]),
    "export": ("bert", ["export", "{folder}", "{out}", "--format", "transformers"]),
    "export-native": ("gpt", ["export", "{folder}", "{out}"]),
    "translate": ("transformer", ["translate", "{folder}", "--text", "la kato"]),
    "init_from": ("bert", [
        "train", "bert/pydoc-prose-or-code-classifier", "--set=model.init_from={folder}",
        *[f"--set={s}" for s in TINY], "--output-dir", "{out}"]),
}  # fmt: skip

# Folders given to a command of another family: (command, family of the folder).
CROSS_FAMILY = [
    ("translate", "bert"),
    ("translate", "gpt"),
    ("compose", "gpt"),
    ("compose", "bert"),
    ("init_from", "gpt"),
    ("init_from", "transformer"),
]
COMPOSE = ["compose", "{folder}", "--out", "{out}/piece.mid", "--length", "4"]


def argv_for(command: str, case_dir: Path) -> list[str]:
    template = COMPOSE if command == "compose" else COMMANDS[command][1]
    places = {
        "folder": str(case_dir / "run" / "final"),
        "run": str(case_dir / "run"),
        "out": str(case_dir / "out"),
    }
    return [part.format(**places) for part in template]


def prepare(case_dir: Path, run: Path, corruption: str | None, family: str, pristine: dict):
    """A copy of ``run`` (recipe, metrics, final/; no checkpoints) in ``case_dir/run``, its
    ``final/`` corrupted."""
    copy = case_dir / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints", "*.png"))
    if corruption is not None:
        CORRUPTIONS[corruption](copy / "final", family, pristine)


def fingerprint(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's hash, a link's target, or 'dir'."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def check_refused(code: int, err: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("seqkit: error: "), err


def run_in_process(argv: list[str]) -> tuple[int, str]:
    from seqkit.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def run_subprocess(argv: list[str], pythonpath: str | None = None) -> tuple[int, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    result = subprocess.run(
        [sys.executable, "-m", "seqkit", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return result.returncode, result.stderr


# Not corruptions for these readers: a bare model folder, without a tokenizer, exports as it
# is (tests/export/test_roundtrip.py; test_a_bare_folder_still_exports checks it does), and
# generation_config.json is read only by `translate` (its beam defaults) and by a native
# export's Auto class (which fails on a file that is not JSON, but copies odd values as they
# are); `generate`/`evaluate` of a GPT and the BERT readers never open it.
GENERATION_CONFIG = ("generation config not JSON", "generation config num_beams -2")
NOT_DAMAGE = {("export", "tokenizer missing"), ("export-native", "tokenizer missing")}
NOT_DAMAGE |= {(c, k) for c in COMMANDS for k in GENERATION_CONFIG if c != "translate"}
NOT_DAMAGE -= {("export-native", "generation config not JSON")}


def all_cases() -> list[tuple[str, str | None, str]]:
    """``(command, corruption or None, family)``: every corruption x command, then the
    folders of another family."""
    cases = [(c, k, COMMANDS[c][0]) for c in COMMANDS for k in CORRUPTIONS]
    cases = [case for case in cases if case[:2] not in NOT_DAMAGE]
    return cases + [(c, None, f) for c, f in CROSS_FAMILY]


def case_id(case) -> str:
    command, corruption, family = case
    return f"{command}-{corruption or f'a {family} folder'}"


# ----------------------------------------------------------------------------- tests

# The default suite: every corruption through `generate`, and for each other reader the
# corruptions that reach its own loading code (another family's files, config sizes,
# tokenizer); the slow test runs all of them.
DEFAULT_OTHERS = (
    "truncated weights",
    "another model's weights",
    "header lies about a shape",
    "weights symlink out of the folder",
    "config width not the weights'",
    "config layer count a string",
    "tokenizer with fewer ids",
    "tokenizer not JSON",
)
DEFAULT_CASES = [
    case
    for case in all_cases()
    if case[0] == "generate" or case[1] is None or case[1] in DEFAULT_OTHERS
]
# A real interpreter, in the default suite: a weights file and a tokenizer, by two readers.
SUBPROCESS_CASES = [
    ("generate", "truncated weights", "gpt"),
    ("translate", "tokenizer with fewer ids", "transformer"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return train_runs(tmp_path_factory.mktemp("model-folders"))


def _check_case(case, runs, tmp_path, execute) -> None:
    command, corruption, family = case
    pristine = {name: run / "final" for name, run in runs.items()}
    prepare(tmp_path, runs[family], corruption, family, pristine)
    before = fingerprint(tmp_path / "run")
    code, err = execute(argv_for(command, tmp_path))
    check_refused(code, err)
    assert fingerprint(tmp_path / "run") == before, "the folder changed"


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=case_id)
def test_a_damaged_or_foreign_folder_is_one_line(case, runs, tmp_path):
    _check_case(case, runs, tmp_path, run_in_process)


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=case_id)
def test_python_m_seqkit_refuses_with_one_line(case, runs, tmp_path):
    _check_case(case, runs, tmp_path, run_subprocess)


@pytest.mark.slow
@pytest.mark.parametrize("case", all_cases(), ids=case_id)
def test_every_corruption_by_every_reader_through_python_m_seqkit(case, runs, tmp_path):
    _check_case(case, runs, tmp_path, run_subprocess)


def test_the_pristine_folders_still_load(runs, tmp_path):
    """The control: every reader accepts the runs the corruptions start from."""
    for command in ("generate", "translate", "export"):
        family = COMMANDS[command][0]
        case_dir = tmp_path / command
        prepare(case_dir, runs[family], None, family, {})
        code, err = run_in_process(argv_for(command, case_dir))
        assert code == 0, err


@pytest.mark.parametrize("command", ["export", "export-native"])
def test_a_bare_folder_still_exports(command, runs, tmp_path):
    family = COMMANDS[command][0]
    prepare(tmp_path, runs[family], "tokenizer missing", family, {})
    code, err = run_in_process(argv_for(command, tmp_path))
    assert code == 0, err


def test_a_symlink_inside_the_folder_is_fine(runs, tmp_path):
    """Only links that lead out of the folder are refused."""
    prepare(tmp_path, runs["gpt"], None, "gpt", {})
    final = tmp_path / "run" / "final"
    (final / "weights.bak").write_bytes((final / WEIGHTS).read_bytes())
    (final / WEIGHTS).unlink()
    (final / WEIGHTS).symlink_to("weights.bak")
    code, err = run_in_process(argv_for("generate", tmp_path))
    assert code == 0, err


# ----------------------------------------------------------------------------- fuzzing


def test_mutated_weights_and_config_load_or_fail_with_a_user_error(runs, tmp_path):
    """Random truncations, flipped bytes and splices of ``model.safetensors``, ``config.json``
    or the tokenizer file of each family's folder, loaded through the family loader and through
    ``seqkit generate``'s standalone one: success (or, standalone, "use the full loader") or a
    one-line UserError, nothing else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from seqkit.errors import UserError
    from seqkit.parts.model_folder import load_folder as load_pretrained
    from seqkit.parts.model_folder import open_standalone

    originals = {}
    for family, run in runs.items():
        shutil.copytree(run / "final", tmp_path / family)
        for name in (WEIGHTS, "config.json", TOKENIZER[family]):
            originals[family, name] = (run / "final" / name).read_bytes()

    @settings(
        max_examples=int(os.environ.get("SEQKIT_FUZZ_EXAMPLES", "60")),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        target=st.sampled_from(sorted(originals)),
        how=st.sampled_from(["truncate", "flip", "splice"]),
        position=st.integers(min_value=0, max_value=10**6),
        value=st.binary(min_size=1, max_size=16),
    )
    def load_mutated(target, how, position, value):
        family, _ = target
        data = originals[target]
        at = position % len(data)
        if how == "truncate":
            mutated = data[:at]
        elif how == "flip":
            mutated = data[:at] + bytes([data[at] ^ value[0]]) + data[at + 1 :]
        else:
            mutated = data[:at] + value + data[at:]
        for (owner, name), original in originals.items():
            if owner == family:
                (tmp_path / family / name).write_bytes(mutated if name == target[1] else original)
        loaded = {}
        for load in (load_pretrained, open_standalone):
            try:
                loaded[load] = load(tmp_path / family)
            except UserError as error:
                assert "\n" not in str(error)
                loaded[load] = None
        if loaded[open_standalone] is not None:  # it reads only what the full loader accepts
            assert loaded[load_pretrained] is not None

    load_mutated()


# ----------------------------------------------------------------------------- measuring


def measure() -> None:
    """Run the whole matrix in this process against the seqkit it imports; print each case
    that did not end in one UserError line, and the counts. A case still running after 20 s
    is stopped and counted as a hang (a model of a billion layers being built)."""
    import signal
    import tempfile
    import traceback

    def stop(signum, frame):
        raise TimeoutError("still running after 20 s")

    signal.signal(signal.SIGALRM, stop)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        runs = train_runs(root)
        pristine = {name: run / "final" for name, run in runs.items()}
        cases = all_cases()
        counts = {"traceback": 0, "hang": 0, "not refused": 0}
        for number, case in enumerate(cases):
            command, corruption, family = case
            case_dir = root / f"case-{number}"
            prepare(case_dir, runs[family], corruption, family, pristine)
            signal.alarm(20)
            try:
                code, err = run_in_process(argv_for(command, case_dir))
            except TimeoutError:
                counts["hang"] += 1
                print(f"HANG {case_id(case)}", flush=True)
                continue
            except BaseException as error:  # what a user would see as a traceback
                counts["traceback"] += 1
                last = traceback.format_exception_only(error)[-1].strip()[:150]
                print(f"TRACEBACK {case_id(case)}: {last}", flush=True)
                continue
            finally:
                signal.alarm(0)
            if code != 2 or len(err.strip().splitlines()) != 1:
                counts["not refused"] += 1
                print(f"NOT REFUSED {case_id(case)}: exit {code} {err.strip()[:150]}", flush=True)
        print(f"{len(cases)} cases: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


if __name__ == "__main__":
    measure()
