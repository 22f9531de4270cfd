"""Sending outbox messages. Retryable errors go back to RQ with backoff; permanent ones are recorded."""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta

from flask import current_app
from rq import Callback, Retry
from sqlalchemy import text, update

from bot.clients import PermanentSendError, RetryableSendError, get_client
from config.queues import QueueNames
from delivery.robots import ROBOT_CHANNEL, flush_robot, request_flush
from delivery.subscriptions import skip_unfollowed
from models import Outbox, OutboxStatus, add_event, db, utcnow
from models.ticket import Ticket
from ops.metrics import count_send_error
from ops.queue import enqueue, redis_connection

log = logging.getLogger(__name__)

DELIVERY_RETRY = Retry(max=5, interval=[10, 60, 300, 900, 3600])
# deliver_many's most sends in flight at once, hence the most replies a worker killed mid-batch can have
# sent without recording it (WeChat's custom/send has no dedup key: recovery sends those again).
DELIVERY_CONCURRENCY = 8


# A message being sent is claimed in Redis for a while: deliver_many records each outcome as soon as it is
# known, which ends its transaction (and row locks) early, so the claim is what keeps a retry job or a
# recovery sweep from sending the same message at the same moment. A dead sender's claim expires.
CLAIM_KEY = "outbox:sending:{}"


def _claim(outbox_ids: list[int]) -> list[int]:
    """The ids this process may send now (claimed before the rows are read, so their status is fresh)."""
    if not outbox_ids:
        return []
    ttl = int(current_app.config.get("DELIVERY_CLAIM_TTL") or 60)
    pipe = redis_connection().pipeline(transaction=False)
    for outbox_id in outbox_ids:
        pipe.set(CLAIM_KEY.format(outbox_id), 1, nx=True, ex=ttl)
    return [outbox_id for outbox_id, ok in zip(outbox_ids, pipe.execute(), strict=True) if ok]


def _release(outbox_ids: list[int]) -> None:
    if outbox_ids:
        redis_connection().delete(*(CLAIM_KEY.format(outbox_id) for outbox_id in outbox_ids))


def deliver_outbox(outbox_id: int) -> str:
    """Send one outbox message at most once successfully; returns its final status."""
    if not _claim([outbox_id]):
        raise RetryableSendError(f"outbox {outbox_id} is being sent by another job right now")
    try:
        return _deliver_claimed(outbox_id)
    finally:
        _release([outbox_id])


def _deliver_claimed(outbox_id: int) -> str:
    message = db.session.execute(db.select(Outbox).filter_by(id=outbox_id).with_for_update()).scalar_one_or_none()
    if message is None or message.status != OutboxStatus.PENDING:
        return message.status if message else "missing"
    if message.channel == ROBOT_CHANNEL:
        # A group robot takes 20 messages a minute: its own sender drains its rows in order, within budget.
        recipient = message.recipient
        db.session.commit()
        flush_robot(recipient)
        return db.session.get(Outbox, outbox_id).status
    if not skip_unfollowed([message]):  # the resident unfollowed: recorded, not sent
        db.session.commit()
        return message.status
    message.attempts += 1
    try:
        get_client(message.channel).send(message.recipient, message.payload, dedup_key=message.dedup_key)
    except RetryableSendError as exc:
        count_send_error(message.channel, exc)
        message.last_error = str(exc)[:2000]
        db.session.commit()
        raise
    except PermanentSendError as exc:
        count_send_error(message.channel, exc)
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


def deliver_many(outbox_ids: list[int], concurrency: int = DELIVERY_CONCURRENCY) -> int:
    """Send a batch concurrently over pooled connections; database writes stay on this thread.

    What fails retryably goes to a retrying delivery job; nothing is sent twice by this function because
    only PENDING rows are picked up and each is marked as soon as its answer is back (a crash can re-send
    only what was in flight: at most the send window, itself at most `concurrency`). Returns how many were
    sent.
    """
    claimed = _claim(list(outbox_ids))
    try:
        return _deliver_many_claimed(claimed, concurrency)
    finally:
        _release(claimed)


