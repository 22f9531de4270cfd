"""Fast character n-gram TF-IDF with chi-squared feature selection, for the trainable classifier.

scikit-learn's char analyzer builds a Python string per n-gram (about 20 s for 10,000 messages of
400 characters). Here every 1-, 2- and 3-gram is an integer computed with numpy from the code points
(c1 << 42 | c2 << 21 | c3: Unicode needs 21 bits), so counting a corpus is a handful of array
operations. After fitting, only the selected n-grams are kept, which keeps the model small and
prediction cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import chi2
from sklearn.preprocessing import normalize

_BITS = 21  # enough for any Unicode code point
_EXACT_N = 3  # 3 x 21 bits fit in a signed 64-bit integer: exact ids up to trigrams
_MAX_N = 5  # longer n-grams are hashed into 62 bits (collisions are vanishingly rare at this size)
_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)
_HASH_TAG = np.int64(1) << np.int64(62)


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' code points joined with 0 separators, and the document index of each position."""
    # Code point 0 never survives clean_text, so it can mark document boundaries.
    joined = "\x00".join(t.lower().replace("\x00", " ") for t in texts) + "\x00"
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    boundary = codes == 0
    docs = np.concatenate(([0], np.cumsum(boundary)[:-1]))
    return codes, docs


def ngram_ids(texts: Sequence[str], n_min: int = 1, n_max: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram ids, document index) for every n-gram occurrence in texts."""
    if not 1 <= n_min <= n_max <= _MAX_N:
        raise ValueError(f"n-gram range must lie within 1..{_MAX_N}")
    codes, docs = _code_points(texts)
    ids_parts, doc_parts = [], []
    length = len(codes)
    for n in range(n_min, n_max + 1):
        if length < n:
            continue
        ids = np.zeros(length - n + 1, dtype=np.int64)
        valid = np.ones(length - n + 1, dtype=bool)
        for k in range(min(n, _EXACT_N)):
            window = codes[k : length - n + 1 + k]
            ids = (ids << _BITS) | window
            valid &= window != 0
        if n > _EXACT_N:
            hashed = ids.astype(np.uint64)
            with np.errstate(over="ignore"):
                for k in range(_EXACT_N, n):
                    window = codes[k : length - n + 1 + k]
                    hashed = (hashed * _HASH_MULT) ^ window.astype(np.uint64)
                    valid &= window != 0
            # Tag bit 62 keeps hashed ids apart from exact ones (which stay below 2**63 and use bit 62
            # only for trigrams starting beyond U+FFFFF, a private-use plane clean_text removes).
            ids = (hashed >> np.uint64(2)).astype(np.int64) | _HASH_TAG
        ids_parts.append(ids[valid])
        doc_parts.append(docs[: length - n + 1][valid])
    if not ids_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ids_parts), np.concatenate(doc_parts)


class CharNgramTfidf(BaseEstimator, TransformerMixin):
    """Character n-gram TF-IDF (l2-normalised) keeping the `top_k` n-grams by chi-squared.

    Equivalent to TfidfVectorizer(analyzer="char", ngram_range=(n_min, n_max), min_df=min_df) followed
    by selecting the k best columns by chi2 and normalising rows again, but an order of magnitude faster.
    """

    def __init__(
        self, n_min: int = 1, n_max: int = 3, min_df: int = 2, top_k: int | None = 50_000, sublinear_tf: bool = False
    ) -> None:
        self.n_min = n_min
        self.n_max = n_max
        self.min_df = min_df
        self.top_k = top_k
        self.sublinear_tf = sublinear_tf

    def _counts(self, texts: Sequence[str], vocabulary: np.ndarray) -> sparse.csr_matrix:
        ids, docs = ngram_ids(texts, self.n_min, self.n_max)
        columns = np.searchsorted(vocabulary, ids)
        columns = np.minimum(columns, max(len(vocabulary) - 1, 0))
        known = vocabulary[columns] == ids if len(vocabulary) else np.zeros(len(ids), dtype=bool)
        matrix = sparse.coo_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), (docs[known], columns[known])),
            shape=(len(texts), len(vocabulary)),
        )
        return matrix.tocsr()  # duplicates are summed: term counts

    def _weigh(self, counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
        tf = counts.copy()
        if self.sublinear_tf:
            tf.data = 1.0 + np.log(tf.data)
        return normalize(tf @ sparse.diags(idf.astype(np.float32)), copy=False)

    def count(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
        """Raw n-gram counts of texts over every n-gram they contain, and that vocabulary (sorted ids).

        Cross-validation counts the corpus once with this and fits each fold with `fit_counts`.
        """
        texts = list(texts)
        ids, docs = ngram_ids(texts, self.n_min, self.n_max)
        vocabulary, columns = np.unique(ids, return_inverse=True)
        counts = sparse.coo_matrix(
            (np.ones(len(ids), dtype=np.float32), (docs, columns)), shape=(len(texts), len(vocabulary))
        ).tocsr()
        return counts, vocabulary

    def fit_counts(
        self, counts: sparse.csr_matrix, vocabulary: np.ndarray, y: Sequence[str] | None = None
    ) -> sparse.csr_matrix:
        """Fit on rows of a `count` matrix (as if on those texts alone); return their TF-IDF rows.

        Exactly what fitting on the texts gives: n-grams absent from these rows have document frequency
        0 and fall below min_df.
        """
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=len(vocabulary))
        keep = np.flatnonzero(df >= max(min(self.min_df, max(n, 1)), 1))
        counts, df = counts[:, keep], df[keep]
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0  # smooth idf, as scikit-learn's default
        matrix = self._weigh(counts, idf)
        if y is not None and self.top_k and self.top_k < len(keep):
            scores, _ = chi2(matrix, list(y))
            scores = np.nan_to_num(scores, nan=0.0)
            chosen = np.sort(np.argpartition(-scores, self.top_k - 1)[: self.top_k])
            keep, idf = keep[chosen], idf[chosen]
            matrix = normalize(matrix[:, chosen], copy=False)
        self.vocabulary_ = vocabulary[keep]
        self.idf_ = idf
        # Which columns of the `count` matrix this fit uses; only for transform_counts, not saved.
        self.columns_ = keep
        return matrix

    def transform_counts(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """TF-IDF rows for rows of the same `count` matrix that fit_counts saw."""
        return self._weigh(counts[:, self.columns_], self.idf_)

    def fit(self, texts: Sequence[str], y: Sequence[str] | None = None) -> CharNgramTfidf:
        """Learn the vocabulary, document frequencies and, given labels, the selected n-grams."""
        self.fit_transform(texts, y)
        return self

    def fit_transform(self, texts: Sequence[str], y: Sequence[str] | None = None, **_: object) -> sparse.csr_matrix:
        """Fit and return the training matrix (saves counting the corpus twice)."""
        counts, vocabulary = self.count(texts)
        matrix = self.fit_counts(counts, vocabulary, y)
        del self.columns_  # meaningless outside this corpus; keeps the saved model small
        return matrix

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF rows over the kept n-grams."""
        texts = list(texts)
        return self._weigh(self._counts(texts, self.vocabulary_), self.idf_)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("columns_", None)
        return state


