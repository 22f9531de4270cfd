"""Learning from staff: the console's corrections (更正识别结果, including confirmations out of 待分类)
plus the county's history retrain the category model; the new model goes into use only if it scores at
least as well on the fixed validation fold (demand.training.retrain_if_better).

Run on a schedule by jobs.classifier. Writes one audit row per retraining; the caller commits.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import AuditEvent, audit, db, root_node, subtree_codes
from reports.ledger import corrected_rows

# The history the model in use was trained on, kept beside it by `flask train-classifier`.
HISTORY_FILE = "history.csv"
# Fewer corrections than this change too little to be worth a retraining.
MIN_CORRECTIONS = 20
RETRAINED, KEPT = "classifier.retrained", "classifier.kept"
AUDIT_SUBJECT = "classifier:category"


@dataclass
class RetrainOutcome:
    """Whether a retraining ran, why (or why not), and the comparison when it ran."""

    ran: bool
    reason: str
    corrections: int
    comparison: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ran": self.ran, "reason": self.reason, "corrections": self.corrections, **self.comparison}


def history_path(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / HISTORY_FILE


def county_corrections() -> list[tuple[str, str]]:
    """(text, label) for every ticket staff corrected, county-wide (the same rows as the console export)."""
    root = root_node()
    return corrected_rows(subtree_codes(root.code)) if root else []


def fingerprint(rows: list[tuple[str, str]], history: Path | None = None) -> str:
    """Identity of the training input: the corrections, and the history file's size and time."""
    digest = hashlib.sha1()
    if history is not None and history.is_file():
        stat = history.stat()
        digest.update(f"{history}:{stat.st_size}:{stat.st_mtime_ns}\x1e".encode())
    for text, label in sorted(rows):
        digest.update(f"{text}\x1f{label}\x1e".encode())
    return digest.hexdigest()


def _last_fingerprint() -> str | None:
    """The corrections the last retraining used (from its audit row)."""
    data = db.session.execute(
        db.select(AuditEvent.data)
        .filter(AuditEvent.action.in_([RETRAINED, KEPT]), AuditEvent.subject == AUDIT_SUBJECT)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return (data or {}).get("corrections_fingerprint")


def retrain_from_corrections(
    model_dir: str | os.PathLike,
    *,
    history: str | os.PathLike | None = None,
    min_corrections: int = MIN_CORRECTIONS,
    actor: str = "system",
) -> RetrainOutcome:
    """Retrain the county's model from its history plus the staff corrections, when there is reason to.

    Does nothing (and says why) with fewer than `min_corrections` corrections, when nothing changed since
    the last retraining, or with neither a history file nor a model in use (a model learnt from a few
    corrections alone would do worse than the built-in lexicon).
    """
    # scikit-learn is loaded only when a retraining runs (~160 MiB; web processes import this module).
    from demand.classifier import latest_path
    from demand.training import TrainingDataError, read_training_csv, retrain_if_better

    corrections = county_corrections()
    count = len(corrections)
    if count < min_corrections:
        return RetrainOutcome(False, f"{count} corrections, fewer than the {min_corrections} needed to retrain", count)
    source = Path(history) if history else history_path(model_dir)
    stamp = fingerprint(corrections, source)
    if stamp == _last_fingerprint():
        return RetrainOutcome(False, f"no new corrections since the last retraining ({count} in all)", count)
    texts: list[str] = []
    labels: list[str] = []
    if source.is_file():
        try:
            texts, labels, _ = read_training_csv(source)
        except TrainingDataError as exc:
            return RetrainOutcome(False, f"history unreadable: {exc}", count)
    if not texts and latest_path(model_dir) is None:
        return RetrainOutcome(
            False,
            f"no history at {source} and no model in use: train one with `flask train-classifier` first",
            count,
        )
    try:
        comparison = retrain_if_better(texts, labels, model_dir, corrections=corrections)
    except TrainingDataError as exc:
        return RetrainOutcome(False, f"cannot train: {exc}", count)
    data = {
        **comparison.to_dict(),
        "corrections": count,
        "history": len(texts),
        "corrections_fingerprint": stamp,
    }
    audit(actor, RETRAINED if comparison.replaced else KEPT, AUDIT_SUBJECT, **data)
    return RetrainOutcome(True, comparison.reason, count, data)
