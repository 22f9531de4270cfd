"""The deadline sweep as an RQ job (every minute, see jobs.cron) and its deliveries."""

from __future__ import annotations

from datetime import datetime

from delivery.outbox import enqueue_delivery
from models import utcnow
from workflow.sweep import run_sweep


def sweep_deadlines(now_iso: str | None = None) -> dict:
    """Run the sweep as of now (or the given ISO moment) and queue what it wants sent."""
    now = datetime.fromisoformat(now_iso) if now_iso else utcnow()
    counts, outbox_ids = run_sweep(now)
    for outbox_id in outbox_ids:
        enqueue_delivery(outbox_id)
    return dict(counts)
