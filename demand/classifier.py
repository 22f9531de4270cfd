"""The trainable classifier: a county's own work-order history → a text model, saved versioned on disk.

Model: TF-IDF over character 1–3-grams (Chinese needs no word segmentation for this to work) →
the most class-informative n-grams by chi-squared (dropping the long tail of n-grams that occur in
every category is what lifts it above a plain linear SVM on long, rambling messages) → L2 norm →
linear SVM. The n-gram counting is our own numpy code (demand.features), several times faster than
scikit-learn's analyzer. Confidence is a softmax over the SVM's decision values with a temperature fitted on
cross-validated predictions, so 0.8 means roughly "right 8 times in 10".

On disk, under a model folder::

    classifier-v0003.pkl    the model (pickle; only ever written by this module)
    classifier-v0003.json   its metadata and training report, for people
    LATEST                  the file name of the model in use

A new model is written to a temporary file, fsynced and renamed into place, and only then is LATEST
replaced (also by rename), so a reader sees the old model or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn import __version__ as sklearn_version
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from demand.features import CharNgramTfidf, KeywordFeatures
from demand.normalize import clean_text

MODEL_PREFIX = "classifier-v"
LATEST_FILE = "LATEST"
KEEP_VERSIONS = 5
FORMAT_VERSION = 1
# Long pastes: the first part says what the message is about; the rest costs time and adds noise.
MODEL_MAX_CHARS = 3000
_VERSION_RE = re.compile(r"^classifier-v(\d+)\.pkl$")


def model_text(text: object) -> str:
    """The text as the model sees it (module-level so pickled models can find it)."""
    return clean_text(text, MODEL_MAX_CHARS)


def clean_all(texts: Sequence[str]) -> list[str]:
    """model_text over a batch (a pipeline step; module-level so it pickles by name)."""
    return [model_text(t) for t in texts]


@dataclass
class ModelConfig:
    """Feature and model settings; the defaults are what the benchmark measures."""

    ngram_min: int = 1
    ngram_max: int = 3
    min_df: int = 2
    top_k: int = 30_000
    # The taxonomy's keywords as extra features (see demand.features.KeywordFeatures); 0 turns them off.
    keyword_weight: float = 0.4
    profile_weight: float = 0.1
    sublinear_tf: bool = False
    class_weight: str | None = None
    C: float = 1.0
    random_state: int = 0
    # NB-SVM (Wang & Manning 2012): each class's SVM sees the features scaled by their naive-Bayes
    # log-count ratio for that class.
    nb_weighting: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the metadata file."""
        return dict(self.__dict__)


def build_pipeline(config: ModelConfig, n_samples: int) -> Pipeline:
    """The untrained scikit-learn pipeline for a training set of n_samples."""
    features: list[tuple[str, Any]] = [
        (
            "chars",
            CharNgramTfidf(
                n_min=config.ngram_min,
                n_max=config.ngram_max,
                min_df=config.min_df if n_samples >= 50 else 1,
                top_k=config.top_k,
                sublinear_tf=config.sublinear_tf,
            ),
        ),
    ]
    if config.keyword_weight or config.profile_weight:
        features.append(
            ("keywords", KeywordFeatures(keyword_weight=config.keyword_weight, profile_weight=config.profile_weight))
        )
    return Pipeline(
        [
            ("clean", FunctionTransformer(clean_all)),
            ("features", FeatureUnion(features)),
            ("svm", _svm(config)),
        ]
    )


def _svm(config: ModelConfig) -> Any:
    if config.nb_weighting:
        return NBLinearSVC(C=config.C, class_weight=config.class_weight, random_state=config.random_state)
    return LinearSVC(C=config.C, class_weight=config.class_weight, random_state=config.random_state)


