"""The `streaming` data module: text files read as a stream give the corpus's ids, every block's
position restarts the stream right after it, processes and DataLoader workers share out each
epoch, and a resumed run ends with the weights of an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seqkit.data import BPETokenizer, CharTokenizer
from seqkit.data.streaming import HubSource, HubTextStream, Span, TextStream, split_spans
from seqkit.errors import UserError
from seqkit.parts.compose import build_job
from seqkit.parts.resolve import load_recipe
from seqkit.recipes import RECIPES_DIR
from seqkit.trainer import Callback, Trainer
from seqkit.trainer.checkpoint import load_tree

TEXTS = [
    "alpha beta\ngamma  delta é😀\n" * 40,
    "one two three\nfour\n\n five=six 'tis\n" * 25,
    "x y\n" * 3,
]


def write_corpus(folder, texts=TEXTS):
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, text in enumerate(texts):
        path = folder / f"{i}.txt"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files


def stream_of(files, tokenizer, block_size=7, chunk_bytes=13, **options):
    spans = [Span(p, 0, p.stat().st_size) for p in files]
    newline = tokenizer.encode_array("\n")
    return TextStream(
        spans, tokenizer, block_size, separator=newline, chunk_bytes=chunk_bytes, **options
    )


def rows(examples):
    return [torch.cat([e["input_ids"][:1], e["labels"]]).tolist() for e, _ in examples]


def flat(examples):
    return [i for row in rows(examples) for i in row]


def test_the_stream_is_the_corpus_and_resumes_after_any_block(tmp_path):
    files = write_corpus(tmp_path)
    tokenizer = CharTokenizer.train("".join(TEXTS))
    stream = stream_of(files, tokenizer, seed=3)
    for epoch in (0, 1):
        order = stream.order(epoch)
        ids = [i for o in order for i in [*tokenizer.encode(TEXTS[o]), *tokenizer.encode("\n")]]
        examples = list(stream.examples(epoch, None))
        assert len(examples) == len(ids) // 8
        assert flat(examples) == ids[: 8 * len(examples)]
        for k in range(epoch, len(examples), 5):
            assert rows(stream.examples(epoch, examples[k][1])) == rows(examples[k + 1 :]), k
    assert len({tuple(stream.order(e)) for e in range(6)}) > 1  # new file orders


def test_bpe_positions_hold_across_segments_cut_elsewhere(tmp_path):
    files = write_corpus(tmp_path)
    tokenizer = BPETokenizer.train("".join(TEXTS), 280)
    # Reading resumes at a segment's start, so its chunks, and the cuts after it, fall elsewhere.
    stream = stream_of(files, tokenizer, block_size=5, chunk_bytes=11, shuffle_files=False)
    ids = [i for t in TEXTS for i in [*tokenizer.encode(t), *tokenizer.encode("\n")]]
    examples = list(stream.examples(0, None))
    assert flat(examples) == ids[: 6 * len(examples)]
    for k in range(0, len(examples), 7):
        assert rows(stream.examples(0, examples[k][1])) == rows(examples[k + 1 :]), k


def test_processes_and_workers_share_out_each_epoch(tmp_path):
    files = write_corpus(tmp_path)
    tokenizer = CharTokenizer.train("".join(TEXTS))
    everything = rows(stream_of(files, tokenizer).examples(0, None))
    shares = []
    for process in (0, 1):
        stream = stream_of(files, tokenizer)
        stream.start(0, None, batch_size=3, num_processes=2, process_index=process)
        batches = list(stream)
        shares.append([row for batch, _ in batches for row in _batch_rows(batch)])
        assert all(len(_batch_rows(batch)) == 3 for batch, _ in batches)
    complete = len(everything) // 6 * 6  # the incomplete global batch is dropped
    assert len(shares[0]) == len(shares[1]) == complete // 2
    assert sorted(shares[0] + shares[1]) == sorted(everything[:complete])  # none twice
    # Two DataLoader workers deal out the same batches, with the same positions, in order.
    stream.start(1, None, batch_size=3, num_processes=2, process_index=1)
    alone = list(DataLoader(stream, batch_size=None, num_workers=0))
    dealt = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert len(alone) == len(dealt) > 2
    for (a, pa), (b, pb) in zip(alone, dealt, strict=True):
        assert torch.equal(a["input_ids"], b["input_ids"]) and pa == pb


def _batch_rows(batch):
    pairs = zip(batch["input_ids"], batch["labels"], strict=True)
    return [torch.cat([i[:1], t]).tolist() for i, t in pairs]


def test_positions_of_other_data_or_edited_ones_are_refused(tmp_path):
    files = write_corpus(tmp_path)
    tokenizer = CharTokenizer.train("".join(TEXTS))
    _, position = next(iter(stream_of(files, tokenizer).examples(0, None)))
    stream_of(files, tokenizer).check_position(position)
    stream_of(files, tokenizer).check_position(None)
    with pytest.raises(UserError, match="position belongs to other data"):
        stream_of(files, tokenizer, block_size=8).check_position(position)
    with pytest.raises(UserError, match="position belongs to other data"):
        stream_of(files[:2], tokenizer).check_position(position)
    with pytest.raises(UserError, match="stream position is damaged or was edited"):
        stream_of(files, tokenizer).check_position({**position, "skip": -1})


def test_validation_is_held_out_from_a_line_start(tmp_path):
    files = write_corpus(tmp_path, ["ab\ncd\n" * 10, "ef\ngh\n" * 10])
    spans = [Span(p, 0, p.stat().st_size) for p in files]
    train, held = split_spans(spans, 0.25, 1 << 20)  # 30 of 120 bytes: from byte 90
    assert train == [spans[0], Span(files[1], 0, 30)]
    assert held == [Span(files[1], 30, 60)]
    train, held = split_spans(spans, 0.25, 7)  # at most 7 bytes: from byte 113, its line at 114
    assert train == [spans[0], Span(files[1], 0, 54)] and held == [Span(files[1], 54, 60)]
    with pytest.raises(UserError, match="holds out no whole line"):
        split_spans([Span(files[0], 0, 2)], 0.3, 100)


TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "trainer.batch_size=4", "trainer.progress_bar=false", "trainer.report_to=[]",
        "model.dropout=0.1", "trainer.eval_batches=2", "sample.prompt=alpha"]  # fmt: skip


def streaming_job(tmp_path, run, *overrides):
    corpus = tmp_path / "corpus"
    if not corpus.exists():
        write_corpus(corpus)
    recipe = load_recipe(
        RECIPES_DIR / "gpt" / "shakespeare-char-streaming.yaml",
        [*TINY, f"data.path={corpus}", f"data.cache_dir={tmp_path / 'cache'}",
         "data.chunk_bytes=64", *overrides],
    )  # fmt: skip
    return recipe, build_job(recipe, tmp_path / run)


class Stop(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, control, logs):
        if trainer.step == self.step:
            raise KeyboardInterrupt


def test_resume_mid_stream_ends_with_the_uninterrupted_weights(tmp_path):
    settings = ["trainer.max_steps=12", "trainer.save_every=3", "trainer.eval_every=5",
                "trainer.batch_size=16"]  # fmt: skip

    def trainer(run, callbacks=()):
        recipe, job = streaming_job(tmp_path, run, *settings)
        return Trainer(job.task, recipe.trainer, output_dir=tmp_path / run,
                       train_data=job.train_data, eval_data=job.eval_data,
                       callbacks=[*job.callbacks, *callbacks])  # fmt: skip

    whole = trainer("whole")
    whole.train()
    assert whole._epoch >= 1  # the run crossed an epoch (a new file order)
    broken = trainer("broken", [Stop(11)])
    with pytest.raises(KeyboardInterrupt):
        broken.train()
    state = load_tree(tmp_path / "broken" / "checkpoints" / "step-9", "trainer_state")
    assert state["epoch"] == 1 and state["stream_position"]["skip"] > 0  # mid-stream
    resumed = trainer("broken")
    resumed.train(resume=True)
    expected, got = whole.unwrapped_model().state_dict(), resumed.unwrapped_model().state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_module_options_and_refusals(tmp_path):
    (tmp_path / "held").mkdir()
    (tmp_path / "held" / "v.txt").write_text(TEXTS[1], encoding="utf-8")
    _, job = streaming_job(tmp_path, "a", f"data.eval_path={tmp_path / 'held'}")
    assert job.summary["streamed bytes"] == sum(len(t.encode()) for t in TEXTS)
    assert len(job.eval_data) == len(TEXTS[1]) // 16
    _, job = streaming_job(tmp_path, "b", "data.val_fraction=0.2")
    assert job.summary["streamed bytes"] < 0.81 * sum(len(t.encode()) for t in TEXTS)
    with pytest.raises(UserError, match=r"data\.stride does not apply"):
        streaming_job(tmp_path, "c", "data.stride=4")
    with pytest.raises(UserError, match=r"data\.module streaming reads local text files or a Hub"):
        streaming_job(tmp_path, "d", "data.path=null")
    with pytest.raises(UserError, match="fewer examples than one batch"):
        recipe, job = streaming_job(tmp_path, "e", "trainer.batch_size=128", "trainer.max_steps=1")
        Trainer(job.task, recipe.trainer, output_dir=tmp_path / "e",
                train_data=job.train_data).train()  # fmt: skip


def test_ids_match_separate_encoding_of_each_segment_cut(tmp_path):
    # A corpus with a multi-byte character across every chunk edge keeps its byte offsets.
    files = write_corpus(tmp_path, ["é😀 ab\n" * 30])
    tokenizer = CharTokenizer.train("é😀 ab\n")
    stream = stream_of(files, tokenizer, block_size=3, chunk_bytes=5, shuffle_files=False)
    examples = list(stream.examples(0, None))
    assert np.array_equal(
        np.array(flat(examples)),
        np.array(tokenizer.encode("é😀 ab\n" * 30 + "\n")[: 4 * len(examples)]),
    )
    for k in range(0, len(examples), 3):
        assert rows(stream.examples(0, examples[k][1])) == rows(examples[k + 1 :])


def hub_folder(tmp_path):
    """A local data set laid out like a Hub repository: train and validation text files."""
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "train.txt").write_text("".join(TEXTS), encoding="utf-8")
    (folder / "validation.txt").write_text(TEXTS[1], encoding="utf-8")
    return folder


def test_a_hub_data_set_streams_row_by_row_and_resumes_after_any_block(tmp_path):
    source = HubSource(str(hub_folder(tmp_path)), "train")
    tokenizer = CharTokenizer.train("".join(TEXTS))
    newline = tokenizer.encode_array("\n")
    stream = HubTextStream(source, tokenizer, 7, separator=newline)
    lines = "".join(TEXTS).splitlines()  # the text builder: one row per line
    ids = [i for line in lines for i in [*tokenizer.encode(line), *tokenizer.encode("\n")]]
    examples = list(stream.examples(0, None))
    assert flat(examples) == ids[: 8 * len(examples)] and len(examples) == len(ids) // 8
    for k in range(0, len(examples), 9):
        assert rows(stream.examples(0, examples[k][1])) == rows(examples[k + 1 :]), k
    stream.check_position(examples[3][1])
    with pytest.raises(UserError, match="position belongs to other data"):
        HubTextStream(source, tokenizer, 8, separator=newline).check_position(examples[3][1])
    with pytest.raises(UserError, match="no column 'body'"):
        next(HubTextStream(HubSource(source.name, "train", "body"), tokenizer, 7).examples(0, None))


def test_the_module_streams_a_hub_data_set_validated_on_its_own_split(tmp_path):
    folder = hub_folder(tmp_path)
    hub = ["data.path=null", f"data.hub={folder}"]
    _, job = streaming_job(tmp_path, "a", *hub, "data.hub_eval_split=validation")
    assert isinstance(job.train_data, HubTextStream)
    assert len(job.eval_data) == len(TEXTS[1]) // 16  # the split's lines joined by newlines
    with pytest.raises(UserError, match="cannot hold out the end of a streamed Hub data set"):
        streaming_job(tmp_path, "b", *hub)
    with pytest.raises(UserError, match="no such split 'test'"):
        streaming_job(tmp_path, "c", *hub, "data.hub_eval_split=test")
