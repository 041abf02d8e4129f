"""Bag-of-words features: documents -> sparse matrices of n-gram counts or TF-IDF weights.

The classic pipeline of information retrieval (Salton & Buckley, 1988, "Term-weighting approaches
in automatic text retrieval"; Manning, Raghavan & Schütze, 2008, "Introduction to Information
Retrieval", ch. 6): lowercase, cut into word tokens with a regular expression, drop stop words,
join neighbours into n-grams, keep the vocabulary terms that are frequent enough (``min_df``)
and not too common (``max_df``), at most ``max_features`` of them, and count. TF-IDF then
weights each count by how rare the term is across documents,

    idf(t) = ln((1 + n) / (1 + df(t))) + 1       (smooth_idf: as if one extra document held
                                                  every term once, so no division by zero)
    idf(t) = ln(n / df(t)) + 1                   (smooth_idf=False)

optionally replaces a count by ``1 + ln(count)`` (``sublinear_tf``), and scales every row to unit
length (``norm="l2"``). Every setting means what it means in scikit-learn's ``CountVectorizer`` /
``TfidfVectorizer`` and a test proves the matrices equal.

Languages written without spaces. The default token pattern finds runs of word characters, and
every Chinese character is one, so "这个手机很好用，我很喜欢" would become two clause-long tokens
that almost never recur. ``segmenter`` cuts a document into words first: ``"jieba"`` (Sun Junyi's
dictionary-and-HMM segmenter, the usual choice for Chinese bag-of-words models) gives
这个 / 手机 / 很 / 好 / 用 / 我 / 很 / 喜欢; ``"char"`` makes every CJK character a token (with
``ngram_range=(1, 2)`` the character bigrams that serve as words in classic Chinese text
classification) and keeps the runs of other word characters as words. A segmenter replaces
``token_pattern``: its tokens are kept when they hold a word character, one character long or
more, because in Chinese a one-character word (好, 差) often carries the sentiment. Without a
segmenter nothing changes (the results stay identical to scikit-learn's), and
:func:`cjk_share` lets a caller warn when the documents need one.

The ``bag-of-words`` data module (:class:`BagOfWords`) feeds the classifiers of
:mod:`seqkit.models.bow`: labelled documents (:mod:`seqkit.data.labelled`) → the vectorizer
fitted on the training documents only (the run's "tokenizer", saved as ``vectorizer.json``) →
one sparse row per document, batched as padded feature ids and values (:func:`collate_bags`).

Why not just call scikit-learn: speed, and the vocabulary must travel with a Hub folder as JSON.
scikit-learn counts with a Python loop per token; here each document's tokens are mapped to ids
by ``map`` over a dict whose missing keys take the next free id (a C-level loop), and everything
after that (sorting the vocabulary, document frequencies, pruning, weighting, normalising) is
array arithmetic on the CSR matrix.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, filterfalse, repeat
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from seqkit.checks import check_choice, check_range, check_ranges, count, show
from seqkit.data.labelled import LabelledDataSection, LabelledTexts, labelled_splits
from seqkit.errors import UserError
from seqkit.folders import read_json
from seqkit.parts.base import DataModule, Prepared

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
"""Words of two or more word characters (scikit-learn's default)."""
SEGMENTERS = ("none", "jieba", "char")
"""How documents are cut into tokens: the token pattern, jieba words, or CJK characters."""
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""Hiragana, katakana and the CJK ideograph blocks: scripts written without spaces."""
_CJK_CHARACTER = re.compile(f"[{CJK}]")
_CHAR_TOKENS = re.compile(f"[{CJK}]|[^\\W{CJK}]+")
"""``char`` segmentation: one CJK character, or a run of other word characters."""
_HAS_WORD_CHARACTER = re.compile(r"\w")
WEIGHTINGS = ("count", "tfidf")
NORMS = ("l2", "l1", None)
VECTORIZER_FILE = "vectorizer.json"


def cjk_share(docs: Sequence[str]) -> float:
    """The fraction of ``docs`` that contain a CJK character (0.0 for no documents)."""
    if not docs:
        return 0.0
    return sum(1 for doc in docs if _CJK_CHARACTER.search(doc)) / len(docs)


def _segment_function(segmenter: str):
    """``text -> list of tokens`` for a segmenter other than "none"."""
    if segmenter == "char":
        return _CHAR_TOKENS.findall
    try:
        import jieba
    except ImportError:
        raise UserError(
            "segmenter: jieba needs the jieba package (pip install jieba); or use segmenter: char"
        ) from None
    import logging

    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict..." lines on every run
    match = _HAS_WORD_CHARACTER.search

    def segment(text: str) -> list[str]:
        # jieba returns punctuation and spaces as tokens of their own: drop them.
        return [token for token in jieba.lcut(text) if match(token)]

    return segment


def english_stop_words() -> frozenset[str]:
    """The English stop-word list scikit-learn ships (318 words), read from the installed copy
    so that "english" means exactly the same words in both."""
    try:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    except ImportError:
        raise UserError(
            "stop_words: english reads scikit-learn's list; install scikit-learn or give a list"
        ) from None
    return frozenset(ENGLISH_STOP_WORDS)


class BagOfWordsVectorizer:
    """Learn a vocabulary from documents and turn documents into sparse feature rows.

    Arguments mirror scikit-learn: ``lowercase``, ``token_pattern``, ``stop_words`` (None,
    ``"english"`` or a list), ``ngram_range`` (min n, max n), ``min_df`` / ``max_df`` (an int is a
    document count, a float a fraction of documents), ``max_features`` (keep the most frequent
    terms by total count), ``binary`` (presence instead of counts), and for
    ``weighting="tfidf"``: ``norm``, ``use_idf``, ``smooth_idf``, ``sublinear_tf``. And one
    setting of its own, ``segmenter`` (none, jieba or char; see the module docstring), which
    replaces ``token_pattern`` when it is not none.
    """

    def __init__(
        self,
        *,
        weighting: str = "count",
        lowercase: bool = True,
        token_pattern: str = DEFAULT_TOKEN_PATTERN,
        stop_words: str | Sequence[str] | None = None,
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        max_features: int | None = None,
        binary: bool = False,
        norm: str | None = "l2",
        use_idf: bool = True,
        smooth_idf: bool = True,
        sublinear_tf: bool = False,
        segmenter: str = "none",
    ) -> None:
        if segmenter not in SEGMENTERS:
            raise UserError(f"segmenter must be one of {', '.join(SEGMENTERS)}, got {segmenter!r}")
        if weighting not in WEIGHTINGS:
            raise UserError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
        if norm not in NORMS:
            raise UserError(f"norm must be l2, l1 or null, got {norm!r}")
        low, high = ngram_range
        if not 1 <= low <= high:
            raise UserError(
                f"ngram_range must be (min, max) with 1 <= min <= max, got {ngram_range}"
            )
        for name, value in (("min_df", min_df), ("max_df", max_df)):
            if isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise UserError(f"{name} as a fraction must be in [0, 1], got {value}")
            if isinstance(value, int) and value < 0:
                raise UserError(f"{name} as a document count must be >= 0, got {value}")
        if max_features is not None and max_features < 1:
            raise UserError(f"max_features must be at least 1, got {max_features}")
        if isinstance(stop_words, str) and stop_words != "english":
            raise UserError(f"stop_words must be 'english' or a list of words, got {stop_words!r}")
        try:
            self._pattern = re.compile(token_pattern)
        except re.error as error:
            raise UserError(
                f"token_pattern {token_pattern!r} is not a regular expression: {error}"
            ) from None
        if self._pattern.groups > 1:
            raise UserError("token_pattern may have at most one capturing group")
        self.weighting = weighting
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.stop_words = stop_words
        self.ngram_range = (low, high)
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.binary = binary
        self.norm = norm
        self.use_idf = use_idf
        self.smooth_idf = smooth_idf
        self.sublinear_tf = sublinear_tf
        self.segmenter = segmenter
        self.vocabulary_: dict[str, int] | None = None
        self.idf_: np.ndarray | None = None

    # ------------------------------------------------------------------ analysis

    def _stop_set(self) -> frozenset[str]:
        if self.stop_words is None:
            return frozenset()
        if self.stop_words == "english":
            return english_stop_words()
        return frozenset(self.stop_words)

    def _analyzer(self):
        """``doc -> list of features``: lowercase, tokenize, drop stop words, form n-grams."""
        findall = (
            self._pattern.findall if self.segmenter == "none" else _segment_function(self.segmenter)
        )
        lowercase = self.lowercase
        stop = self._stop_set()
        low, high = self.ngram_range

        def analyze(doc: str) -> list[str]:
            tokens = findall(doc.lower() if lowercase else doc)
            if stop:
                tokens = list(filterfalse(stop.__contains__, tokens))
            if high == 1:
                return tokens
            features = tokens[:] if low == 1 else []
            for n in range(max(low, 2), high + 1):
                # zip of n shifted views gives every window of n tokens, joined by one space.
                features.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
            return features

        return analyze

    def build_analyzer(self):
        """The function that turns one document into its list of features."""
        return self._analyzer()

    def _count(self, docs: Iterable[str], vocabulary: dict[str, int], grow: bool) -> sp.csr_matrix:
        """Counts of ``vocabulary`` features per document (CSR, duplicates summed, sorted)."""
        if isinstance(docs, str):
            raise UserError("expected a list of documents, got a single string")
        analyze = self._analyzer()
        features = [analyze(doc) for doc in docs]
        lengths = np.fromiter(map(len, features), dtype=np.int64, count=len(features))
        flat = chain.from_iterable(features)
        if grow:
            ids = np.fromiter(map(vocabulary.__getitem__, flat), dtype=np.int64)
        else:
            ids = np.fromiter(map(vocabulary.get, flat, repeat(-1)), dtype=np.int64)
        doc_of = np.repeat(np.arange(len(features), dtype=np.int64), lengths)
        if not grow:
            known = ids >= 0
            ids, doc_of = ids[known], doc_of[known]
        shape = (len(features), len(vocabulary))
        counts = sp.csr_matrix((np.ones(len(ids), dtype=np.int64), (doc_of, ids)), shape=shape)
        counts.sum_duplicates()  # also sorts each row's column indices
        return counts

    # ------------------------------------------------------------------ fit / transform

    def fit(self, docs: Sequence[str]) -> BagOfWordsVectorizer:
        """Learn the vocabulary (and IDF weights) from ``docs``."""
        self.fit_transform(docs)
        return self

    def fit_transform(self, docs: Sequence[str]) -> sp.csr_matrix:
        """Learn the vocabulary from ``docs`` and return their feature matrix."""
        vocabulary: defaultdict[str, int] = defaultdict()
        vocabulary.default_factory = vocabulary.__len__  # a new feature takes the next id
        counts = self._count(docs, vocabulary, grow=True)
        if self.binary:  # before pruning: max_features then ranks terms by document frequency
            counts.data = np.ones_like(counts.data)
        n_docs = counts.shape[0]
        if not vocabulary:
            raise UserError(
                "the documents contain no terms (empty, or only stop words); check the corpus"
            )
        # Alphabetical ids, as scikit-learn: old id -> rank of its term in sorted order.
        terms = np.array(list(vocabulary), dtype=object)
        order = np.argsort(terms.astype(str), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        counts.indices = rank[counts.indices].astype(counts.indices.dtype)
        counts.has_sorted_indices = False
        counts.sort_indices()
        terms = terms[order]

        keep = self._features_to_keep(counts, n_docs)
        counts = counts[:, keep]
        terms = terms[keep]
        self.vocabulary_ = {term: i for i, term in enumerate(terms.tolist())}
        if self.weighting == "tfidf" and self.use_idf:
            df = np.bincount(counts.indices, minlength=counts.shape[1])
            self.idf_ = self._idf(df, n_docs)
        return self._weight(counts)

    def _features_to_keep(self, counts: sp.csr_matrix, n_docs: int) -> np.ndarray:
        """Sorted column indices that pass ``min_df``/``max_df`` and the ``max_features`` cut."""
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        high = self.max_df if isinstance(self.max_df, int) else self.max_df * n_docs
        low = self.min_df if isinstance(self.min_df, int) else self.min_df * n_docs
        if high < low:
            raise UserError("max_df corresponds to fewer documents than min_df")
        keep = np.flatnonzero((df >= low) & (df <= high))
        if self.max_features is not None and len(keep) > self.max_features:
            totals = np.asarray(counts.sum(axis=0)).ravel()  # int64, like scikit-learn's
            # Most frequent first. Ties fall where numpy's default (unstable) argsort puts them,
            # which is what scikit-learn does; a stable sort would keep different tied terms.
            best = np.argsort(-totals[keep])[: self.max_features]
            keep = np.sort(keep[best])
        if len(keep) == 0:
            raise UserError(
                "no terms remain after min_df/max_df pruning; lower data.min_df or raise max_df"
            )
        return keep

    def _idf(self, df: np.ndarray, n_docs: int) -> np.ndarray:
        smooth = int(self.smooth_idf)
        return np.log((n_docs + smooth) / (df + smooth)) + 1.0

    def transform(self, docs: Sequence[str]) -> sp.csr_matrix:
        """Feature rows of ``docs`` over the fitted vocabulary (unknown terms are ignored)."""
        if self.vocabulary_ is None:
            raise RuntimeError("fit the vectorizer before transform")
        return self._weight(self._count(docs, self.vocabulary_, grow=False))

    def _weight(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Counts -> the output matrix: binary, then (for tfidf) tf, idf and row norms."""
        if self.binary:
            counts.data = np.ones_like(counts.data)
        if self.weighting == "count":
            return counts
        matrix = counts.astype(np.float64)
        if self.sublinear_tf:
            matrix.data = np.log(matrix.data) + 1.0
        if self.use_idf:
            matrix.data *= self.idf_[matrix.indices]
        if self.norm is not None:
            values = matrix.data**2 if self.norm == "l2" else np.abs(matrix.data)
            row_lengths = np.diff(matrix.indptr)
            nonempty = row_lengths > 0
            sums = np.zeros(matrix.shape[0])
            if values.size:
                # reduceat sums from each start to the next; empty rows are skipped, not summed.
                sums[nonempty] = np.add.reduceat(values, matrix.indptr[:-1][nonempty])
            scale = np.sqrt(sums) if self.norm == "l2" else sums
            scale[scale == 0] = 1.0
            matrix.data /= np.repeat(scale, row_lengths)
        return matrix

    # ------------------------------------------------------------------ vocabulary

    @property
    def num_features(self) -> int:
        if self.vocabulary_ is None:
            raise RuntimeError("the vectorizer is not fitted")
        return len(self.vocabulary_)

    def get_feature_names_out(self) -> np.ndarray:
        """The feature strings, in column order."""
        names = sorted(self.vocabulary_, key=self.vocabulary_.__getitem__)
        return np.array(names, dtype=object)

    # ------------------------------------------------------------------ save / load

    def settings(self) -> dict:
        """The constructor arguments, as JSON-ready data."""
        stop = self.stop_words
        return {
            "weighting": self.weighting,
            "lowercase": self.lowercase,
            "token_pattern": self.token_pattern,
            "stop_words": stop if stop is None or isinstance(stop, str) else sorted(stop),
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_df": self.max_df,
            "max_features": self.max_features,
            "binary": self.binary,
            "norm": self.norm,
            "use_idf": self.use_idf,
            "smooth_idf": self.smooth_idf,
            "sublinear_tf": self.sublinear_tf,
            "segmenter": self.segmenter,
        }

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``vectorizer.json``: settings, vocabulary (in column order) and IDF weights."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = {
            "settings": self.settings(),
            "features": self.get_feature_names_out().tolist(),
            "idf": None if self.idf_ is None else self.idf_.tolist(),
        }
        (directory / VECTORIZER_FILE).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> BagOfWordsVectorizer:
        path = Path(directory) / VECTORIZER_FILE
        data = read_json(path, "a bag-of-words model")
        try:
            settings = dict(data["settings"])
            settings["ngram_range"] = tuple(settings["ngram_range"])
            vectorizer = cls(**settings)
            vectorizer.vocabulary_ = {term: i for i, term in enumerate(data["features"])}
            if data["idf"] is not None:
                vectorizer.idf_ = np.asarray(data["idf"], dtype=np.float64)
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path} is not a valid vectorizer file ({error})") from None
        return vectorizer