class NBLinearSVC(ClassifierMixin, BaseEstimator):
    """One-vs-rest linear SVMs on naive-Bayes-scaled features (NB-SVM), multi-class.

    For class c, r_c = log((p_c / |p_c|) / (q_c / |q_c|)) from feature presence in / outside the class
    (add-one smoothed); the class's SVM is trained on X * r_c. Since (X * r_c) . w_c = X . (r_c * w_c),
    the fitted `coef_` holds r_c * w_c, so prediction is one sparse product like a plain LinearSVC.
    """

    def __init__(
        self, C: float = 1.0, class_weight: str | None = None, random_state: int = 0, alpha: float = 1.0
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.random_state = random_state
        self.alpha = alpha

    def fit(self, X: Any, labels: Sequence[str]) -> NBLinearSVC:
        """Fit one scaled binary SVM per class."""
        X = sparse.csr_matrix(X)
        y = np.asarray(labels)
        self.classes_ = np.unique(y)
        present = X.copy()
        present.data = np.ones_like(present.data)
        coefs, intercepts = [], []
        for label in self.classes_:
            inside = y == label
            p = self.alpha + np.asarray(present[inside].sum(axis=0)).ravel()
            q = self.alpha + np.asarray(present[~inside].sum(axis=0)).ravel()
            r = np.log((p / p.sum()) / (q / q.sum()))
            svm = LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)
            svm.fit(X @ sparse.diags(r), inside.astype(int))
            coefs.append(svm.coef_.ravel() * r)
            intercepts.append(svm.intercept_[0])
        self.coef_ = np.vstack(coefs)
        self.intercept_ = np.asarray(intercepts)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """One column per class."""
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict(self, X: Any) -> np.ndarray:
        """The class with the highest decision value."""
        return self.classes_[self.decision_function(X).argmax(axis=1)]


class Corpus:
    """Training texts featurised once, so cross-validation folds and the final model fit on subsets cheaply.

    `fit(rows, labels)` returns exactly what build_pipeline(...).fit(texts[rows], labels) would (the
    features are counted from the same texts), without counting the corpus again for every fold.
    """

    def __init__(self, texts: Sequence[str], config: ModelConfig) -> None:
        self.config = config
        clean = clean_all(texts)
        self._chars = self._char_features(len(clean))
        self.char_counts, self.char_vocabulary = self._chars.count(clean)
        self._keywords = None
        if config.keyword_weight or config.profile_weight:
            self._keywords = KeywordFeatures(config.keyword_weight, config.profile_weight)
            self.keyword_counts, self.keyword_profile = self._keywords.count(clean)

    def _char_features(self, n_samples: int) -> CharNgramTfidf:
        config = self.config
        return CharNgramTfidf(
            n_min=config.ngram_min,
            n_max=config.ngram_max,
            min_df=config.min_df if n_samples >= 50 else 1,
            top_k=config.top_k,
            sublinear_tf=config.sublinear_tf,
        )

    def fit(self, row_ids: Sequence[int], labels: Sequence[str]) -> tuple[Pipeline, Any]:
        """A fitted pipeline trained on `row_ids`, and a function giving decision values for other rows."""
        rows = np.asarray(row_ids)
        chars = self._char_features(len(rows))
        blocks = [chars.fit_counts(self.char_counts[rows], self.char_vocabulary, labels)]
        union: list[tuple[str, Any]] = [("chars", chars)]
        keywords = None
        if self._keywords is not None:
            keywords = self._keywords.clone_prepared()
            keywords.fit_counts(self.keyword_counts[rows])
            blocks.append(keywords.transform_counts(self.keyword_counts[rows], self.keyword_profile[rows]))
            union.append(("keywords", keywords))
        config = self.config
        svm = _svm(config)
        svm.fit(sparse.hstack(blocks, format="csr"), labels)

        def decide(other_ids: Sequence[int]) -> np.ndarray:
            other = np.asarray(other_ids)
            parts = [chars.transform_counts(self.char_counts[other])]
            if keywords is not None:
                parts.append(keywords.transform_counts(self.keyword_counts[other], self.keyword_profile[other]))
            scores = svm.decision_function(sparse.hstack(parts, format="csr"))
            return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores

        pipeline = Pipeline(
            [
                ("clean", FunctionTransformer(clean_all).fit([""])),
                ("features", FeatureUnion(union)),
                ("svm", svm),
            ]
        )
        return pipeline, decide


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _decision_matrix(pipeline: Pipeline, texts: Sequence[str]) -> np.ndarray:
    scores = pipeline.decision_function(texts)
    if scores.ndim == 1:  # two classes: liblinear returns one column, positive = classes_[1]
        scores = np.column_stack([-scores, scores])
    return scores


