"""Parallel corpora: word vocabularies, the generated language pair, examples and batches."""

from __future__ import annotations

import json

import pytest
import torch

from seqkit.data.seq2seq import (
    _ADJECTIVES,
    _NOUNS,
    _VERBS,
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    SubwordVocab,
    TranslationDataset,
    TranslationTokenizer,
    WordVocab,
    build_vocab,
    collate_translation,
    encode_sources,
    example_lengths,
    generated_pairs,
    join_words,
    read_parallel_folder,
    split_words,
)
from seqkit.errors import UserError
from seqkit.trainer.sampling import ShardedBatchSampler


def test_words_split_and_join():
    words = split_words("Two young, White males (outside) aren't near bushes.")
    assert words == [
        "Two", "young", ",", "White", "males", "(", "outside", ")", "aren't", "near", "bushes", ".",
    ]  # fmt: skip
    assert join_words(words) == "Two young, White males (outside) aren't near bushes."
    assert split_words("Ein HUND", lowercase=True) == ["ein", "hund"]


def test_vocab_min_freq_unknown_words_and_decode():
    vocab = WordVocab.build(["a dog runs .", "a cat runs .", "a bird"], min_freq=2)
    assert vocab.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert vocab.itos[4:] == ["a", ".", "runs"]  # by count, then alphabetically
    ids, unknown = vocab.encode("a dog runs .")
    assert unknown == 1 and ids[1] == UNK_ID
    assert vocab.decode([BOS_ID, *ids, EOS_ID, 7, 7]) == "a <unk> runs."


def test_generated_pairs_are_deterministic_and_reordered():
    pairs = generated_pairs(200, seed=3)
    assert pairs == generated_pairs(200, seed=3)
    assert pairs != generated_pairs(200, seed=4)
    lexicon = {**_NOUNS, **_ADJECTIVES, **_VERBS, "la": "the", "kaj": "and", ".": "."}
    for source, target in pairs:
        s, t = source.split(), target.split()
        # every source word has exactly one English word: same words, another order
        assert sorted(lexicon[w] for w in s) == sorted(t)
        clause = s[: s.index("kaj")] if "kaj" in s else s[:-1]
        verb = lexicon[clause[-1]]
        assert clause[-1] in _VERBS  # verb-final source clause ...
        assert t.index(verb) <= len(clause) - 3  # ... verb before the object in English
    assert sum(s.split() != t.split() for s, t in pairs) == len(pairs)


def test_collate_pads_and_shifts_the_decoder_input():
    vocab = WordVocab.build(["a b c d e"], min_freq=1)
    tokenizer = TranslationTokenizer(vocab, vocab)
    data = TranslationDataset([("a b c", "d e"), ("a", "b c d")], tokenizer, 8, 8)
    batch = collate_translation([data[0], data[1]])
    assert batch["input_ids"].shape == (2, 3)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["input_ids"][1, 1:].tolist() == [PAD_ID, PAD_ID]
    dec, labels = batch["decoder_input_ids"], batch["labels"]
    assert dec[:, 0].tolist() == [BOS_ID, BOS_ID]
    # labels are the decoder input moved one place left, with eos at the end
    valid = (labels[:, :-1] != -100) & (labels[:, :-1] != EOS_ID)
    assert torch.equal(dec[:, 1:][valid], labels[:, :-1][valid])
    assert labels[0].tolist() == [*data[0]["target"], EOS_ID, -100]
    assert labels[1].tolist() == [*data[1]["target"], EOS_ID]


def test_dataset_truncates_skips_empty_and_counts():
    vocab = WordVocab.build(["a b c d e"], min_freq=1)
    tokenizer = TranslationTokenizer(vocab, vocab)
    data = TranslationDataset(
        [("a b c d e", "a b c d e"), ("", "a"), ("a z", "b")], tokenizer, 3, 3
    )
    assert len(data) == 2 and data.skipped == 1 and data.truncated == 1 and data.unknown == 1
    assert len(data[0]["source"]) == 3 and len(data[0]["target"]) == 2  # room left for eos
    ids, _, counts = encode_sources(tokenizer, ["a b c d", "a q"], max_length=3)
    assert ids.shape == (2, 3) and counts == {"unknown": 1, "truncated": 1}
    with pytest.raises(UserError, match="empty"):
        encode_sources(tokenizer, ["a", "  "], max_length=3)


def test_tokenizer_round_trip_and_bad_file(tmp_path):
    tokenizer = TranslationTokenizer(
        WordVocab.build(["ein Hund"], 1), WordVocab.build(["a dog"], 1, lowercase=True), "de", "en"
    )
    tokenizer.save_pretrained(tmp_path)
    loaded = TranslationTokenizer.from_pretrained(tmp_path)
    assert loaded.source.itos == tokenizer.source.itos and loaded.target.lowercase
    assert (loaded.source_lang, loaded.target_lang) == ("de", "en")
    (tmp_path / "translation_vocab.json").write_text('{"source": [1, 2]}')
    with pytest.raises(UserError, match="not a seqkit word vocabulary"):
        TranslationTokenizer.from_pretrained(tmp_path)


