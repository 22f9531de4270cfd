"""The tier groups' daily digest as a periodic RQ job (see jobs.cron): queue what is due, deliver it."""

from __future__ import annotations

from datetime import datetime

from delivery.outbox import enqueue_delivery
from models import db, utcnow
from workflow.digest import load_digest_schedule, queue_due_digests


def send_group_digests(now_iso: str | None = None) -> int:
    """Queue and deliver every group digest due as of now (or the given ISO moment); returns how many."""
    now = datetime.fromisoformat(now_iso) if now_iso else utcnow()
    queued = queue_due_digests(now, load_digest_schedule())
    db.session.flush()
    ids = [message.id for message in queued]
    db.session.commit()
    for outbox_id in ids:
        enqueue_delivery(outbox_id)
    return len(ids)
