"""Parallel corpora for translation: loading, word vocabularies, examples and batches.

Sources of sentence pairs, in the order a recipe's ``data`` section is read:

* ``data.path``: a folder of line-aligned files ``train.SRC``/``train.TGT`` and
  ``val.SRC``/``val.TGT`` (``valid`` or ``validation`` also work), e.g. Multi30k's ``train.de``;
* ``data.hub``: a Hub data set with one column per language (``bentrevett/multi30k``);
* ``data.embedded: generated``: :func:`generated_pairs`, a toy language pair made up here, so
  tests and demos need no download.

Tokens are words or subwords (``data.tokenizer``):

* a :class:`WordVocab` splits on spaces and punctuation and keeps the words seen at least
  ``min_freq`` times in the training side, as the classic Multi30k seq2seq tutorials do (min
  frequency 2). It gives the decoder one step per word; the price is ``<unk>`` for rare words;
* a :class:`SubwordVocab` is a byte-level BPE (:mod:`seqkit.data.bpe`) of ``vocab_size``
  tokens: no word is ever unknown, and one vocabulary trained on both languages (a *joint*
  BPE, as in Vaswani et al. 2017, section 5.1) lets a Transformer share its source and target
  embeddings and copy names and numbers across.

Both have the same four special tokens at ids 0..3 and the same methods, so datasets, models
and decoding never ask which kind they hold.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from pathlib import Path

import torch
from torch.utils.data import Dataset

from seqkit.checks import (
    MAX_POSITIONS,
    MAX_VOCAB,
    check_choice,
    check_ranges,
    count,
)
from seqkit.data.bpe import BPETokenizer
from seqkit.data.pair_rows import (
    EncodedPairs,
    Pair,
    PairRows,
    read_hub_pairs,
    read_pair_records,
    read_parallel_rows,
)
from seqkit.data.tokenizer_folder import first_chars
from seqkit.errors import UserError
from seqkit.parts.base import DataModule, Prepared
from seqkit.recipes import DataSection, Recipe

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
"""Ids 0..3 in every vocabulary, in this order (the model's config relies on it)."""
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
_SPECIAL_ROLES = dict(zip(("pad", "unk", "bos", "eos"), SPECIALS, strict=True))
"""The roles of :mod:`seqkit.data.special_tokens` these four play in a BPE vocabulary."""

_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)
_NO_SPACE_BEFORE = set(".,;:!?)]}%'’")
_NO_SPACE_AFTER = set("([{")


def split_words(text: str, lowercase: bool = False) -> list[str]:
    """Words and punctuation marks: ``"Two men, outside."`` → Two, men, ``,``, outside, ``.``"""
    return _WORD.findall(text.lower() if lowercase else text)


def join_words(words: Sequence[str]) -> str:
    """Undo :func:`split_words` well enough for BLEU on detokenized text: no space before
    closing punctuation or after an opening bracket."""
    text = ""
    for word in words:
        if text and word[0] not in _NO_SPACE_BEFORE and text[-1] not in _NO_SPACE_AFTER:
            text += " "
        text += word
    return text


