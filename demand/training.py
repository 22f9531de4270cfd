"""Training from a CSV of past work orders: read, cross-validate, fit, report.

The CSV needs `text` and `label` columns (`category` is accepted for `label`; a `title` column, when
present, is put in front of the text, twice, because titles say the most). Progress is reported through a
callback so the CLI can draw a bar and tests can stay silent.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from demand.classifier import Corpus, ModelConfig, TextClassifier, fit_temperature, model_text, timed

# progress(done, total, what)
Progress = Callable[[int, int, str], None]


def _silent(done: int, total: int, what: str) -> None:
    pass


class TrainingDataError(ValueError):
    """The training file cannot be used; the message says why in terms a county admin can act on."""


@dataclass
class CategoryScore:
    """Cross-validated scores for one label."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class TrainingReport:
    """What training measured. Cross-validated figures are None when the data was too small to split."""

    n_samples: int
    labels: list[str]
    folds: int
    accuracy: float | None = None
    macro_f1: float | None = None
    per_category: list[CategoryScore] = field(default_factory=list)
    fit_seconds: float = 0.0
    cv_seconds: float = 0.0
    count_seconds: float = 0.0
    skipped_rows: int = 0
    dropped_labels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored beside the model)."""
        return {
            "n_samples": self.n_samples,
            "labels": self.labels,
            "folds": self.folds,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "fit_seconds": round(self.fit_seconds, 2),
            "cv_seconds": round(self.cv_seconds, 2),
            "count_seconds": round(self.count_seconds, 2),
            "skipped_rows": self.skipped_rows,
            "dropped_labels": self.dropped_labels,
            "per_category": [s.__dict__ for s in self.per_category],
        }


def read_training_csv(path: str | os.PathLike) -> tuple[list[str], list[str], int]:
    """(texts, labels, skipped rows) from a CSV with text,label columns (UTF-8, with or without BOM)."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise TrainingDataError(f"cannot open {path}: {exc.strerror}") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        except (csv.Error, UnicodeDecodeError) as exc:
            raise TrainingDataError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
        text_col = columns.get("text")
        label_col = columns.get("label") or columns.get("category")
        title_col = columns.get("title")
        if not text_col or not label_col:
            raise TrainingDataError(f"{path}: needs the columns text,label (found: {', '.join(columns) or 'none'})")
        texts, labels, skipped = [], [], 0
        try:
            for row in reader:
                text = (row.get(text_col) or "").strip()
                label = (row.get(label_col) or "").strip()
                if title_col and (row.get(title_col) or "").strip():
                    # Twice: a title names the matter in a few words, the text then rambles.
                    title = row[title_col].strip()
                    text = f"{title}。{title}。{text}"
                if not text or not label:
                    skipped += 1
                    continue
                texts.append(text)
                labels.append(label)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise TrainingDataError(f"{path}: broken CSV near row {len(texts) + skipped + 2} ({exc})") from None
    return texts, labels, skipped


def _scores(true: Sequence[str], predicted: Sequence[str], labels: list[str]) -> list[CategoryScore]:
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    return [
        CategoryScore(label, float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=False)
    ]


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    folds: int = 5,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
    min_per_label: int = 2,
) -> tuple[TextClassifier, TrainingReport]:
    """Cross-validate, then fit on everything. Labels with fewer than `min_per_label` examples are dropped."""
    config = config or ModelConfig()
    counts = Counter(labels)
    dropped = {label: n for label, n in counts.items() if n < min_per_label}
    pairs = [(t, label) for t, label in zip(texts, labels, strict=False) if label not in dropped]
    if len({label for _, label in pairs}) < 2:
        raise TrainingDataError("training needs at least two labels with two or more examples each")
    texts = [t for t, _ in pairs]
    labels = [label for _, label in pairs]
    y = np.array(labels)
    kept = sorted(set(labels))
    folds = max(0, min(folds, min(Counter(labels).values())))
    total = folds + 1
    report = TrainingReport(n_samples=len(texts), labels=kept, folds=folds, dropped_labels=dropped)
    notify: Progress = progress or _silent

    # Count the corpus once; every fold and the final model fit on row subsets of the same counts.
    notify(0, total, "counting n-grams and keywords")
    corpus, report.count_seconds = timed(lambda: Corpus(texts, config))
    temperature = None
    if folds >= 2:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.random_state)
        predicted = np.empty(len(texts), dtype=object)
        decisions = np.zeros((len(texts), len(kept)))
        for i, (train_idx, test_idx) in enumerate(splitter.split(texts, y)):
            notify(i, total, f"cross-validation fold {i + 1}/{folds}")
            (pipeline, decide), seconds = timed(partial(corpus.fit, train_idx, y[train_idx]))
            report.cv_seconds += seconds
            scores = decide(test_idx)
            classes = [str(c) for c in pipeline.classes_]
            predicted[test_idx] = np.array(classes, dtype=object)[scores.argmax(axis=1)]
            # Folds always hold every label (stratified, min count >= folds), so columns line up.
            decisions[np.ix_(test_idx, [kept.index(c) for c in classes])] = scores
        report.accuracy = float(accuracy_score(y, predicted))
        report.macro_f1 = float(f1_score(y, predicted, labels=kept, average="macro", zero_division=0))
        report.per_category = _scores(list(y), list(predicted), kept)
        temperature = fit_temperature(decisions, labels, kept)

    notify(folds, total, "fitting the final model")
    (pipeline, _), report.fit_seconds = timed(lambda: corpus.fit(np.arange(len(texts)), y))
    model = TextClassifier(
        pipeline=pipeline,
        labels=[str(c) for c in pipeline.classes_],
        temperature=temperature or 3.0,
        config=config.to_dict(),
    )
    model.metadata["report"] = report.to_dict()
    notify(total, total, "done")
    return model, report


