"""Every recipe family under ``accelerate launch --multi_gpu --num_processes 2`` on CPU (gloo):
the same training as one process, only the main process writes, and a two-process run resumes.

One launch trains a tiny version of one recipe per family, each to ``SPLIT`` steps and then
``--resume`` to ``STEPS`` (see ``scale_out_worker.py``); one plain process trains the same
recipes uninterrupted at the same *global* batch (twice the per-process batch). Per family:

- **exact** families shard the data: with the same global batch and the same data order both
  runs compute the same mean gradient, summed in a different order (an all-reduce of two
  halves), so every logged loss (train and eval) agrees to float32 rounding: relative
  ``EXACT``. Randomness that is drawn per process is switched off for the comparison (dropout,
  image augmentation, scheduled sampling, the denoiser's input noise) or drawn per example
  (BERT's masks: ``data.masking=static``): each process draws its own for its half of the
  batch, which cannot be what one process draws for the whole.
- **batchnorm** families (DCGAN, ResNet) normalise with per-process batch statistics (2
  examples per process here, 4 in one process), as DDP does without SyncBatchNorm; the first
  step's loss is already different, and the runs drift apart slowly: we allow relative
  ``BATCHNORM`` on every logged loss, a bound measured with margin, not a promise of equality.
- **replicated** families draw their own batches and do not shard them: every process steps
  the same environment with the same seed (DQN, Q-learning) or sees the whole graph (GCN).
  Two processes compute identical gradients, so the run is *the one-process run at the same
  per-process batch*, bit for bit: scale-out adds no throughput to these, and the test pins
  that down.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqkit.cli import main
from seqkit.recipes import RECIPES_DIR

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

WORKER = Path(__file__).with_name("scale_out_worker.py")
ROOT = Path(__file__).resolve().parents[1]
EXACT = 1e-5
BATCHNORM = 0.1
STEPS, SPLIT = 6, 3
TIMEOUT_S = 1500

STEP_SETTINGS = [
    "trainer.log_every=1", f"trainer.eval_every={SPLIT}", f"trainer.save_every={SPLIT}",
    "trainer.eval_batches=2", "trainer.progress_bar=false", "trainer.warmup_steps=1",
    "trainer.keep_last=2", f"trainer.decay_steps={STEPS}",
]  # fmt: skip
"""``decay_steps``: the first half of the two-process run trains with ``max_steps`` = SPLIT, and a
cosine or linear schedule that ends at ``max_steps`` would decay faster there; pinned to
STEPS, the schedule is the same in both runs and the resumed half continues it mid-way."""
NO_AUGMENTATION = ["data.rotation_degrees=0", "data.crop_padding=0", "data.flip_probability=0"]

# family -> (recipe, kind, overrides that make it tiny and deterministic per process)
FAMILIES: dict[str, tuple[str, str, list[str]]] = {
    "gpt": ("gpt/quickstart-pydoc-char.yaml", "exact", [
        "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "model.dropout=0"]),
    "lstm": ("rnn/quickstart-pydoc-lstm.yaml", "exact", [
        "model.embedding_size=8", "model.hidden_size=16", "model.num_layers=1",
        "model.block_size=16"]),
    "seq2seq": ("seq2seq/generated-attention.yaml", "exact", [
        "model.embedding_dim=8", "model.hidden_size=16", "model.dropout=0",
        "model.teacher_forcing_ratio=1.0", "data.generated_pairs=200"]),
    "transformer": ("transformer/generated-toy.yaml", "exact", [
        "model.d_model=16", "model.n_head=2", "model.num_encoder_layers=1",
        "model.num_decoder_layers=1", "model.d_ff=32", "model.dropout=0",
        "model.attention_dropout=0", "data.generated_pairs=200"]),
    "bert": ("bert/pydoc-prose-or-code-classifier.yaml", "exact", [
        "model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2",
        "model.intermediate_size=32", "model.dropout=0", "data.max_length=32"]),
    "bert-mlm": ("bert/pydoc-mlm.yaml", "exact", [
        "model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2",
        "model.intermediate_size=32", "model.dropout=0", "data.max_length=16",
        "tokenizer.vocab_size=300", "data.masking=static"]),
    "denoising": ("vision/digits-denoising-autoencoder.yaml", "exact", [
        "model.channels=[4,8]", "model.noise_std=0"]),
    "bow": ("bow/python-docstrings-topics.yaml", "exact", [
        "model.classifier=mlp", "model.hidden_size=8", "model.dropout=0"]),
    "vision": ("vision/digits-cnn.yaml", "exact", [
        "model.conv_channels=[4,8]", "model.hidden_size=16", "model.dropout=0",
        *NO_AUGMENTATION]),
    "music": ("music/bach-chorales-gpt.yaml", "exact", [
        "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "model.dropout=0", "data.path={music}", "data.stride=8"]),
    "tabular": ("tabular/bike-sharing-mlp.yaml", "exact", [
        "model.hidden_sizes=[8]", "data.path={csv}", "data.test_days=7", "data.val_days=7"]),
    "gan": ("gan/digits-dcgan.yaml", "batchnorm", [
        "model.latent_dim=8", "model.generator_features=4", "model.discriminator_features=4",
        "model.sample_every=0", "model.num_samples=4", *NO_AUGMENTATION]),
    "resnet": ("vision/digits-resnet.yaml", "batchnorm", [
        "model.widths=[4,8]", "model.blocks_per_stage=1", *NO_AUGMENTATION]),
    "gcn": ("gcn/karate-club.yaml", "replicated", []),
    "dqn": ("rl/cartpole-dqn.yaml", "replicated", [
        "model.hidden_sizes=[16]", "model.learning_starts=20", "model.target_update_every=3",
        "model.exploration_steps=50", "model.eval_episodes=1"]),
    "q-learning": ("rl/frozenlake-q-learning.yaml", "replicated", ["model.eval_episodes=1"]),
}  # fmt: skip


def batch_sizes(name: str) -> tuple[int, int]:
    """(per-process batch of the two-process run, batch of the one-process run)."""
    per_process = {"gcn": 1, "dqn": 8, "q-learning": 1}.get(name, 2)
    kind = FAMILIES[name][1]
    return per_process, per_process if kind == "replicated" else 2 * per_process


def spec(folder: Path, processes: int, places: dict[str, str]) -> Path:
    entries: list[dict] = []
    if processes == 2:  # a one-process run resumed by two processes
        argv = ["train", places["one_process_run"] + "/recipe.yaml", "--resume",
                "--output-dir", places["one_process_run"], "--set=trainer.max_steps=3"]  # fmt: skip
        entries.append({"name": "other-process-count", "argv": argv})
    for name, (recipe, _, overrides) in FAMILIES.items():
        batch = batch_sizes(name)[0 if processes == 2 else 1]
        settings = [o.format(**places) for o in overrides] + STEP_SETTINGS
        settings += [f"trainer.batch_size={batch}", f"trainer.eval_batch_size={batch}"]
        entries.append({
            "name": name, "recipe": str(RECIPES_DIR / recipe), "overrides": settings,
            "output_dir": str(folder / "runs" / name), "max_steps": STEPS,
            "split_at": SPLIT if processes == 2 else None,
        })  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.json"
    path.write_text(json.dumps(entries, indent=1))
    return path


def start(spec_path: Path, processes: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    launcher = [sys.executable]
    if processes > 1:
        launcher = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no",
        ]  # fmt: skip
    log = open(spec_path.parent / "log.txt", "w")  # noqa: SIM115 (closed by the fixture)
    return subprocess.Popen([*launcher, str(WORKER), str(spec_path)], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=ROOT)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Both trainings, run once for every family (side by side: they share the CPUs)."""
    base = tmp_path_factory.mktemp("scale-out")
    from seqkit.tabular.data import write_synthetic_csv

    sys.path.insert(0, str(ROOT / "tests" / "music"))
    try:
        from midi_factory import write_corpus
    finally:
        sys.path.pop(0)
    places = {"music": str(write_corpus(base / "midi")),
              "csv": str(write_synthetic_csv(base / "hour.csv", days=60))}  # fmt: skip
    places["one_process_run"] = str(base / "one-process-run")
    tiny = [f"--set={o}" for o in [*FAMILIES["gpt"][2], "trainer.max_steps=2",
                                   "trainer.batch_size=2", "trainer.report_to=[]"]]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(RECIPES_DIR / FAMILIES["gpt"][0]), *tiny, "--output-dir",
                     places["one_process_run"]]) == 0  # fmt: skip
    jobs = {n: start(spec(base / f"p{n}", n, places), n) for n in (2, 1)}
    try:
        for job in jobs.values():
            job.wait(timeout=TIMEOUT_S)
    finally:
        for job in jobs.values():
            if job.poll() is None:
                job.kill()
                job.wait()
            job.stdout and job.stdout.close()
    for n, job in jobs.items():
        log = (base / f"p{n}" / "log.txt").read_text()
        assert job.returncode == 0, f"{n} process(es):\n{log[-5000:]}"
    return {"one": base / "p1", "two": base / "p2"}


