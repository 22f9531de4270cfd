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

from bot.clients import DailyQuotaExceeded, PermanentSendError, RetryableSendError, get_client
from bot.clients.base import DAILY_QUOTA_ERRCODE
from bot.clients.wechat import NOT_SUBSCRIBED_ERRCODE, WINDOW_CLOSED_ERRCODES
from config.queues import QueueNames
from delivery.robots import ROBOT_CHANNEL, flush_robot, request_flush
from delivery.rules import (
    RESIDENT_CHANNELS,
    TEMPLATE_CHANNEL,
    explain,
    next_quota_reset,
    quota_job_id,
    unsubscribed_among,
)
from models import Outbox, OutboxStatus, Resident, add_event, db, utcnow
from models.ticket import Ticket
from ops.metrics import count_send_error
from ops.queue import enqueue, enqueue_at, redis_connection

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
    if message.channel in RESIDENT_CHANNELS and unsubscribed_among([message.recipient]):
        _mark_skipped(message)
        db.session.commit()
        return message.status
    message.attempts += 1
    try:
        _send_following_wechat_rules(message)
    except RetryableSendError as exc:
        count_send_error(message.channel, exc)
        message.last_error = str(exc)[:2000]
        message.errcode = exc.errcode
        db.session.commit()
        raise
    except DailyQuotaExceeded as exc:
        count_send_error(message.channel, exc)
        _wait_for_quota_reset(message, exc)
        db.session.commit()
        return message.status
    except PermanentSendError as exc:
        count_send_error(message.channel, exc)
        _mark_failed(message, str(exc), exc.errcode)
        db.session.commit()
        return message.status
    message.status = OutboxStatus.SENT
    message.sent_at = utcnow()
    message.last_error = None
    db.session.commit()
    return message.status


def _send_following_wechat_rules(message: Outbox) -> None:
    """Send one message; a closed customer-service window (45015/45047) falls back to the template message
    when WECHAT_TEMPLATE_ID is configured. Raises what the last send raised."""
    template_id = current_app.config.get("WECHAT_TEMPLATE_ID")
    if message.channel == "mp" and message.errcode in WINDOW_CLOSED_ERRCODES and template_id:
        # A batch send already heard that the window is closed: straight to the template message.
        window_closed = PermanentSendError(message.last_error or "customer-service window closed", message.errcode)
    else:
        try:
            get_client(message.channel).send(message.recipient, message.payload, dedup_key=message.dedup_key)
            return
        except PermanentSendError as exc:
            if message.channel != "mp" or exc.errcode not in WINDOW_CLOSED_ERRCODES:
                raise
            if not template_id:
                raise PermanentSendError(f"{exc}; WECHAT_TEMPLATE_ID is not configured", exc.errcode) from None
            count_send_error(message.channel, exc)
            window_closed = exc
    # The template message: the same words, with the ticket's number in its own field.
    message.channel = TEMPLATE_CHANNEL
    message.errcode = window_closed.errcode
    message.last_error = str(window_closed)[:2000]
    if message.ticket_id:
        ticket = db.session.get(Ticket, message.ticket_id)
        add_event(
            ticket,
            "notify_fallback",
            "system",
            note=explain(window_closed.errcode, TEMPLATE_CHANNEL, fallback=True),
            outbox_id=message.id,
            errcode=window_closed.errcode,
        )
        payload = {**(message.payload or {}), "number": ticket.number}
    else:
        payload = dict(message.payload or {})
    get_client(TEMPLATE_CHANNEL).send(message.recipient, payload, dedup_key=message.dedup_key)


def _mark_failed(message: Outbox, error: str, errcode: int | None = None) -> None:
    """A resident we could not tell is a fact staff must see on the ticket, in words, not a silent drop."""
    if errcode == NOT_SUBSCRIBED_ERRCODE and message.channel in RESIDENT_CHANNELS:
        _resident_left(message.recipient)
        _mark_skipped(message)
        return
    message.status = OutboxStatus.FAILED
    message.last_error = error[:2000]
    message.errcode = errcode
    if message.ticket_id:
        ticket = db.session.get(Ticket, message.ticket_id)
        add_event(
            ticket,
            "notify_failed",
            "system",
            note=explain(errcode, message.channel, error=error),
            outbox_id=message.id,
            message_kind=message.kind,
            errcode=errcode,
            error=error[:500],
        )
    log.warning("outbox %s failed permanently: %s", message.id, error)


def _mark_skipped(message: Outbox) -> None:
    """Nothing goes to a resident who has unsubscribed: recorded as skipped, on the ticket too."""
    message.status = OutboxStatus.SKIPPED
    message.last_error = "recipient has unsubscribed"
    if message.ticket_id:
        ticket = db.session.get(Ticket, message.ticket_id)
        add_event(
            ticket,
            "notify_skipped",
            "system",
            note="居民已取消关注公众号，未发送",
            reason="unsubscribed",
            outbox_id=message.id,
            message_kind=message.kind,
        )


