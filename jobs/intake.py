"""Turning stored inbound pushes into tickets and replies, in batches.

One RQ job per message costs ~60 Redis round trips; a burst of thousands would spend the worker on queue
bookkeeping. So the webhook appends the stored row's id to a Redis list (one round trip) and makes sure a
drain job is scheduled; a drain job pops up to BATCH ids at a time, processes each in its own database
transaction and sends the acknowledgements over a pooled connection, falling back to a retrying
delivery job only when a send fails. When a backlog builds up, a drain recruits another (one per slot,
up to DRAIN_SLOTS) so several workers share it.

Nothing depends on Redis keeping the list: the database row stays RECEIVED until processed, and
recover_inbound (every minute) re-feeds rows that were stored but never processed.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app

from config.queues import QueueNames
from handlers.intake import handle_inbound
from handlers.parsing import get_parser
from jobs import enqueue, redis_connection
from jobs.delivery import deliver_many, enqueue_delivery
from models import InboundMessage, InboundStatus, db, utcnow

log = logging.getLogger(__name__)

PENDING_KEY = "intake:pending"
DRAIN_FLAG = "intake:drain:{slot}"
DRAIN_SLOTS = 4
BATCH = 200
# A drain that died lets its slot go after this long; the recovery sweep then re-feeds its rows.
FLAG_TTL = 120
MAX_ATTEMPTS = 5
# Arrivals per second are counted in Redis; at or above INTAKE_BURST_RATE (default BURST_RATE) the drain
# pauses BURST_PAUSE seconds before each group of YIELD_EVERY messages.
ARRIVALS_KEY = "intake:arrivals:{second}"
BURST_RATE = 100
BURST_PAUSE = 0.5
YIELD_EVERY = 20


def enqueue_inbound(inbound_id: int) -> None:
    """Queue a stored push for processing: one pipelined round trip, plus a job when no drain is scheduled."""
    redis = redis_connection()
    second = int(time.time())
    pipe = redis.pipeline(transaction=False)
    pipe.rpush(PENDING_KEY, inbound_id)
    pipe.set(DRAIN_FLAG.format(slot=0), 1, nx=True, ex=_flag_ttl())
    pipe.incr(ARRIVALS_KEY.format(second=second))
    pipe.expire(ARRIVALS_KEY.format(second=second), 10)
    _, scheduled, _, _ = pipe.execute()
    if scheduled:
        _start_drain(0)


def _flag_ttl() -> int:
    return int(current_app.config.get("INTAKE_FLAG_TTL") or FLAG_TTL)


def _start_drain(slot: int) -> None:
    # The job id only has to be unique among live jobs; the flag already guarantees one drain per slot.
    enqueue(
        drain_inbound,
        slot,
        queue=QueueNames.INTAKE,
        job_id=f"drain-{slot}-{utcnow().timestamp():.6f}".replace(".", "-"),
    )


def drain_inbound(slot: int = 0) -> int:
    """Process queued pushes until the list is empty; returns how many were processed."""
    redis = redis_connection()
    flag = DRAIN_FLAG.format(slot=slot)
    ttl = _flag_ttl()
    processed = 0
    while True:
        raw = redis.lpop(PENDING_KEY, BATCH)
        if not raw:
            redis.delete(flag)
            # A push may have arrived between the empty pop and the delete, seen our flag, and not scheduled.
            if redis.llen(PENDING_KEY) and redis.set(flag, 1, nx=True, ex=ttl):
                continue
            return processed
        redis.expire(flag, ttl)
        if slot + 1 < DRAIN_SLOTS and redis.llen(PENDING_KEY) > BATCH:
            if redis.set(DRAIN_FLAG.format(slot=slot + 1), 1, nx=True, ex=ttl):
                _start_drain(slot + 1)
        ids = [int(value) for value in raw]
        for start in range(0, len(ids), YIELD_EVERY):
            _yield_to_a_burst(redis)
            processed += process_batch(ids[start : start + YIELD_EVERY])


def _yield_to_a_burst(redis) -> None:
    """While pushes arrive fast, pause between small groups: the webhook must win the CPU and the SQLite
    write lock during a burst (WeChat's 5-second window); the backlog can wait seconds."""
    burst_rate = int(current_app.config.get("INTAKE_BURST_RATE", BURST_RATE))
    if not burst_rate:
        return
    arrivals = redis.get(ARRIVALS_KEY.format(second=int(time.time()) - 1))
    if arrivals is not None and int(arrivals) >= burst_rate:
        time.sleep(BURST_PAUSE)


def process_batch(inbound_ids: list[int]) -> int:
    """Each push in its own transaction; then the batch's acknowledgements go out together."""
    config = current_app.config
    parser = get_parser(current_app.instance_path)
    outbox_ids: list[int] = []
    done = 0
    for inbound_id in inbound_ids:
        try:
            outbox_ids += handle_inbound(
                inbound_id,
                parser,
                utcnow(),
                attach_window=timedelta(seconds=config["ATTACH_WINDOW"]),
                dialog_ttl=timedelta(seconds=config["DIALOG_TTL"]),
            )
        except Exception as exc:  # one bad message must not stop the batch; the row keeps the error
            db.session.rollback()
            log.exception("inbound %s failed", inbound_id)
            _record_failure(inbound_id, exc)
            continue
        done += 1
    if outbox_ids:
        try:
            deliver_many(outbox_ids)
        except Exception:  # the rows are still PENDING: hand each to a retrying job
            db.session.rollback()
            log.exception("batch delivery failed; falling back to delivery jobs")
            for outbox_id in outbox_ids:
                enqueue_delivery(outbox_id)
    return done


def _record_failure(inbound_id: int, exc: Exception) -> None:
    row = db.session.get(InboundMessage, inbound_id)
    if row is not None:
        row.attempts += 1
        row.error = f"{type(exc).__name__}: {exc}"[:2000]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = InboundStatus.FAILED  # visible to staff; the recovery sweep stops retrying it
        db.session.commit()


def recover_inbound(older_than_seconds: int = 60, limit: int = 5000) -> int:
    """Re-feed pushes that were stored but never processed (Redis was down or emptied, a worker died).

    Only when no drain is alive and the list is empty: during a long burst the backlog is older than a
    minute but still queued, and feeding it twice would only waste work (processing is idempotent). A list
    left with no drain alive (its worker was killed) gets a new drain instead.
    """
    redis = redis_connection()
    if any(redis.exists(DRAIN_FLAG.format(slot=s)) for s in range(DRAIN_SLOTS)):
        return 0
    if redis.llen(PENDING_KEY):
        # Queued, but no drain alive (it died with its worker, or its job was lost): start one.
        if redis.set(DRAIN_FLAG.format(slot=0), 1, nx=True, ex=_flag_ttl()):
            _start_drain(0)
        return 0
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
    for start in range(0, len(ids), 1000):
        redis.rpush(PENDING_KEY, *ids[start : start + 1000])
    if ids and redis.set(DRAIN_FLAG.format(slot=0), 1, nx=True, ex=_flag_ttl()):
        _start_drain(0)
    if ids:
        log.info("recovered %d stored pushes", len(ids))
    return len(ids)