def test_parallel_folder(tmp_path):
    (tmp_path / "train.de").write_text("ein Hund\nzwei Katzen\n", encoding="utf-8")
    (tmp_path / "train.en").write_text("a dog\ntwo cats\n", encoding="utf-8")
    (tmp_path / "valid.de").write_text("ein Hund\n", encoding="utf-8")
    (tmp_path / "valid.en").write_text("a dog\n", encoding="utf-8")
    train, val = read_parallel_folder(tmp_path, "de", "en", tmp_path / "cache")
    assert train == [("ein Hund", "a dog"), ("zwei Katzen", "two cats")]
    assert val == [("ein Hund", "a dog")]
    (tmp_path / "train.en").write_text("a dog\n", encoding="utf-8")
    with pytest.raises(UserError, match="must align"):
        read_parallel_folder(tmp_path, "de", "en", tmp_path / "cache")
    with pytest.raises(UserError, match=r"no train\.fr"):
        read_parallel_folder(tmp_path, "fr", "en", tmp_path / "cache")


@pytest.mark.parametrize(("count", "processes"), [(1000, 1), (1000, 2), (37, 1)])
def test_length_bucketed_batches_cover_the_epoch_with_little_padding(count, processes):
    pairs = generated_pairs(count, seed=3)
    tokenizer = TranslationTokenizer(
        WordVocab.build((s for s, _ in pairs), 1), WordVocab.build((t for _, t in pairs), 1)
    )
    dataset = TranslationDataset(pairs, tokenizer, 64, 64)
    lengths = example_lengths(dataset)

    def sampler(process_index=0, **options):
        settings = dict(seed=1, num_processes=processes, lengths=lengths, pool_batches=8)
        settings.update(options)
        return ShardedBatchSampler(len(dataset), 16, process_index=process_index, **settings)

    shards = [list(sampler(r)) for r in range(processes)]
    batches = [b for step in zip(*shards, strict=True) for b in step]
    assert all(len(b) == 16 for b in batches)
    seen = [i for batch in batches for i in batch]
    assert len(seen) == len(set(seen)) == len(dataset) // (16 * processes) * 16 * processes

    def padding(batches):
        return sum(
            max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches
        )

    random_batches = list(sampler(lengths=None))
    if count >= 1000:
        assert padding(batches) < padding(random_batches) / 3
    batch = collate_translation([dataset[i] for i in batches[0]])
    assert batch["input_ids"].shape[0] == 16

    first = sampler()
    assert list(first) == shards[0]  # the same epoch, the same order
    first.set_position(0, 1)  # resume at batch 1: the rest of the same epoch, nothing replayed
    assert list(first) == shards[0][1:]
    first.set_position(1, 0)
    assert list(first) != shards[0]
    unshuffled = next(iter(sampler(shuffle=False, num_processes=1)))
    assert unshuffled == sorted(range(min(len(dataset), 128)), key=lambda i: lengths[i])[:16]


def test_length_bucketing_refuses_lengths_that_do_not_fit():
    with pytest.raises(ValueError, match="3 lengths for a dataset of 4"):
        ShardedBatchSampler(4, 2, seed=0, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match="pool_batches"):
        ShardedBatchSampler(4, 2, seed=0, lengths=[1, 2, 3, 4], pool_batches=0)


def test_subword_vocab_encodes_every_sentence_and_keeps_the_specials_first(tmp_path):
    pairs = generated_pairs(300, seed=5)
    joint = build_vocab([s for p in pairs for s in p], "bpe", vocab_size=320)
    assert isinstance(joint, SubwordVocab) and joint.vocab_size == 320
    assert [joint.bpe.token_to_id(t) for t in SPECIALS] == [PAD_ID, UNK_ID, BOS_ID, EOS_ID]
    sentence = "Zwei Männer, 42 Ölfässer — ein Emoji 😀."  # nothing like the training text
    ids, unknown = joint.encode(sentence)
    assert unknown == 0 and UNK_ID not in ids
    assert joint.decode([BOS_ID, *ids, EOS_ID, PAD_ID, *ids]) == sentence  # stops at eos
    assert len(joint.tokens([*ids, EOS_ID, *ids])) == len(ids)  # one label per token
    plain = joint.encode("Two men, 42 barrels.")[0]
    assert "".join(joint.tokens(plain)) == "Two men, 42 barrels."

    tokenizer = TranslationTokenizer(joint, joint, "eo", "en")
    tokenizer.save_pretrained(tmp_path)
    loaded = TranslationTokenizer.from_pretrained(tmp_path)
    assert loaded.source.encode(sentence) == (ids, 0)
    assert loaded.target.to_dict() == joint.to_dict()

    lower = SubwordVocab.build(["Ein Haus"], 270, lowercase=True)
    assert lower.decode(lower.encode("EIN HAUS")[0]) == "ein haus"


def test_vocab_kinds_and_broken_folders_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"data\.tokenizer must be one of word, bpe"):
        build_vocab(["a b"], "sentencepiece")
    joint = build_vocab(["ein Haus", "a house"], "bpe", vocab_size=270)
    data = joint.to_dict()
    data["tokenizer"] = {"model": "not a tokenizer"}
    (tmp_path / "translation_vocab.json").write_text(
        json.dumps({"source": data, "target": data}), "utf-8"
    )
    with pytest.raises(UserError, match="holds no valid BPE tokenizer"):
        TranslationTokenizer.from_pretrained(tmp_path)