# ----------------------------------------------------------------------------- bag-of-words

MAX_NGRAM = 10
"""Longest word n-gram (every document yields about one n-gram per word for each n)."""


@dataclass
class BagOfWordsSection(LabelledDataSection):
    """The ``data`` section of the ``bag-of-words`` module: documents, labels and features."""

    weighting: str = "tfidf"
    """count or tfidf."""
    ngram_range: tuple[int, int] = (1, 2)
    """Smallest and largest n of the word n-grams."""
    min_df: int | float = 2
    """Drop terms in fewer documents than this (an int) or this fraction of documents."""
    max_df: int | float = 1.0
    """Drop terms in more documents than this (an int) or this fraction of documents."""
    max_features: int | None = 20000
    """Keep only the most frequent terms (null = all)."""
    stop_words: str | list[str] | None = None
    """english (scikit-learn's list), a list of words, or null."""
    sublinear_tf: bool = True
    """tfidf: use 1 + ln(count) instead of the count."""
    lowercase: bool = True
    """Lowercase documents before cutting them into words."""
    segmenter: str = "none"
    """none (the word pattern), jieba (Chinese words) or char (every CJK character a token)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.weighting", self.weighting, WEIGHTINGS)
        check_choice("data.segmenter", self.segmenter, SEGMENTERS)
        for i, n in enumerate(self.ngram_range):
            check_range(f"data.ngram_range[{i}]", n, 1, MAX_NGRAM, integer=True)
        if self.ngram_range[0] > self.ngram_range[1]:
            raise UserError(
                f"data.ngram_range must be [min, max] with min <= max, got {list(self.ngram_range)}"
            )
        for name in ("min_df", "max_df"):
            value = getattr(self, name)
            if isinstance(value, float):  # a fraction of the documents
                check_range(f"data.{name}", value, 0, 1)
            else:  # a number of documents
                check_range(f"data.{name}", value, 0, None, integer=True)
        check_ranges("data", self, {"max_features": count(1, None)})
        if isinstance(self.stop_words, str) and self.stop_words != "english":
            raise UserError(
                f"data.stop_words must be english or a list of words, got {show(self.stop_words)}"
            )


def collate_bags(rows: list[tuple]) -> dict[str, torch.Tensor]:
    """Pad each document's feature ids/values to the longest of the batch (id 0, value 0.0)."""
    longest = max(1, max(len(ids) for ids, _, _ in rows))
    feature_ids = torch.zeros((len(rows), longest), dtype=torch.long)
    feature_values = torch.zeros((len(rows), longest), dtype=torch.float32)
    for i, (ids, values, _) in enumerate(rows):
        feature_ids[i, : len(ids)] = torch.from_numpy(ids.astype(np.int64))
        feature_values[i, : len(values)] = torch.from_numpy(values.astype(np.float32))
    labels = torch.stack([label for _, _, label in rows])
    return {"feature_ids": feature_ids, "feature_values": feature_values, "labels": labels}


