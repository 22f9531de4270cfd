"""Choosing the trainable model honestly: repeated stratified cross-validation against a plain baseline.

One fixed train/test split is one draw: on a few thousand messages two models' macro-F1 move by about
±0.01 from split to split, which is as large as the differences being chosen between. So every
candidate is scored on the same `repeats` × `folds` stratified splits (5 × 5 by default), and a
candidate more complex than the baseline — character 1–3-gram TF-IDF straight into a linear SVM — is
shipped only when its mean beats the baseline's mean by more than the spread (the standard deviation of
the baseline's per-fold scores). Otherwise the baseline ships: it is the model most likely to hold up
on messages nobody has seen.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import RepeatedStratifiedKFold

from demand.classifier import Corpus, ModelConfig

BASELINE = "baseline: char 1-3-gram TF-IDF + LinearSVC"

# progress(done, total, what)
Progress = Callable[[int, int, str], None]


def baseline_config() -> ModelConfig:
    """The plain model: every character 1–3-gram, TF-IDF, l2, LinearSVC(C=1). No selection, no keywords."""
    return ModelConfig(min_df=1, top_k=None, keyword_weight=0.0, profile_weight=0.0)


def candidate_configs() -> dict[str, ModelConfig]:
    """The models measured against each other (the first is the baseline)."""
    return {
        BASELINE: baseline_config(),
        "chi2 top 30k + taxonomy keywords (the model before issue 19)": ModelConfig(),
        "chi2 top 30k + keywords, NB-SVM": ModelConfig(nb_weighting=True),
    }


@dataclass
class CandidateScore:
    """Macro-F1 of one candidate on every fold of the repeated cross-validation."""

    name: str
    config: ModelConfig
    scores: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Mean macro-F1 over all folds."""
        return statistics.fmean(self.scores) if self.scores else 0.0

    @property
    def spread(self) -> float:
        """Standard deviation of the per-fold macro-F1."""
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0


@dataclass
class Selection:
    """Every candidate's scores, the one chosen and why."""

    candidates: list[CandidateScore]
    chosen: CandidateScore
    reason: str

    @property
    def baseline(self) -> CandidateScore:
        """The baseline's scores."""
        return self.candidates[0]


def repeated_cv(
    texts: Sequence[str],
    labels: Sequence[str],
    configs: dict[str, ModelConfig] | None = None,
    *,
    folds: int = 5,
    repeats: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[CandidateScore]:
    """Score each config on the same repeats × folds stratified splits (paired, so differences are fair)."""
    configs = configs or candidate_configs()
    y = np.asarray(labels)
    splits = list(RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed).split(texts, y))
    total = len(configs) * len(splits)
    notify = progress or (lambda done, total, what: None)
    results = []
    done = 0
    for name, config in configs.items():
        corpus = Corpus(texts, config)  # counted once; each fold fits on row subsets
        result = CandidateScore(name, config)
        for train_rows, test_rows in splits:
            notify(done, total, f"{name}: fold {len(result.scores) + 1}/{len(splits)}")
            pipeline, decide = corpus.fit(train_rows, y[train_rows])
            predicted = np.asarray(pipeline.classes_)[decide(test_rows).argmax(axis=1)]
            result.scores.append(float(f1_score(y[test_rows], predicted, average="macro", zero_division=0)))
            done += 1
        results.append(result)
    notify(total, total, "done")
    return results


def choose(candidates: list[CandidateScore]) -> Selection:
    """The model to ship. Candidates are listed simplest first, the baseline first of all.

    Take the simplest candidate whose mean is within the best mean's spread (a difference smaller than
    the fold-to-fold noise is no reason for more complexity); ship it only if it beats the baseline by
    more than the baseline's spread, else ship the baseline.
    """
    baseline = candidates[0]
    best = max(candidates, key=lambda c: c.mean)
    simplest = next(c for c in candidates if c.mean >= best.mean - best.spread)
    margin = simplest.mean - baseline.mean
    if simplest is baseline:
        return Selection(candidates, baseline, f"the baseline is within the spread of the best ({best.name})")
    if margin > baseline.spread:
        why = f"beats the baseline by {margin:.4f} > spread {baseline.spread:.4f}"
        if simplest is not best:
            why += f"; {best.name} is better by only {best.mean - simplest.mean:.4f}, within its spread"
        return Selection(candidates, simplest, why)
    return Selection(
        candidates,
        baseline,
        f"{simplest.name} beats the baseline by {margin:.4f}, within the spread "
        f"{baseline.spread:.4f}: the baseline ships",
    )