def losses(run: Path) -> dict[tuple[int, str], float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {(row["step"], k): v for row in rows for k, v in row.items() if k.endswith("loss")}


def files(run: Path) -> set[str]:
    """The files of a run, less the ones a split run legitimately has more of: one TensorBoard
    event file per training command (named by time and pid), and a GAN's end-of-training
    sample grid at the split."""
    found = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}
    return {f for f in found if not f.startswith(("tensorboard/", "samples/"))}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_two_processes_train_like_one_and_resume(runs, name):
    kind = FAMILIES[name][1]
    for folder, ranks in ((runs["one"], [0]), (runs["two"], [0, 1])):
        for rank in ranks:
            codes = json.loads((folder / f"codes.rank-{rank}.json").read_text())[name]
            assert all(code == 0 for code in codes), (folder.name, rank, codes)
    one = losses(runs["one"] / "runs" / name)
    two = losses(runs["two"] / "runs" / name)
    assert one.keys() == two.keys() and len(one) >= STEPS, sorted(set(one) ^ set(two))
    tolerance = {"exact": EXACT, "batchnorm": BATCHNORM, "replicated": 0.0}[kind]
    for key in sorted(one):
        assert two[key] == pytest.approx(one[key], rel=tolerance, abs=0), key
    # The resumed run wrote each step's row once, like the uninterrupted one.
    rows = {k: (runs[k] / "runs" / name / "metrics.jsonl").read_text().count("\n") for k in runs}
    assert rows["two"] == rows["one"]
    assert max(step for step, _ in two) == STEPS


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_only_the_main_process_writes_and_prints(runs, name):
    one, two = runs["one"] / "runs" / name, runs["two"] / "runs" / name
    # The same files as one process, plus process 1's own RNG state in each checkpoint.
    own = {f for f in files(two) if Path(f).name.startswith("rng-1.")}
    assert own and all(f.startswith("checkpoints/step-") for f in own), sorted(own)
    assert files(two) - own == files(one)
    assert (two / "final" / "config.json").is_file()
    assert list((two / "tensorboard").iterdir())
    # Process 1 printed nothing and touched nothing but its RNG files (and the staging folder
    # that save_tree makes sure exists; the main process created it).
    assert (runs["two"] / f"{name}.rank-1.stdout").read_text() == ""
    assert (runs["two"] / f"{name}.rank-0.stdout").read_text() != ""
    writes = json.loads((runs["two"] / "writes.rank-1.json").read_text())
    mine = [(event, path) for event, path in writes if f"{os.sep}{name}{os.sep}" in path + os.sep]
    for event, path in mine:
        assert Path(path).name.startswith("rng-1.") or (
            event == "os.mkdir" and Path(path).name.endswith(".tmp")
        ), (event, path)