def _resident_left(openid: str) -> None:
    """WeChat says the resident no longer follows the account (43004): remember it."""
    resident = db.session.execute(db.select(Resident).filter_by(openid=openid)).scalar_one_or_none()
    if resident is not None and resident.subscribed:
        resident.subscribed = False
        resident.unsubscribed_at = utcnow()


def _wait_for_quota_reset(message: Outbox, exc: DailyQuotaExceeded) -> None:
    """45009: the daily quota is gone; the message stays pending and is sent again after Beijing midnight
    (RQ's scheduler runs the job then). Staff see why it waits."""
    message.last_error = str(exc)[:2000]
    message.errcode = exc.errcode
    if message.ticket_id:
        ticket = db.session.get(Ticket, message.ticket_id)
        add_event(
            ticket,
            "notify_deferred",
            "system",
            note=explain(exc.errcode, message.channel),
            outbox_id=message.id,
            errcode=exc.errcode,
        )
    schedule_after_quota_reset(message.id)


def schedule_after_quota_reset(outbox_id: int) -> bool:
    """A delivery job at the next quota reset (one per message and day: scheduling again is a no-op)."""
    when = next_quota_reset(utcnow(), outbox_id)
    return enqueue_at(
        when,
        deliver_outbox,
        outbox_id,
        queue=QueueNames.DELIVERY,
        job_id=quota_job_id(outbox_id, when),
        retry=DELIVERY_RETRY,
        on_failure=Callback(on_delivery_failure),
    )


def on_delivery_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ calls this after EVERY failed attempt; only the last one (no retries left) is final."""
    if job.retries_left:
        return
    outbox_id = job.args[0]
    message = db.session.get(Outbox, outbox_id)
    if message is not None and message.status == OutboxStatus.PENDING:
        _mark_failed(message, f"gave up after {message.attempts} attempts: {exc_value}", message.errcode)
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
    # Group robots drain their own queue in a flush job (in order, 20 a minute, a backlog coalesced).
    robot_keys = sorted({row.recipient for row in rows if row.channel == ROBOT_CHANNEL})
    rows = [row for row in rows if row.channel != ROBOT_CHANNEL]
    gone = unsubscribed_among([row.recipient for row in rows if row.channel in RESIDENT_CHANNELS])
    for row in rows:
        if row.channel in RESIDENT_CHANNELS and row.recipient in gone:
            _mark_skipped(row)
    rows = [row for row in rows if row.status != OutboxStatus.SKIPPED]
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
            if isinstance(error, DailyQuotaExceeded):
                _wait_for_quota_reset(db.session.get(Outbox, outbox_id), error)
            elif isinstance(error, PermanentSendError) and _falls_back(channels.get(outbox_id), error):
                # The delivery job sends the template message (the errcode tells it to skip custom/send).
                db.session.execute(
                    update(Outbox)
                    .where(Outbox.id == outbox_id)
                    .values(errcode=error.errcode, last_error=str(error)[:2000])
                )
                retry.append(outbox_id)
            elif isinstance(error, PermanentSendError):
                _mark_failed(db.session.get(Outbox, outbox_id), str(error), error.errcode)
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


def _falls_back(channel: str | None, error: PermanentSendError) -> bool:
    """A closed customer-service window, and a template message to fall back on."""
    return (
        channel == "mp"
        and error.errcode in WINDOW_CLOSED_ERRCODES
        and bool(current_app.config.get("WECHAT_TEMPLATE_ID"))
    )


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
    rows = db.session.execute(
        db.select(Outbox.id, Outbox.errcode)
        .filter(Outbox.status == OutboxStatus.PENDING, Outbox.created_at <= cutoff)
        .order_by(Outbox.id)
        .limit(limit)
    ).all()
    # A message waiting for the daily quota keeps (or gets back) its job at the reset, not one now.
    return sum(
        1
        for outbox_id, errcode in rows
        if (schedule_after_quota_reset(outbox_id) if errcode == DAILY_QUOTA_ERRCODE else enqueue_delivery(outbox_id))
    )


def _enqueue_send(outbox_id: int, job_id: str) -> bool:
    return enqueue(
        deliver_outbox,
        outbox_id,
        queue=QueueNames.DELIVERY,
        job_id=job_id,
        retry=DELIVERY_RETRY,
        on_failure=Callback(on_delivery_failure),
    )


def enqueue_delivery(outbox_id: int) -> bool:
    return _enqueue_send(outbox_id, f"outbox-{outbox_id}")


def enqueue_resend(outbox_id: int) -> bool:
    """Staff re-sent a failed message: a job of its own (the message's first job may still be recorded)."""
    return _enqueue_send(outbox_id, f"outbox-{outbox_id}-resend-{int(time.time() * 1000)}")