class WordVocab:
    """A word-level vocabulary: the four specials, then words by decreasing frequency."""

    def __init__(self, words: Sequence[str], lowercase: bool = False) -> None:
        self.itos = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi = {word: i for i, word in enumerate(self.itos)}
        self.lowercase = lowercase

    @classmethod
    def build(cls, sentences: Iterable[str], min_freq: int = 2, lowercase: bool = False):
        """Keep every word seen at least ``min_freq`` times (ties broken alphabetically, so the
        same corpus always gives the same ids)."""
        counts = Counter(w for s in sentences for w in split_words(s, lowercase))
        kept = sorted(
            (w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls(kept, lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> tuple[list[int], int]:
        """``(ids, unknown)``: the sentence's ids (no bos/eos) and how many became ``<unk>``."""
        ids = [self.stoi.get(word, UNK_ID) for word in split_words(text, self.lowercase)]
        return ids, ids.count(UNK_ID)

    def encode_documents(self, texts: list[str]):
        """``(ids, offsets, unknown)``: every text's ids end to end, where each starts, and how
        many of each became ``<unk>`` (numpy arrays; :meth:`encode` of each text)."""
        import numpy as np

        from seqkit.data.tokenization import flatten_ids

        encoded = [self.encode(text) for text in texts]
        ids, offsets = flatten_ids([ids for ids, _ in encoded])
        return ids, offsets, np.array([unknown for _, unknown in encoded], dtype=np.int64)

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """The words of ``ids`` up to the first eos, specials other than unk dropped."""
        words = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                words.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return words

    def decode(self, ids: Iterable[int]) -> str:
        return join_words(self.tokens(ids))

    def to_dict(self) -> dict:
        return {"lowercase": self.lowercase, "itos": self.itos}

    @classmethod
    def from_dict(cls, data: dict, where: str) -> WordVocab:
        itos = data.get("itos") if isinstance(data, dict) else None
        if not isinstance(itos, list) or list(itos[:4]) != list(SPECIALS):
            raise UserError(f"{where} is not a seqkit word vocabulary")
        return cls(itos[4:], bool(data.get("lowercase", False)))


class SubwordVocab:
    """A byte-level BPE vocabulary with the four translation specials at ids 0..3."""

    def __init__(self, bpe: BPETokenizer, lowercase: bool = False) -> None:
        if list(bpe.special_tokens[:4]) != list(SPECIALS):
            raise UserError(f"a translation BPE must start with the tokens {', '.join(SPECIALS)}")
        self.bpe = bpe
        self.lowercase = lowercase

    @classmethod
    def build(cls, sentences: Iterable[str], vocab_size: int, lowercase: bool = False):
        """Train the merges on ``sentences`` (one or both sides of the training pairs)."""
        texts = (s.lower() if lowercase else s for s in sentences)
        return cls(BPETokenizer.train(texts, vocab_size, _SPECIAL_ROLES), lowercase)

    @property
    def vocab_size(self) -> int:
        return self.bpe.vocab_size

    def encode(self, text: str) -> tuple[list[int], int]:
        """``(ids, 0)``: byte-level BPE has no unknown tokens."""
        return self.bpe.encode(text.lower() if self.lowercase else text), 0

    def encode_documents(self, texts: list[str]):
        """``(ids, offsets, unknown)`` of many texts at once, equal to :meth:`encode` of each
        (the Rust core encodes them in parallel); ``unknown`` is all zeros."""
        import numpy as np

        if self.lowercase:
            texts = [text.lower() for text in texts]
        ids, offsets = self.bpe.encode_documents(texts)
        return ids, offsets, np.zeros(len(texts), dtype=np.int64)

    def _content(self, ids: Iterable[int]) -> list[int]:
        """``ids`` up to the first eos, without pad and bos."""
        kept = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID) and 0 <= i < self.vocab_size:
                kept.append(int(i))
        return kept

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """The text of each token up to the first eos (labels for an attention plot). A token
        that holds part of a multi-byte character shows it as U+FFFD; control characters are
        escaped (``\\x12``), which no font lacks."""
        pieces = (self.bpe.decode([i]) for i in self._content(ids))
        return [p if p.isprintable() else p.encode("unicode_escape").decode() for p in pieces]

    def decode(self, ids: Iterable[int]) -> str:
        return self.bpe.decode(self._content(ids)).strip()

    def to_dict(self) -> dict:
        return {
            "kind": "bpe",
            "lowercase": self.lowercase,
            "tokenizer": json.loads(self.bpe.backend.to_str()),
        }

    @classmethod
    def from_dict(cls, data: dict, where: str) -> SubwordVocab:
        from tokenizers import Tokenizer

        try:
            backend = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        except Exception:  # tokenizers raises a bare Exception for a malformed tokenizer
            raise UserError(f"{where} holds no valid BPE tokenizer") from None
        return cls(BPETokenizer(backend, _SPECIAL_ROLES), bool(data.get("lowercase", False)))


Vocab = WordVocab | SubwordVocab
VOCAB_KINDS = ("word", "bpe")


def build_vocab(
    sentences: Iterable[str],
    kind: str,
    *,
    min_freq: int = 2,
    vocab_size: int = 8000,
    lowercase: bool = False,
) -> Vocab:
    """A vocabulary of ``kind`` (word or bpe) built from training sentences (any iterable:
    they are read once, as a stream)."""
    if kind == "word":
        return WordVocab.build(sentences, min_freq, lowercase)
    if kind == "bpe":
        return SubwordVocab.build(sentences, vocab_size, lowercase)
    raise UserError(f"data.tokenizer must be one of {', '.join(VOCAB_KINDS)}, got {kind!r}")


def vocab_from_dict(data: object, where: str) -> Vocab:
    """The vocabulary a translation folder stores (a word list, or a BPE tokenizer)."""
    if isinstance(data, dict) and data.get("kind") == "bpe":
        return SubwordVocab.from_dict(data, where)
    return WordVocab.from_dict(data, where)


VOCAB_FILE = "translation_vocab.json"


@dataclass
class TranslationTokenizer:
    """The source and target vocabularies of a translation model, saved together."""

    source: Vocab
    target: Vocab
    source_lang: str = "src"
    target_lang: str = "tgt"

    def save_pretrained(self, folder: Path) -> None:
        data = {
            "source_lang": self.source_lang,
            "target_lang": self.target_lang,
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
        }
        (Path(folder) / VOCAB_FILE).write_text(json.dumps(data, ensure_ascii=False), "utf-8")

    @classmethod
    def from_pretrained(cls, folder: Path) -> TranslationTokenizer:
        path = Path(folder) / VOCAB_FILE
        if not path.is_file():
            raise UserError(f"{folder} has no {VOCAB_FILE} (not a seqkit translation model)")
        try:
            data = json.loads(path.read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path} is not a seqkit translation vocabulary")
        return cls(
            vocab_from_dict(data.get("source"), f"{path} (source)"),
            vocab_from_dict(data.get("target"), f"{path} (target)"),
            str(data.get("source_lang", "src")),
            str(data.get("target_lang", "tgt")),
        )


# ----------------------------------------------------------------------------- corpora


def read_parallel_files(source: Path, target: Path) -> list[Pair]:
    """Line-aligned files → pairs; a different number of lines is the user's mistake."""
    for path in (source, target):
        if not path.is_file():
            raise UserError(f"{path} does not exist")
    try:
        src = source.read_text(encoding="utf-8").splitlines()
        tgt = target.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"{source} / {target}: not UTF-8 text ({exc.reason})") from None
    if len(src) != len(tgt):
        raise UserError(
            f"{source} has {len(src)} lines but {target} has {len(tgt)}; parallel files must align"
        )
    return list(zip(src, tgt, strict=True))


def read_parallel_folder(
    folder: Path, source_lang: str, target_lang: str, root: Path | None = None
) -> tuple[PairRows, PairRows | list[Pair]]:
    """``(train, validation)`` pairs from ``folder/{train,val}.{source_lang,target_lang}``, as
    cached Arrow rows under ``root`` (default: seqkit's cache)."""
    from seqkit.data.arrow_rows import rows_cache_root

    root = root or rows_cache_root(None)
    if not folder.is_dir():
        raise UserError(f"data.path: {folder} is not a folder of parallel files")
    splits: dict[str, PairRows] = {}
    for split, names in (("train", ("train",)), ("val", ("val", "valid", "validation"))):
        for name in names:
            source = folder / f"{name}.{source_lang}"
            if source.is_file():
                target = folder / f"{name}.{target_lang}"
                splits[split] = read_parallel_rows(source, target, root)
                break
    if "train" not in splits:
        raise UserError(f"data.path: {folder} has no train.{source_lang} (one sentence a line)")
    return splits["train"], splits.get("val", [])


# A toy language pair with reordering, so that attention has something to find. The source
# language puts the verb last and adjectives after their noun (like German clauses and French
# adjectives); English puts the verb second and adjectives first. Each source word translates to
# exactly one English word, but never at the same position.
_NOUNS = {
    "kato": "cat", "hundo": "dog", "birdo": "bird", "viro": "man", "virino": "woman",
    "infano": "child", "domo": "house", "arbo": "tree", "pomo": "apple", "libro": "book",
    "fiso": "fish", "ĉevalo": "horse",
}  # fmt: skip
_ADJECTIVES = {
    "granda": "big", "malgranda": "small", "ruĝa": "red", "blua": "blue", "verda": "green",
    "maljuna": "old", "juna": "young", "feliĉa": "happy",
}  # fmt: skip
_VERBS = {
    "vidas": "sees", "manĝas": "eats", "amas": "loves", "portas": "carries",
    "sekvas": "follows", "trovas": "finds", "tenas": "holds", "serĉas": "seeks",
}  # fmt: skip


def _noun_phrase(rng: random.Random) -> tuple[list[str], list[str]]:
    noun = rng.choice(sorted(_NOUNS))
    adjectives = rng.sample(sorted(_ADJECTIVES), rng.choice((0, 0, 1, 2)))
    source = ["la", noun, *adjectives]  # the noun first, then its adjectives
    target = ["the", *(_ADJECTIVES[a] for a in reversed(adjectives)), _NOUNS[noun]]
    return source, target


def generated_pairs(count: int, seed: int = 0) -> list[Pair]:
    """``count`` deterministic sentence pairs of the toy language (same seed, same pairs).

    Source: subject, object, verb (verb-final), adjectives after nouns, optionally a second
    clause after ``kaj``; target: English word order. E.g. ``la kato granda la fiso vidas`` →
    ``the big cat sees the fish``.
    """
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        source: list[str] = []
        target: list[str] = []
        for clause in range(rng.choice((1, 1, 2))):
            if clause:
                source.append("kaj")
                target.append("and")
            subject_src, subject_tgt = _noun_phrase(rng)
            object_src, object_tgt = _noun_phrase(rng)
            verb = rng.choice(sorted(_VERBS))
            source += [*subject_src, *object_src, verb]
            target += [*subject_tgt, _VERBS[verb], *object_tgt]
        pairs.append((" ".join(source) + " .", " ".join(target) + " ."))
    return pairs


# ----------------------------------------------------------------------------- examples


class TranslationDataset(Dataset):
    """Encoded pairs held in memory (small corpora: the generated pairs, a file to score),
    truncated to the longest lengths the recipe allows.

    ``unknown`` and ``truncated`` count what encoding changed, for the run's summary.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        tokenizer: TranslationTokenizer,
        max_source_length: int,
        max_target_length: int,
    ) -> None:
        self.pairs = list(pairs)
        """The pairs as text, all of them (BLEU scores translations of these)."""
        self.examples: list[tuple[list[int], list[int]]] = []
        self.unknown = self.truncated = self.skipped = 0
        for source_text, target_text in pairs:
            source, source_unknown = tokenizer.source.encode(source_text)
            target, target_unknown = tokenizer.target.encode(target_text)
            if not source or not target:
                self.skipped += 1  # an empty side teaches nothing
                continue
            self.unknown += source_unknown + target_unknown
            # The target keeps one place for eos.
            if len(source) > max_source_length or len(target) > max_target_length - 1:
                self.truncated += 1
            self.examples.append((source[:max_source_length], target[: max_target_length - 1]))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        source, target = self.examples[index]
        return {"source": source, "target": target}


def collate_translation(rows: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    """Pad a list of examples to the longest in the batch (dynamic padding).

    ``decoder_input_ids`` = bos + target, ``labels`` = target + eos: the decoder input shifted
    right by one, so ``labels[:, t]`` is the token that follows ``decoder_input_ids[:, t]``.
    """
    source_len = max(len(row["source"]) for row in rows)
    target_len = max(len(row["target"]) for row in rows) + 1
    B = len(rows)
    input_ids = torch.full((B, source_len), PAD_ID, dtype=torch.long)
    attention_mask = torch.zeros(B, source_len, dtype=torch.long)
    decoder_input_ids = torch.full((B, target_len), PAD_ID, dtype=torch.long)
    labels = torch.full((B, target_len), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        source, target = row["source"], row["target"]
        input_ids[i, : len(source)] = torch.tensor(source)
        attention_mask[i, : len(source)] = 1
        decoder_input_ids[i, : len(target) + 1] = torch.tensor([BOS_ID, *target])
        labels[i, : len(target) + 1] = torch.tensor([*target, EOS_ID])
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "decoder_input_ids": decoder_input_ids,
        "labels": labels,
    }


def example_lengths(dataset: TranslationDataset | EncodedPairs) -> Sequence[int]:
    """The length that sets each example's padding: its longer side (the target with eos).

    The Trainer's length bucketing (``lengths`` of
    :class:`seqkit.trainer.sampling.ShardedBatchSampler`) batches examples by these.
    """
    if isinstance(dataset, EncodedPairs):
        return dataset.lengths()
    return [max(len(source), len(target) + 1) for source, target in dataset.examples]


def encode_sources(
    tokenizer: TranslationTokenizer, texts: Sequence[str], max_length: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """Pad source sentences for translation; returns ids, mask and counts of what changed
    (``unknown`` words, ``truncated`` sentences). An empty sentence is a user error."""
    encoded, unknown, truncated = [], 0, 0
    for number, text in enumerate(texts, start=1):
        ids, unknown_here = tokenizer.source.encode(text)
        if not ids:
            raise UserError(f"source sentence {number} is empty; nothing to translate")
        unknown += unknown_here
        if len(ids) > max_length:
            truncated += 1
            ids = ids[:max_length]
        encoded.append(ids)
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(encoded), width, dtype=torch.long)
    for i, ids in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
    return input_ids, mask, {"unknown": unknown, "truncated": truncated}


def read_pair_file(path: Path) -> list[Pair]:
    """Pairs from a file of ``source<TAB>reference`` lines (further columns, such as the
    attribution of Tatoeba exports, are ignored)."""
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        columns = line.split("\t")
        if len(columns) < 2:
            raise UserError(
                f"{path} line {number} has no tab; a pair file holds one source<TAB>reference "
                "pair a line (or give --source and --reference files)"
            )
        pairs.append((columns[0], columns[1]))
    if not pairs:
        raise UserError(f"{path} holds no sentence pairs")
    return pairs


# ----------------------------------------------------------------------------- data module

GENERATED = "generated"
MAX_GENERATED_PAIRS = 10**6
"""Most pairs of the generated corpus (they are all made in memory before training)."""


@dataclass
class PairsSection(DataSection):
    """The ``data`` section of a translation recipe: a parallel corpus.

    ``path`` is a folder with ``train.SRC``/``train.TGT`` and ``val.SRC``/``val.TGT``; ``hub``
    a Hub data set with one column per language; ``embedded: generated`` the toy language pair.
    """

    source_lang: str = "de"
    """Source language: file suffix (train.de) or Hub column."""
    target_lang: str = "en"
    """Target language."""
    hub_val_split: str = "validation"
    """Split of the Hub data set used for validation."""
    tokenizer: str = "word"
    """word (words seen min_freq times, others <unk>) or bpe (byte-level BPE of vocab_size
    tokens, never unknown; one joint vocabulary when the model shares its embeddings)."""
    min_freq: int = 2
    """Word vocabularies: words seen fewer times in the training side become <unk>."""
    vocab_size: int = 8000
    """BPE vocabularies: tokens per vocabulary (256 bytes, 4 specials and the merges)."""
    lowercase: bool = False
    """Lowercase both sides before building the vocabularies."""
    max_source_length: int = 64
    """Longer source sentences are truncated (counted in the summary)."""
    max_target_length: int = 64
    """Longer target sentences are truncated, eos included."""
    generated_pairs: int = 4000
    """Sentence pairs of the generated corpus (embedded: generated); val_fraction of them are
    held out."""
    max_train_pairs: int | None = None
    """Use only the first N training pairs (quick experiments)."""
    bucket_by_length: bool = True
    """Batch pairs of similar length together (shuffled pools sorted by length), so batches
    pad little; false draws every batch at random."""
    cache_dir: str | None = None
    """Folder of the cached Arrow rows and encoded pairs of data.path and data.hub corpora
    (default: $SEQKIT_CACHE/rows, else ~/.cache/seqkit/rows)."""
    num_proc: int = 1
    """Processes that encode a corpus the first time it is read."""
    tokenizer_sample_chars: int | None = None
    """Train a bpe vocabulary on the first N characters of each side only (default: all of
    it), for corpora too large to read whole; word vocabularies always count every word."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_encoding_settings()
        check_choice("data.tokenizer", self.tokenizer, VOCAB_KINDS)
        check_ranges(
            "data",
            self,
            {
                "min_freq": count(1, None),
                "vocab_size": count(1, MAX_VOCAB),
                "max_source_length": count(1, MAX_POSITIONS),
                "max_target_length": count(2, MAX_POSITIONS),  # one token and eos
                "generated_pairs": count(1, MAX_GENERATED_PAIRS),
                "max_train_pairs": count(1, None),
            },
        )