def test_resuming_with_another_number_of_processes_is_refused(runs):
    for rank in (0, 1):
        codes = json.loads((runs["two"] / f"codes.rank-{rank}.json").read_text())
        assert codes["other-process-count"] == [2]
    message = (
        f"seqkit: error: checkpoint {runs['one'].parent}/one-process-run/checkpoints/step-2 was "
        "written by 1 process(es); resume it with the same number (now 2)"
    )
    for rank in (0, 1):
        # The main process printed the data summary before the checkpoint was read.
        lines = (runs["two"] / f"other-process-count.rank-{rank}.stderr").read_text().splitlines()
        assert lines[-1] == message and "Traceback" not in "".join(lines), lines
    assert len(lines) == 1  # process 1: the error line alone


NOT_COVERED: dict[str, str] = {}
"""Registered tasks without a run here, and why: each is a known gap, not a pass."""


def test_every_task_is_covered():
    """One recipe of every registered task (a new one must be added here, or to NOT_COVERED
    with the reason)."""
    import yaml

    from seqkit.parts.registry import TASKS

    tasks = {
        yaml.safe_load((RECIPES_DIR / recipe).read_text())["task"]
        for recipe, _, _ in FAMILIES.values()
    }
    assert set(TASKS.names()) - set(NOT_COVERED) <= tasks
    assert not set(NOT_COVERED) & tasks, "covered now: remove it from NOT_COVERED"