def fit_temperature(scores: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> float:
    """The softmax temperature that best predicts held-out labels (minimum log loss over a grid)."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(label, -1) for label in labels])
    ok = y >= 0
    if not ok.any():
        return 3.0
    best, best_loss = 3.0, float("inf")
    for temperature in np.geomspace(0.5, 30, 40):
        p = _softmax(scores[ok], temperature)[np.arange(ok.sum()), y[ok]]
        loss = -np.log(np.clip(p, 1e-9, 1.0)).mean()
        if loss < best_loss:
            best, best_loss = float(temperature), loss
    return best


@dataclass
class TextClassifier:
    """A trained model with what is needed to use and describe it."""

    pipeline: Pipeline
    labels: list[str]
    temperature: float = 3.0
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        config: ModelConfig | None = None,
        temperature: float | None = None,
    ) -> TextClassifier:
        """Train on texts and labels (at least two distinct labels)."""
        config = config or ModelConfig()
        if len(set(labels)) < 2:
            raise ValueError("training needs at least two different labels")
        pipeline = build_pipeline(config, len(texts))
        pipeline.fit(list(texts), list(labels))
        classes = [str(c) for c in pipeline.classes_]
        return cls(pipeline=pipeline, labels=classes, temperature=temperature or 3.0, config=config.to_dict())

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        """Raw decision values, one column per label."""
        steps = self.pipeline.named_steps
        union, svm = steps.get("features"), steps.get("svm")
        if not isinstance(union, FeatureUnion) or not hasattr(svm, "coef_"):
            return _decision_matrix(self.pipeline, list(texts))
        # The same arithmetic as pipeline.decision_function, minus scikit-learn's per-call machinery
        # (parallel wrappers, validation), which is most of the cost for one short message.
        clean = clean_all(texts)
        features = sparse.hstack([step.transform(clean) for _, step in union.transformer_list], format="csr")
        scores = np.asarray(features @ svm.coef_.T) + svm.intercept_
        return np.column_stack([-scores[:, 0], scores[:, 0]]) if scores.shape[1] == 1 else scores

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated-ish probabilities, one column per label (see module docstring)."""
        return _softmax(self.decision(texts), self.temperature)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, confidence) for each text."""
        if not texts:
            return []
        proba = self.predict_proba(texts)
        best = proba.argmax(axis=1)
        return [(self.labels[i], float(proba[row, i])) for row, i in enumerate(best)]

    def predict_one(self, text: str) -> tuple[str, float]:
        """(label, confidence) for one text."""
        return self.predict([text])[0]


# ---- storage ------------------------------------------------------------------------------------------------


def _versions(model_dir: Path) -> list[tuple[int, Path]]:
    if not model_dir.is_dir():
        return []
    found = []
    for path in model_dir.iterdir():
        match = _VERSION_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model: TextClassifier, model_dir: str | os.PathLike, keep: int = KEEP_VERSIONS) -> Path:
    """Write the model as the next version and make it the one in use; old versions beyond `keep` go."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    versions = _versions(model_dir)
    version = (versions[-1][0] + 1) if versions else 1
    path = model_dir / f"{MODEL_PREFIX}{version:04d}.pkl"
    model.metadata = {
        **model.metadata,
        "version": version,
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn": sklearn_version,
        "labels": model.labels,
        "config": model.config,
        "temperature": model.temperature,
    }
    _atomic_write(path, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    _atomic_write(
        path.with_suffix(".json"), json.dumps(model.metadata, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    )
    _atomic_write(model_dir / LATEST_FILE, path.name.encode("utf-8"))
    for old_version, old_path in _versions(model_dir)[:-keep] if keep > 0 else []:
        if old_version != version:
            old_path.unlink(missing_ok=True)
            old_path.with_suffix(".json").unlink(missing_ok=True)
    return path


def latest_path(model_dir: str | os.PathLike) -> Path | None:
    """The model file in use: the one LATEST names, else the highest version; None when there is none."""
    model_dir = Path(model_dir)
    pointer = model_dir / LATEST_FILE
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    if name and _VERSION_RE.match(name) and (model_dir / name).is_file():
        return model_dir / name
    versions = _versions(model_dir)
    return versions[-1][1] if versions else None


def latest_stamp(model_dir: str | os.PathLike) -> tuple[str, int] | None:
    """A cheap identity of the model in use (name, mtime), to notice a retrained one."""
    path = latest_path(model_dir)
    if path is None:
        return None
    try:
        return path.name, path.stat().st_mtime_ns
    except OSError:
        return None


def load_model(path: str | os.PathLike) -> TextClassifier:
    """Load a model file written by save_model (trusted: it lives in the instance folder)."""
    with open(path, "rb") as handle:
        model = pickle.load(handle)  # noqa: S301 - our own file, written by save_model
    if not isinstance(model, TextClassifier):
        raise TypeError(f"{path} is not a demand classifier")
    return model


def load_latest(model_dir: str | os.PathLike) -> TextClassifier | None:
    """The model in use under model_dir, or None."""
    path = latest_path(model_dir)
    return load_model(path) if path else None


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run fn and return (result, seconds) — used by training reports and the benchmark."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start