def _deliver_many_claimed(outbox_ids: list[int], concurrency: int) -> int:
    rows = (
        db.session.execute(
            db.select(Outbox)
            .filter(Outbox.id.in_(outbox_ids), Outbox.status == OutboxStatus.PENDING)
            .order_by(Outbox.id)
        )
        .scalars()
        .all()
    )
    rows = skip_unfollowed(list(rows))  # residents who unfollowed: recorded as skipped, not sent
    if not rows:
        db.session.commit()
        return 0
    # Group robots drain their own queue in a flush job (in order, 20 a minute, a backlog coalesced).
    robot_keys = sorted({row.recipient for row in rows if row.channel == ROBOT_CHANNEL})
    rows = [row for row in rows if row.channel != ROBOT_CHANNEL]
    clients: dict = {}
    outcomes: dict = {}
    for row in rows:
        row.attempts += 1
        try:
            clients.setdefault(row.channel, get_client(row.channel))
        except PermanentSendError as exc:
            outcomes[row.id] = exc

    jobs = [(r.id, r.channel, r.recipient, r.payload, r.dedup_key) for r in rows if r.id not in outcomes]
    channels = {row.id: row.channel for row in rows}
    # Attempts are durable before anything goes out, and each outcome as soon as it is known: a worker
    # killed mid-batch re-sends (after recovery) only the few messages in flight, never the whole batch.
    db.session.commit()

    def send(job: tuple) -> Exception | None:
        _, channel, recipient, payload, dedup_key = job
        try:
            clients[channel].send(recipient, payload, dedup_key=dedup_key)
        except Exception as exc:  # sorted out below, on the database thread
            return exc
        return None

    sent, retry = 0, []

    def record(done: list[tuple[int, Exception | None]]) -> None:
        """The outcomes known now, in one short transaction: a send answered but not yet recorded is one a
        killed worker's recovery sends again, so nothing waits for more answers to share a commit."""
        nonlocal sent
        _commit_without_flush_wait()
        ok = [outbox_id for outbox_id, error in done if error is None]
        if ok:
            db.session.execute(
                update(Outbox)
                .where(Outbox.id.in_(ok))
                .values(status=OutboxStatus.SENT, sent_at=utcnow(), last_error=None)
            )
            sent += len(ok)
        for outbox_id, error in done:
            if error is None:
                continue
            count_send_error(channels.get(outbox_id, "?"), error)
            if isinstance(error, PermanentSendError):
                _mark_failed(db.session.get(Outbox, outbox_id), str(error))
            else:
                db.session.execute(
                    update(Outbox)
                    .where(Outbox.id == outbox_id)
                    .values(last_error=f"{type(error).__name__}: {error}"[:2000])
                )
                retry.append(outbox_id)
        db.session.commit()

    if outcomes:
        record(list(outcomes.items()))
    # A new send starts only when an answer has been committed, and only while fewer than the window's
    # size are in flight (sends are faster than commits; unbounded, they would run far ahead).
    pool, queued = _pool(concurrency), iter(jobs)
    in_flight: dict = {}
    window = _window(concurrency)
    while True:
        while len(in_flight) < window.size and (job := next(queued, None)) is not None:
            in_flight[pool.submit(send, job)] = (job[0], time.monotonic())
        if not in_flight:
            break
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        answered = [in_flight.pop(future) + (future.result(),) for future in done]
        record([(outbox_id, error) for outbox_id, _, error in answered])
        recorded_at = time.monotonic()
        window.observe([recorded_at - submitted_at for _, submitted_at, _ in answered])
    db.session.commit()
    for outbox_id in retry:
        enqueue_delivery(outbox_id)
    for key in robot_keys:
        request_flush(key)
    return sent


def _commit_without_flush_wait() -> None:
    """PostgreSQL: this transaction's commit returns before its WAL is flushed to disk (a round trip, not an
    fsync). A killed worker cannot lose a commit the server has acknowledged; only a crash of PostgreSQL
    itself could lose the last few hundred milliseconds of them, and a lost SENT mark means the reply is
    sent again, never lost. SET LOCAL ends with the transaction: the pooled connection is left as it was.
    SQLite already commits without an fsync (WAL with synchronous=NORMAL, models/base.py)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit = off"))


class _Window:
    """How many sends deliver_many keeps in flight: enough to cover the API's latency, not more.

    Each send's time from submission until its outcome is committed is compared with the least such time
    seen lately (the API's own latency with nothing queued here). Sends beyond what that latency needs only
    wait on this process (the GIL, the recording thread, the database): they add no throughput, yet each
    one that has reached WeChat but is not yet recorded is sent twice if the worker dies. So the window
    grows by one while sends take under 1.5 times that least time, and shrinks by one (to MIN_WINDOW) above
    twice it. A distant API (tens of ms) keeps it at the limit; a near one on a busy machine at two or three.
    """

    MIN_WINDOW = 2  # one answer being recorded while the next send is out: overlap that costs nothing
    SAMPLES = 64

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.size = min(self.MIN_WINDOW, self.limit)
        self.recent: deque[float] = deque(maxlen=self.SAMPLES)
        self.smoothed = 0.0

    def observe(self, latencies: list[float]) -> None:
        for latency in latencies:
            self.recent.append(latency)
            self.smoothed = latency if not self.smoothed else self.smoothed + (latency - self.smoothed) / 8
        if not self.recent:
            return
        least = min(self.recent)
        if self.smoothed < 1.5 * least:
            self.size = min(self.limit, self.size + 1)
        elif self.smoothed > 2 * least:
            self.size = max(min(self.MIN_WINDOW, self.limit), self.size - 1)


_windows: dict[int, _Window] = {}


def _window(limit: int) -> _Window:
    """One window per process (and limit): what it learnt about the API carries over to the next batch."""
    return _windows.setdefault(limit, _Window(limit))


_executor: ThreadPoolExecutor | None = None


def _pool(size: int) -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="deliver")
    return _executor


def recover_outbox(older_than_seconds: int = 300, limit: int = 5000) -> int:
    """Pending messages whose delivery job vanished (Redis emptied, worker killed mid-send) get a new one.

    Unique job ids make this a no-op for messages whose job is still queued, scheduled or running.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = (
        db.session.execute(
            db.select(Outbox.id)
            .filter(Outbox.status == OutboxStatus.PENDING, Outbox.created_at <= cutoff)
            .order_by(Outbox.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return sum(1 for outbox_id in ids if enqueue_delivery(outbox_id))


def enqueue_delivery(outbox_id: int) -> bool:
    return enqueue(
        deliver_outbox,
        outbox_id,
        queue=QueueNames.DELIVERY,
        job_id=f"outbox-{outbox_id}",
        retry=DELIVERY_RETRY,
        on_failure=Callback(on_delivery_failure),
    )