Pairs = Sequence[Pair]
"""A list of pairs (small corpora made in memory) or :class:`PairRows` (files and the Hub)."""


def load_pairs(data: PairsSection, seed: int = 0) -> tuple[Pairs, Pairs]:
    """``(train, validation)`` sentence pairs from whichever source the data section names:
    Arrow rows for ``data.path`` and ``data.hub`` (no corpus is held in memory), a list for the
    generated toy pairs."""
    from seqkit.data.arrow_rows import rows_cache_root

    train: Pairs
    val: Pairs
    root = rows_cache_root(data.cache_dir)
    if data.path:
        path = Path(data.path).expanduser()
        if not _names_records(path, data.source_lang):  # train.de / train.en ...
            train, val = read_parallel_folder(path, data.source_lang, data.target_lang, root)
        else:  # JSON lines, CSV or Parquet rows: the last data.val_fraction validates
            rows = read_pair_records(data.path, data.source_lang, data.target_lang, root)
            held_out = int(len(rows) * data.val_fraction)
            train, val = rows.rows(0, len(rows) - held_out), rows.rows(len(rows) - held_out)
    elif data.hub:
        hub = dict(config=data.hub_config, revision=data.hub_revision)
        hub["data_files"] = data.hub_data_files
        langs = (data.source_lang, data.target_lang)
        train = read_hub_pairs(data.hub, data.hub_split, *langs, **hub)
        val = read_hub_pairs(data.hub, data.hub_val_split, *langs, **hub)
    elif data.embedded == GENERATED:
        pairs = generated_pairs(data.generated_pairs, seed=seed)
        held_out = int(len(pairs) * data.val_fraction)
        train, val = pairs[: len(pairs) - held_out], pairs[len(pairs) - held_out :]
    else:
        raise UserError(
            "a translation recipe needs data.path (a folder of parallel files, or JSON lines, "
            f"CSV or Parquet rows), data.hub, or data.embedded: {GENERATED}"
            + (f" (got data.embedded: {data.embedded!r})" if data.embedded else "")
        )
    if data.max_train_pairs is not None:
        train = (
            train.rows(0, data.max_train_pairs)
            if isinstance(train, PairRows)
            else (train[: data.max_train_pairs])
        )
    if not len(train):
        raise UserError("the parallel corpus has no training pairs")
    return train, val


