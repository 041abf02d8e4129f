"""The bag-of-words vectorizer gives scikit-learn's matrices on the same settings."""

from __future__ import annotations

from pydoc_data.topics import topics

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from seqkit.data.bow import BagOfWordsVectorizer, cjk_share
from seqkit.errors import UserError

DOCS = [p for key in sorted(topics)[:12] for p in topics[key].split("\n\n") if p.strip()]
UNSEEN = ["An unseen document with zzzzz words", "", "?!", "Ünïcödé wörds and emoji 😀 here"]

SETTINGS = [
    {},
    {"ngram_range": (1, 2), "min_df": 2, "max_features": 500, "stop_words": "english"},
    {"ngram_range": (2, 3), "max_df": 0.5, "min_df": 0.01, "binary": True, "lowercase": False},
    {"stop_words": ["the", "and", "of"], "max_features": 50, "token_pattern": r"(?u)\b\w+\b"},
]
TFIDF_SETTINGS = [
    {},
    {"sublinear_tf": True, "smooth_idf": False, "norm": "l1"},
    {"norm": None, "use_idf": False, "ngram_range": (1, 2), "min_df": 3},
    {"max_features": 200, "stop_words": "english", "binary": True},
]


def assert_same(ours: sp.csr_matrix, reference: sp.csr_matrix, exact: bool) -> None:
    assert sp.isspmatrix_csr(ours) and ours.shape == reference.shape
    assert ours.dtype == reference.dtype
    if exact:
        assert (ours != reference).nnz == 0
    else:
        np.testing.assert_allclose(ours.toarray(), reference.toarray(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("settings", SETTINGS)
def test_counts_equal_scikit_learn(settings):
    ours, reference = BagOfWordsVectorizer(**settings), CountVectorizer(**settings)
    assert_same(ours.fit_transform(DOCS), reference.fit_transform(DOCS), exact=True)
    assert ours.vocabulary_ == reference.vocabulary_
    assert list(ours.get_feature_names_out()) == list(reference.get_feature_names_out())
    assert_same(ours.transform(UNSEEN), reference.transform(UNSEEN), exact=True)


@pytest.mark.parametrize("settings", TFIDF_SETTINGS)
def test_tfidf_equals_scikit_learn(settings):
    ours = BagOfWordsVectorizer(weighting="tfidf", **settings)
    reference = TfidfVectorizer(**settings)
    assert_same(ours.fit_transform(DOCS), reference.fit_transform(DOCS), exact=False)
    assert ours.vocabulary_ == reference.vocabulary_
    if settings.get("use_idf", True):
        np.testing.assert_allclose(ours.idf_, reference.idf_, rtol=1e-12)
    assert_same(ours.transform(UNSEEN), reference.transform(UNSEEN), exact=False)


def test_save_and_load_give_the_same_features(tmp_path):
    vectorizer = BagOfWordsVectorizer(weighting="tfidf", ngram_range=(1, 2), min_df=2)
    matrix = vectorizer.fit_transform(DOCS)
    vectorizer.save_pretrained(tmp_path)
    loaded = BagOfWordsVectorizer.from_pretrained(tmp_path)
    assert loaded.vocabulary_ == vectorizer.vocabulary_
    assert abs(loaded.transform(DOCS) - matrix).max() == 0


@pytest.mark.parametrize(
    ("settings", "docs", "message"),
    [
        ({}, ["", "a", "?"], "contain no terms"),
        ({"min_df": 2}, ["one two", "three four"], "no terms remain"),
        ({"weighting": "bm25"}, DOCS, "weighting must be one of"),
        ({"ngram_range": (2, 1)}, DOCS, "ngram_range"),
        ({"min_df": 1.5}, DOCS, "min_df as a fraction"),
        ({"stop_words": "french"}, DOCS, "stop_words must be"),
        ({"token_pattern": "("}, DOCS, "not a regular expression"),
    ],
)
def test_bad_settings_and_corpora(settings, docs, message):
    with pytest.raises(UserError, match=message):
        BagOfWordsVectorizer(**settings).fit_transform(docs)


# ----------------------------------------------------------------------------- segmenters

REVIEW = "这个手机很好用，我很喜欢"


def test_the_word_pattern_keeps_chinese_clauses_whole_and_says_so():
    # The reason data.segmenter exists: without it a clause is one token.
    vectorizer = BagOfWordsVectorizer().fit([REVIEW])
    assert list(vectorizer.get_feature_names_out()) == ["我很喜欢", "这个手机很好用"]
    assert cjk_share([REVIEW, "an English review", "日本語のテキスト", ""]) == 0.5
    assert cjk_share([]) == 0.0


def test_jieba_cuts_chinese_into_words():
    vectorizer = BagOfWordsVectorizer(segmenter="jieba").fit([REVIEW + " iPhone 15!"])
    # One-character words stay (好 carries the sentiment); punctuation and spaces do not.
    assert set(vectorizer.get_feature_names_out()) == {
        "这个", "手机", "很", "好", "用", "我", "喜欢", "iphone", "15",
    }  # fmt: skip
    counts = vectorizer.transform([REVIEW]).toarray()[0]
    assert counts[vectorizer.vocabulary_["很"]] == 2


def test_char_segmenter_gives_characters_and_their_bigrams():
    vectorizer = BagOfWordsVectorizer(segmenter="char", ngram_range=(1, 2), lowercase=False)
    vectorizer.fit(["很好用 OK", "不好"])
    names = set(vectorizer.get_feature_names_out())
    assert {"很", "好", "用", "OK", "不", "很 好", "好 用", "用 OK", "不 好"} == names


@pytest.mark.parametrize("segmenter", ["jieba", "char"])
def test_segmenter_travels_with_the_saved_vectorizer(tmp_path, segmenter):
    docs = [REVIEW, "房间很干净，服务不错", "价格太贵了，不推荐"]
    vectorizer = BagOfWordsVectorizer(segmenter=segmenter, weighting="tfidf")
    features = vectorizer.fit_transform(docs)
    vectorizer.save_pretrained(tmp_path)
    loaded = BagOfWordsVectorizer.from_pretrained(tmp_path)
    assert loaded.segmenter == segmenter
    np.testing.assert_allclose(loaded.transform(docs).toarray(), features.toarray())


def test_unknown_segmenter():
    with pytest.raises(UserError, match="segmenter must be one of none, jieba, char, got 'spaces'"):
        BagOfWordsVectorizer(segmenter="spaces")
