"""Sending outbox messages. Retryable errors go back to RQ with backoff; permanent ones are recorded."""

from __future__ import annotations

import logging

from rq import Callback, Retry

from bot.clients import PermanentSendError, RetryableSendError, get_client
from config.queues import QueueNames
from jobs import enqueue
from models import Outbox, OutboxStatus, add_event, db, utcnow
from models.ticket import Ticket

log = logging.getLogger(__name__)

DELIVERY_RETRY = Retry(max=5, interval=[10, 60, 300, 900, 3600])


def deliver_outbox(outbox_id: int) -> str:
    """Send one outbox message at most once successfully; returns its final status."""
    message = db.session.execute(db.select(Outbox).filter_by(id=outbox_id).with_for_update()).scalar_one_or_none()
    if message is None or message.status != OutboxStatus.PENDING:
        return message.status if message else "missing"
    message.attempts += 1
    try:
        get_client(message.channel).send(message.recipient, message.payload, dedup_key=message.dedup_key)
    except RetryableSendError as exc:
        message.last_error = str(exc)[:2000]
        db.session.commit()
        raise
    except PermanentSendError as exc:
        _mark_failed(message, str(exc))
        db.session.commit()
        return message.status
    message.status = OutboxStatus.SENT
    message.sent_at = utcnow()
    message.last_error = None
    db.session.commit()
    return message.status


def _mark_failed(message: Outbox, error: str) -> None:
    """A resident we could not tell is a fact staff must see on the ticket, not a silent drop."""
    message.status = OutboxStatus.FAILED
    message.last_error = error[:2000]
    if message.ticket_id:
        ticket = db.session.get(Ticket, message.ticket_id)
        add_event(ticket, "notify_failed", "system", note=error[:500], outbox_id=message.id, message_kind=message.kind)
    log.warning("outbox %s failed permanently: %s", message.id, error)


def on_delivery_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ calls this after EVERY failed attempt; only the last one (no retries left) is final."""
    if job.retries_left:
        return
    outbox_id = job.args[0]
    message = db.session.get(Outbox, outbox_id)
    if message is not None and message.status == OutboxStatus.PENDING:
        _mark_failed(message, f"gave up after {message.attempts} attempts: {exc_value}")
        db.session.commit()


def enqueue_delivery(outbox_id: int) -> bool:
    return enqueue(
        deliver_outbox,
        outbox_id,
        queue=QueueNames.DELIVERY,
        job_id=f"outbox-{outbox_id}",
        retry=DELIVERY_RETRY,
        on_failure=Callback(on_delivery_failure),
    )