def _names_records(path: Path, source_lang: str) -> bool:
    """Whether ``data.path`` names rows of records (JSON lines, CSV or Parquet: a file, a
    glob, or a folder of them without ``train.SRC``) rather than parallel text files."""
    from seqkit.data.pipelines import names_records

    return not (path / f"train.{source_lang}").is_file() and names_records(path)


class SentencePairs(DataModule):
    """The ``sentence-pairs`` data module: a parallel corpus, its vocabularies, and batches of
    pairs of similar length.

    Vocabularies (:class:`TranslationTokenizer`, saved as ``translation_vocab.json``) are built
    on the training side: one per language, or one joint vocabulary of both when the recipe's
    ``model.share_embeddings`` asks for one embedding matrix (Vaswani et al. 2017, section 3.4).
    Pairs are truncated to ``data.max_source_length``/``max_target_length``; with
    ``data.bucket_by_length`` the Trainer batches pairs of similar length (less padding).
    """

    Section = PairsSection
    load_tokenizer = staticmethod(TranslationTokenizer.from_pretrained)
    paired_files = True
    """``seqkit evaluate --source FILE --reference FILE`` gives :meth:`scoring_data` the two."""

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        # A model scored without its run (seqkit evaluate --data) has no data section of ours.
        data = recipe.data
        self.data: PairsSection = data if isinstance(data, PairsSection) else PairsSection()

    @cached_property
    def pairs(self) -> tuple[Pairs, Pairs]:
        """``(train, validation)`` pairs, read once (Arrow rows for files and the Hub)."""
        return load_pairs(self.data, seed=self.recipe.trainer.seed)

    def _joint(self) -> bool:
        # The model section decides whether source and target share one embedding, and so
        # one vocabulary; the data module only builds it.
        model = self.recipe.model if isinstance(self.recipe.model, dict) else {}
        return model.get("share_embeddings") is True

    def tokenizer(self, init_from: Path | None) -> TranslationTokenizer:
        if init_from is not None:
            return TranslationTokenizer.from_pretrained(init_from)
        data = self.data
        train, _ = self.pairs
        # A bpe vocabulary may learn from the first data.tokenizer_sample_chars of each side;
        # either kind reads the corpus as a stream, never as a list of its sentences.
        limit = data.tokenizer_sample_chars if data.tokenizer == "bpe" else None

        def side(index: int) -> Iterator[str]:
            if isinstance(train, PairRows):
                sentences = train.side(index)
            else:
                sentences = (pair[index] for pair in train)
            return first_chars(sentences, limit)

        options = dict(
            kind=data.tokenizer,
            min_freq=data.min_freq,
            vocab_size=data.vocab_size,
            lowercase=data.lowercase,
        )
        if self._joint():  # one vocabulary, both languages
            joint = build_vocab(chain(side(0), side(1)), **options)
            return TranslationTokenizer(joint, joint, data.source_lang, data.target_lang)
        return TranslationTokenizer(
            build_vocab(side(0), **options),
            build_vocab(side(1), **options),
            data.source_lang,
            data.target_lang,
        )

    def facts(self, tokenizer: TranslationTokenizer) -> dict:
        return {
            "source_vocab_size": tokenizer.source.vocab_size,
            "target_vocab_size": tokenizer.target.vocab_size,
            "pad_token_id": PAD_ID,
            "bos_token_id": BOS_ID,
            "eos_token_id": EOS_ID,
            "max_source_length": self.data.max_source_length,
            "max_target_length": self.data.max_target_length,
        }

    @staticmethod
    def check_model(tokenizer: TranslationTokenizer, config: object, folder: Path) -> None:
        """Refuse vocabularies that do not fit the model's embeddings (a wrong translation
        otherwise, or an index past the embedding)."""
        from seqkit.folders import check_vocabulary

        for side, vocab in (("source", tokenizer.source), ("target", tokenizer.target)):
            size = getattr(config, f"{side}_vocab_size", None)
            check_vocabulary(folder, vocab.vocab_size, size, side)
        if getattr(config, "share_embeddings", False) and (
            tokenizer.source.to_dict() != tokenizer.target.to_dict()
        ):
            raise UserError(
                f"{folder}: the model shares one embedding between source and target, but the "
                "folder's source and target vocabularies differ"
            )

    def _dataset(
        self, tokenizer: TranslationTokenizer, pairs: Pairs
    ) -> TranslationDataset | EncodedPairs:
        from seqkit.data.arrow_rows import rows_cache_root

        lengths = (self.data.max_source_length, self.data.max_target_length)
        if isinstance(pairs, PairRows):
            root = rows_cache_root(self.data.cache_dir)
            return EncodedPairs(pairs, tokenizer, *lengths, root=root, num_proc=self.data.num_proc)
        return TranslationDataset(pairs, tokenizer, *lengths)

    def prepare(self, tokenizer: TranslationTokenizer, window: int, most: int | None) -> Prepared:
        train_pairs, val_pairs = self.pairs
        train_data = self._dataset(tokenizer, train_pairs)
        eval_data = self._dataset(tokenizer, val_pairs) if val_pairs else None
        if len(train_data) == 0:
            raise UserError("every training pair has an empty side; nothing to train on")
        summary: dict = {
            "pairs (train / validation)": f"{len(train_data)} / {len(eval_data or [])}",
            "unknown words (train)": train_data.unknown,
            "truncated pairs (train)": train_data.truncated,
        }
        if train_data.skipped:
            summary["skipped pairs with an empty side (train)"] = train_data.skipped
        return Prepared(
            train_data=train_data,
            eval_data=eval_data,
            collate_fn=collate_translation,
            train_lengths=example_lengths(train_data) if self.data.bucket_by_length else None,
            summary=summary,
        )

    def scoring_data(
        self,
        tokenizer: TranslationTokenizer,
        window: int,
        most: int | None,
        path: Path | tuple[Path, Path],
    ) -> Prepared:
        """Every pair of a ``source<TAB>reference`` file, or of a source and a reference file
        (``(source, reference)``)."""
        if isinstance(path, tuple):
            pairs, where = read_parallel_files(*path), path[0]
        else:
            pairs, where = read_pair_file(path), path
        examples = self._dataset(tokenizer, pairs)
        if len(examples) == 0:
            sources_empty = all(not s.strip() for s, _ in pairs)
            empty = "source line" if sources_empty else "pair has a side that"
            raise UserError(f"no sentence pairs to evaluate in {where} (every {empty} is empty)")
        return Prepared(train_data=None, eval_data=examples, collate_fn=collate_translation)

    def vocabulary(self, tokenizer: TranslationTokenizer) -> str:
        sizes = f"{tokenizer.source.vocab_size} / {tokenizer.target.vocab_size}"
        joint = tokenizer.source is tokenizer.target
        return f"{sizes} (source / target{', joint' if joint else ''}; {self.data.tokenizer})"

    def card_tags(self, tokenizer: TranslationTokenizer) -> list[str]:
        kind = "bpe" if isinstance(tokenizer.source, SubwordVocab) else "word-level"
        return ["translation", kind]