def evaluate(model: TextClassifier, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-label scores of a trained model on held-out data."""
    predicted = [label for label, _ in model.predict(list(texts))]
    kept = sorted(set(labels) | set(predicted))
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=sorted(set(labels)), average="macro", zero_division=0)),
        "per_category": _scores(labels, predicted, kept),
    }


# ---- retraining from staff corrections ------------------------------------------------------------------

# One message in VALIDATION_SHARE belongs to the fixed validation fold.
VALIDATION_SHARE = 5
# Below this many validation messages (or two labels) a comparison says nothing; the new model is taken.
MIN_VALIDATION = 20


def in_validation_fold(text: str, share: int = VALIDATION_SHARE) -> bool:
    """Whether a message belongs to the fixed validation fold.

    Decided by a hash of the message text, not by a random split: the fold stays the same as the history
    grows and corrections arrive, and no model trained here ever sees it, so old and new models are
    compared on equal terms.
    """
    digest = hashlib.sha1(model_text(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % share == 0


def apply_corrections(
    texts: Sequence[str], labels: Sequence[str], corrections: Iterable[tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """History with staff corrections applied: a corrected message takes the staff's label; new ones are added."""
    texts, labels = list(texts), list(labels)
    index = {model_text(t): i for i, t in enumerate(texts)}
    for text, label in corrections:
        if not text or not label:
            continue
        key = model_text(text)
        if key in index:
            labels[index[key]] = label
        else:
            index[key] = len(texts)
            texts.append(text)
            labels.append(label)
    return texts, labels


@dataclass
class Comparison:
    """The new model against the one in use, on the fixed validation fold."""

    new_macro_f1: float | None
    current_macro_f1: float | None
    n_validation: int
    replaced: bool
    reason: str
    report: TrainingReport
    model: TextClassifier
    model_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for a job log or the console)."""
        return {
            "new_macro_f1": self.new_macro_f1,
            "current_macro_f1": self.current_macro_f1,
            "n_validation": self.n_validation,
            "replaced": self.replaced,
            "reason": self.reason,
            "model_path": str(self.model_path) if self.model_path else None,
            "cross_validated_macro_f1": self.report.macro_f1,
            "n_samples": self.report.n_samples,
        }


def _macro_f1(model: TextClassifier, texts: Sequence[str], labels: Sequence[str]) -> float:
    predicted = [label for label, _ in model.predict(list(texts))]
    return float(f1_score(list(labels), predicted, labels=sorted(set(labels)), average="macro", zero_division=0))


def retrain_if_better(
    texts: Sequence[str],
    labels: Sequence[str],
    model_dir: str | os.PathLike,
    *,
    corrections: Iterable[tuple[str, str]] = (),
    folds: int = 5,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> Comparison:
    """Train on history plus corrections (minus the validation fold); put it in use only if it scores at
    least as well as the model in use on the validation fold (or `force`, or no model is in use).

    Framework-free: the scheduled job passes the county's history and the console's corrections
    (更正识别结果) as (text, label) pairs, and logs `Comparison.to_dict()`.
    """
    from demand.classifier import load_latest, save_model

    texts, labels = apply_corrections(texts, labels, corrections)
    fold = [in_validation_fold(t) for t in texts]
    train_x = [t for t, v in zip(texts, fold, strict=True) if not v]
    train_y = [label for label, v in zip(labels, fold, strict=True) if not v]
    valid_x = [t for t, v in zip(texts, fold, strict=True) if v]
    valid_y = [label for label, v in zip(labels, fold, strict=True) if v]
    comparable = len(valid_x) >= MIN_VALIDATION and len(set(valid_y)) >= 2
    if not comparable:  # too little data to hold a fold out: train on everything, nothing to compare on
        train_x, train_y = texts, labels
    model, report = train(train_x, train_y, folds=folds, config=config, progress=progress)
    new_f1 = _macro_f1(model, valid_x, valid_y) if comparable else None
    try:
        current = load_latest(model_dir)
    except Exception:  # an unreadable model in use is no reason to keep it
        current = None
    current_f1 = _macro_f1(current, valid_x, valid_y) if comparable and current is not None else None
    if force:
        replaced, reason = True, "forced"
    elif current is None:
        replaced, reason = True, "no model in use"
    elif new_f1 is None or current_f1 is None:
        replaced, reason = True, f"validation fold too small to compare ({len(valid_x)} messages)"
    elif new_f1 >= current_f1:
        replaced, reason = True, f"new {new_f1:.4f} >= current {current_f1:.4f} on the validation fold"
    else:
        replaced, reason = False, f"new {new_f1:.4f} < current {current_f1:.4f} on the validation fold: kept"
    model.metadata["validation"] = {"macro_f1": new_f1, "n": len(valid_x), "current_macro_f1": current_f1}
    comparison = Comparison(new_f1, current_f1, len(valid_x), replaced, reason, report, model)
    if replaced:
        comparison.model_path = save_model(model, model_dir)
    return comparison