class BagOfWordsDataset(Dataset):
    """Rows of a CSR feature matrix with their labels, one document per item;
    ``collate_fn`` batches them."""

    collate_fn = staticmethod(collate_bags)

    def __init__(self, features: sp.spmatrix, labels: np.ndarray) -> None:
        self.features = features.tocsr()
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        start, end = self.features.indptr[index], self.features.indptr[index + 1]
        ids = self.features.indices[start:end]
        values = self.features.data[start:end]
        return ids, values, self.labels[index]


def load_vectorizer(folder: Path) -> BagOfWordsVectorizer:
    """The vectorizer saved in ``folder``; with the model's ``config.json`` beside it, its
    feature count must be the model's."""
    from seqkit.folders import loading, read_config

    folder = Path(folder)
    with loading(f"the vectorizer in {folder}"):
        vectorizer = BagOfWordsVectorizer.from_pretrained(folder)
    if (folder / "config.json").is_file():
        expected = read_config(folder).get("num_features")
        if expected is not None and expected != vectorizer.num_features:
            raise UserError(
                f"{folder}: the vectorizer has {vectorizer.num_features} features but the model "
                f"expects {expected}"
            )
    return vectorizer


class BagOfWords(DataModule):
    """The ``bag-of-words`` data module (Joachims 1998; Wang & Manning 2012): labelled
    documents as sparse count or TF-IDF rows, for ``model.architecture: bow``.

    The documents are read by :func:`seqkit.data.labelled.labelled_splits`; the
    vectorizer is the ``init_from`` model's, a saved one (``tokenizer.path``: a folder with
    ``vectorizer.json``), or one fitted on the training documents only (Chinese cut into words
    by ``data.segmenter``).
    """

    Section = BagOfWordsSection
    load_tokenizer = staticmethod(load_vectorizer)

    def __init__(self, recipe: Any):
        super().__init__(recipe)
        self._splits: tuple[LabelledTexts, LabelledTexts | None] | None = None
        self._train_features: sp.csr_matrix | None = None

    def splits(self) -> tuple[LabelledTexts, LabelledTexts | None]:
        """``(train, validation or None)``, read once."""
        if self._splits is None:
            self._splits = labelled_splits(self.data, self.recipe.trainer.seed)
        return self._splits

    def tokenizer(self, init_from: Path | None) -> BagOfWordsVectorizer:
        if init_from is not None:
            return load_vectorizer(init_from)
        if self.recipe.tokenizer.path:
            return load_vectorizer(Path(self.recipe.tokenizer.path))
        data = self.data
        train, _ = self.splits()
        share = cjk_share(train.texts)
        if data.segmenter == "none" and share >= 0.01:
            # The word pattern would keep whole clauses of Chinese as single rare tokens.
            print(
                f"note: {share:.0%} of the training documents hold CJK text, which "
                "data.segmenter: none does not cut into words; set data.segmenter to jieba or char",
                file=sys.stderr,
            )
        vectorizer = BagOfWordsVectorizer(
            weighting=data.weighting,
            ngram_range=data.ngram_range,
            min_df=data.min_df,
            max_df=data.max_df,
            max_features=data.max_features,
            stop_words=data.stop_words,
            sublinear_tf=data.sublinear_tf,
            lowercase=data.lowercase,
            segmenter=data.segmenter,
        )
        self._train_features = vectorizer.fit_transform(train.texts)
        return vectorizer

    def _class_names(self) -> list[str]:
        if self.model_config is not None:  # a trained model: its classes, in its order
            id2label = self.model_config.id2label
            return [str(id2label[i]) for i in range(len(id2label))]
        return self.splits()[0].label_names

    def facts(self, tokenizer: BagOfWordsVectorizer) -> dict[str, Any]:
        names = self._class_names()
        return {
            "num_features": tokenizer.num_features,
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
        }

    def prepare(self, tokenizer: BagOfWordsVectorizer, window: int, most: int | None) -> Prepared:
        train, val = self.splits()
        features = self._train_features
        if features is None:  # a saved vectorizer (resume, init_from): not fitted here
            features = tokenizer.transform(train.texts)
        eval_data = None
        if val is not None:
            eval_data = BagOfWordsDataset(tokenizer.transform(val.texts), val.labels)
        return Prepared(
            train_data=BagOfWordsDataset(features, train.labels),
            eval_data=eval_data,
            collate_fn=collate_bags,
            summary={
                "documents": f"{len(train)} train, {len(val) if val is not None else 0} validation",
                "classes": ", ".join(train.label_names),
            },
        )

    def scoring_data(
        self, tokenizer: BagOfWordsVectorizer, window: int, most: int | None, path: Path
    ) -> Prepared:
        from seqkit.data.labelled import load_labelled

        data = load_labelled(
            path=str(path),
            text_column=self.data.text_column,
            label_column=self.data.label_column,
            labels=self._class_names(),
        )
        return Prepared(
            train_data=None,
            eval_data=BagOfWordsDataset(tokenizer.transform(data.texts), data.labels),
            collate_fn=collate_bags,
        )

    def unlabelled(
        self, tokenizer: BagOfWordsVectorizer, texts: list[str], window: int, most: int | None
    ) -> BagOfWordsDataset:
        """``texts`` as examples to classify (their labels are placeholders)."""
        return BagOfWordsDataset(tokenizer.transform(texts), np.zeros(len(texts), dtype=np.int64))

    def vocabulary(self, tokenizer: BagOfWordsVectorizer) -> str:
        return f"{tokenizer.num_features} features ({tokenizer.weighting})"

    def card_tags(self, tokenizer: BagOfWordsVectorizer) -> list[str]:
        return ["bag-of-words", "text-classification"]
