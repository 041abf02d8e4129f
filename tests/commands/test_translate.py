"""``seqkit translate`` and ``seqkit evaluate`` on a translation run: one tiny trained run (a
subprocess smoke test of the generated-language recipe), then the commands in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqkit.cli import main

TINY = [
    "--set", "model.embedding_dim=8",
    "--set", "model.hidden_size=8",
    "--set", "data.generated_pairs=80",
    "--set", "data.val_fraction=0.1",
    "--set", "trainer.max_steps=3",
    "--set", "trainer.batch_size=8",
    "--set", "trainer.eval_every=3",
    "--set", "trainer.save_every=3",
    "--set", "trainer.progress_bar=false",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "generated"
    result = subprocess.run(
        [sys.executable, "-m", "seqkit", "train", "seq2seq/generated-attention", *TINY,
         "--output-dir", str(run_dir)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reference:" in result.stdout  # the sample translations printed after training
    assert (run_dir / "final" / "translation_vocab.json").is_file()
    assert (run_dir / "final" / "README.md").is_file()
    return run_dir


def seqkit(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_user_error(result, *fragments: str) -> None:
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqkit: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_translate_text_and_plot_attention(run, tmp_path, capsys):
    plot = tmp_path / "attention.png"
    code, out, err = seqkit(
        capsys, "translate", str(run), "--text", "la kato granda la fiso vidas .",
        "--beam-size", "2", "--plot-attention", str(plot),
    )  # fmt: skip
    assert code == 0, err
    assert len(out.splitlines()) == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing of the user's is overwritten without --overwrite
    assert_user_error(
        seqkit(capsys, "translate", str(run), "--text", "la kato", "--plot-attention", str(plot)),
        "already exists",
    )
    code, _, err = seqkit(
        capsys, "translate", str(run), "--text", "la kato zzz", "--plot-attention", str(plot),
        "--overwrite",
    )  # fmt: skip
    assert code == 0 and "overwriting" in err and "1 source word(s)" in err


def test_translate_file_in_batches(run, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("la kato vidas .\n\nla hundo amas .\nla viro portas .\n", encoding="utf-8")
    code, out, _ = seqkit(
        capsys, "translate", str(run), "--input", str(source), "--batch-size", "2"
    )
    assert code == 0
    lines = out.split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == ""  # line N translates line N; empty stays empty
    target = tmp_path / "out.txt"
    code, _, err = seqkit(
        capsys, "translate", str(run), "--input", str(source), "--output", str(target)
    )
    assert code == 0 and "translated 3 line(s)" in err
    assert target.read_text(encoding="utf-8").split("\n")[:-1] == lines  # same batches or not
    assert_user_error(
        seqkit(capsys, "translate", str(run), "--input", str(source), "--output", str(target)),
        "already exists",
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--text", "la kato", "--beam-size", "0"], "--beam-size must be at least 1"),
        (["--text", "   "], "--text is empty"),
        ([], "exactly one of --text"),
        (["--input", "/nonexistent.txt"], "does not exist"),
    ],
)
def test_translate_bad_input(run, capsys, args, fragment):
    assert_user_error(seqkit(capsys, "translate", str(run), *args), fragment)


def test_translate_says_when_a_sentence_is_truncated(run, capsys):
    long_sentence = " ".join(["la kato"] * 40)  # 80 words; the recipe's maximum is 64
    code, out, err = seqkit(capsys, "translate", str(run), "--text", long_sentence)
    assert code == 0 and len(out.splitlines()) == 1
    assert "1 sentence(s) were longer than the model's maximum of 64 source tokens" in err
    code, _, err = seqkit(capsys, "translate", str(run), "--text", "la kato vidas .")
    assert code == 0 and "truncated" not in err


def test_translate_needs_a_translation_model(tmp_path, capsys):
    assert_user_error(seqkit(capsys, "translate", str(tmp_path), "--text", "x"), "neither a run")


def test_evaluate_prints_bleu_chrf_and_signature(run, capsys):
    code, out, err = seqkit(capsys, "evaluate", str(run), "--beam-size", "2")
    assert code == 0, err
    assert "BLEU = " in out and "chrF2 = " in out
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in out
    assert "eval/bleu: " in out and "eval/chrf: " in out and "eval/loss: " in out
    assert "8 sentences, beam size 2" in err


def test_evaluate_files_count_empty_sources_unknown_words_and_truncation(run, tmp_path, capsys):
    source, reference = tmp_path / "src.txt", tmp_path / "ref.txt"
    long_sentence = " ".join(["la kato"] * 40)
    source.write_text(f"la kato vidas .\n\nla zzz amas .\n{long_sentence}\n", encoding="utf-8")
    reference.write_text("the cat sees .\nthe dog .\n\nthe cat\n", encoding="utf-8")
    code, out, err = seqkit(
        capsys, "evaluate", str(run), "--source", str(source), "--reference", str(reference),
        "--beam-size", "1",
    )  # fmt: skip
    assert code == 0, err
    assert "3 sentences, beam size 1" in err
    assert "1 pair(s) with an empty source line were skipped" in err
    assert "1 reference line(s) are empty" in err
    assert "(mapped to <unk>): 1; sentences truncated to 64 tokens: 1" in err
    assert "eval/skipped_empty_sources: 1" in out and "eval/truncated_sentences: 1" in out
    reference.write_text("the cat sees .\n", encoding="utf-8")
    assert_user_error(
        seqkit(capsys, "evaluate", str(run), "--source", str(source), "--reference",
               str(reference)),
        "has 4 lines but", "has 1",
    )  # fmt: skip
    source.write_text("\n \n", encoding="utf-8")
    reference.write_text("a\nb\n", encoding="utf-8")
    assert_user_error(
        seqkit(capsys, "evaluate", str(run), "--source", str(source), "--reference",
               str(reference)),
        "every source line is empty",
    )  # fmt: skip
