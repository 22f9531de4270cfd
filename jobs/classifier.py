"""Learning from staff as a periodic RQ job (daily, see jobs.cron): retrain the category model from the
console's corrections and log the comparison."""

from __future__ import annotations

import json
import logging

from flask import current_app

import demand
from models import db
from reports.retraining import MIN_CORRECTIONS, retrain_from_corrections

log = logging.getLogger(__name__)


def retrain_classifier() -> dict:
    """Retrain the county's model when staff made enough new corrections; the new model goes into use only
    if it scores at least as well on the fixed validation fold. Returns what happened (the job's result)."""
    config = current_app.config
    outcome = retrain_from_corrections(
        demand.model_dir_for(current_app.instance_path),
        history=config.get("CLASSIFIER_HISTORY_FILE") or None,
        min_corrections=int(config.get("CLASSIFIER_MIN_CORRECTIONS", MIN_CORRECTIONS)),
    )
    if not outcome.ran:
        log.info("classifier retraining skipped: %s", outcome.reason)
        return outcome.to_dict()
    db.session.commit()  # the audit row
    log.info(
        "classifier retraining: %s; comparison %s",
        outcome.reason,
        json.dumps(outcome.comparison, ensure_ascii=False, default=str),
    )
    return outcome.to_dict()
