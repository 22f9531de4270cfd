"""Turning stored inbound pushes into tickets and replies."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from rq import Retry

from config.queues import QueueNames
from handlers.intake import handle_inbound
from handlers.parsing import get_parser
from jobs import enqueue
from jobs.delivery import enqueue_delivery
from models import InboundMessage, InboundStatus, db, utcnow

log = logging.getLogger(__name__)


def process_inbound(inbound_id: int) -> int:
    """Parse, create or update the ticket, queue the replies; returns how many replies were queued."""
    config = current_app.config
    try:
        outbox_ids = handle_inbound(
            inbound_id,
            get_parser(current_app.instance_path),
            utcnow(),
            attach_window=timedelta(seconds=config["ATTACH_WINDOW"]),
            dialog_ttl=timedelta(seconds=config["DIALOG_TTL"]),
        )
    except Exception as exc:
        db.session.rollback()
        _record_failure(inbound_id, exc)
        raise
    for outbox_id in outbox_ids:
        enqueue_delivery(outbox_id)
    return len(outbox_ids)


def _record_failure(inbound_id: int, exc: Exception) -> None:
    row = db.session.get(InboundMessage, inbound_id)
    if row is not None:
        row.attempts += 1
        row.error = f"{type(exc).__name__}: {exc}"[:2000]
        db.session.commit()


def enqueue_inbound(inbound_id: int) -> bool:
    return enqueue(
        process_inbound,
        inbound_id,
        queue=QueueNames.INTAKE,
        job_id=f"inbound-{inbound_id}",
        retry=Retry(max=3, interval=[5, 30, 120]),
    )


def recover_inbound(older_than_seconds: int = 60, limit: int = 5000) -> int:
    """Re-enqueue pushes that were stored but never processed (Redis was down, a worker died).

    Safe to run any time: unique job ids stop a second copy of a job that is still queued or running,
    and processing skips rows that are already done.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = (
        db.session.execute(
            db.select(InboundMessage.id)
            .filter(InboundMessage.status == InboundStatus.RECEIVED, InboundMessage.received_at <= cutoff)
            .order_by(InboundMessage.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    requeued = sum(1 for inbound_id in ids if enqueue_inbound(inbound_id))
    if requeued:
        log.info("recovered %d stored pushes", requeued)
    return requeued