class KeywordFeatures(BaseEstimator, TransformerMixin):
    """The taxonomy's keywords as features: what the county's own words say, next to raw n-grams.

    Two blocks, each l2-normalised and scaled: TF-IDF (sublinear) over the keywords found, and the
    lexicon's second-level category profile (log-scaled keyword weights per subcategory). Longer domain
    terms (耕地地力保护补贴, 新农合) are single features here where n-grams see only their pieces, and the
    profile carries what the taxonomy knows about which words belong together. The keyword table is
    copied into the fitted transformer, so a saved model does not change when the taxonomy file does.
    """

    def __init__(
        self,
        keyword_weight: float = 0.4,
        profile_weight: float = 0.1,
        table: dict[str, list[tuple[str, str | None, float]]] | None = None,
    ) -> None:
        self.keyword_weight = keyword_weight
        self.profile_weight = profile_weight
        self.table = table

    def _scan(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        from demand.normalize import match_text

        rows, cols, prow, pcol, pval = [], [], [], [], []
        for i, text in enumerate(texts):
            for _, _, word in self.scanner_.finditer(match_text(text)):
                rows.append(i)
                cols.append(self.index_[word])
                for column, weight in self.profile_of_[word]:
                    prow.append(i)
                    pcol.append(column)
                    pval.append(weight)
        counts = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), len(self.index_))
        )
        profile = sparse.csr_matrix(
            (np.asarray(pval, dtype=np.float32), (prow, pcol)), shape=(len(texts), self.n_profile_)
        )
        return counts, profile

    def _prepare(self) -> None:
        from demand.lexicon import LexiconClassifier
        from demand.taxonomy import load_taxonomy
        from demand.trie import KeywordScanner

        table = self.table if self.table is not None else LexiconClassifier(load_taxonomy()).table
        self.words_ = sorted(table)
        self.index_ = {word: i for i, word in enumerate(self.words_)}
        subs = sorted({(cat, sub) for entries in table.values() for cat, sub, _ in entries if sub})
        sub_index = {key: i for i, key in enumerate(subs)}
        self.n_profile_ = len(subs)
        self.profile_of_ = {
            word: [(sub_index[(cat, sub)], weight) for cat, sub, weight in entries if sub]
            for word, entries in table.items()
        }
        self.scanner_ = KeywordScanner(self.words_)

    def clone_prepared(self) -> KeywordFeatures:
        """An unfitted copy sharing this one's keyword index (built by count or fit)."""
        other = KeywordFeatures(self.keyword_weight, self.profile_weight, self.table)
        for name in ("words_", "index_", "n_profile_", "profile_of_", "scanner_"):
            setattr(other, name, getattr(self, name))
        return other

    def count(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """(keyword counts, subcategory profile) of texts, for fit_counts / transform_counts."""
        if not hasattr(self, "scanner_"):
            self._prepare()
        return self._scan(list(texts))

    def fit_counts(self, counts: sparse.csr_matrix) -> KeywordFeatures:
        """Learn keyword document frequencies from rows of a `count` result."""
        df = np.bincount(counts.indices, minlength=len(self.words_))
        self.idf_ = (np.log((1.0 + counts.shape[0]) / (1.0 + df)) + 1.0).astype(np.float32)
        return self

    def transform_counts(self, counts: sparse.csr_matrix, profile: sparse.csr_matrix) -> sparse.csr_matrix:
        """[keyword TF-IDF x keyword_weight | subcategory profile x profile_weight]."""
        counts = counts.copy()
        if counts.nnz:
            counts.data = 1.0 + np.log(counts.data)
        keywords = normalize(counts @ sparse.diags(self.idf_), copy=False) * self.keyword_weight
        profile = profile.copy()
        profile.data = np.log1p(profile.data)
        profile = normalize(profile, copy=False) * self.profile_weight
        return sparse.hstack([keywords, profile], format="csr", dtype=np.float32)

    def fit(self, texts: Sequence[str], y: Sequence[str] | None = None) -> KeywordFeatures:
        """Index the keywords and learn their document frequencies."""
        self._prepare()
        counts, _ = self._scan(list(texts))
        return self.fit_counts(counts)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """[keyword TF-IDF x keyword_weight | subcategory profile x profile_weight]."""
        return self.transform_counts(*self._scan(list(texts)))
