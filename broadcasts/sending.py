"""Broadcast jobs: fan_out_broadcast(id) plans the batches and enqueues send_broadcast_batch(id, batch_id)
for each, with deterministic job ids (`broadcast-<id>-batch-<batch id>`, unique=True).

How a batch stays exactly-once when a worker dies at any point:
- before the call: the batch is PENDING (or SENDING with nothing sent); the re-run sends it.
- after the call went out, before the batch was marked: it is SENDING; the re-run repeats the call with the
  same clientmsgid and WeChat answers 45065 (already sent, here is its msg_id) instead of sending again.
  WeCom app messages carry `enable_duplicate_check` for the same reason (same content, same user, 4 hours).
- after it was marked SENT: the re-run sees SENT and returns.
RQ re-runs a job whose worker died (its heartbeat lapses, the next worker's maintenance retries it), and
`recover_broadcasts` (every minute) gives a job to any open batch that has none (Redis emptied).
"""

from __future__ import annotations

import logging
import time

from flask import current_app
from rq import Callback, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select

from bot.clients import PermanentSendError, RetryableSendError, wechat_api, wecom_api
from bot.clients.wecom_robot import RobotBudget
from broadcasts.compose import finish_if_complete, notice_text
from broadcasts.planning import PlannedBatch, PlanSettings, plan_batches, release_reservation
from config.queues import QueueNames
from delivery.outbox import enqueue_delivery
from models import (
    BatchKind,
    BatchStatus,
    Broadcast,
    BroadcastBatch,
    BroadcastStatus,
    Outbox,
    OutboxStatus,
    audit,
    db,
    utcnow,
)
from models.broadcast import OPEN_BATCH_STATUSES
from ops.queue import enqueue, redis_connection

log = logging.getLogger(__name__)

FAN_OUT_TIMEOUT = 3600  # planning a county of a million subscribers takes minutes, not hours
BATCH_TIMEOUT = 300
MASS_SLOT_WAIT = 75.0  # seconds a batch job may wait for one of the minute's 60 mass-send requests
FAN_OUT_RETRY = Retry(max=3, interval=[10, 60, 300])
# WeCom drops a repeat of the same text to the same member within this window (the maximum, 4 hours).
WECOM_DUPLICATE_WINDOW = 4 * 3600
TERMINAL_JOB_STATUSES = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})


def plan_settings() -> PlanSettings:
    config = current_app.config
    return PlanSettings(
        mp_batch=int(config["BROADCAST_MP_BATCH"]),
        wecom_batch=int(config["BROADCAST_WECOM_BATCH"]),
        limit=int(config["BROADCAST_MONTHLY_LIMIT"]),
        use_tags=bool(config["BROADCAST_USE_TAGS"]),
        use_to_all=bool(config.get("BROADCAST_USE_TO_ALL", True)),
    )


def batch_retry() -> Retry:
    intervals = list(current_app.config["BROADCAST_RETRY_INTERVALS"])
    return Retry(max=len(intervals), interval=intervals)


# --- fan-out ---------------------------------------------------------------------------------------


def fan_out_broadcast(broadcast_id: int) -> dict:
    """Plan the broadcast batch by batch (streaming) and enqueue each batch as soon as it is committed.

    Re-runnable at any point: planning continues from its committed cursor, and every open batch is
    (re-)given a job at the end, so a run killed between a commit and an enqueue leaves nothing behind.
    """
    planned = 0
    for batch in plan_batches(broadcast_id, plan_settings()):
        _enqueue_planned(broadcast_id, batch)
        planned += 1
    resumed = ensure_batch_jobs(broadcast_id)
    finish_if_complete(broadcast_id, utcnow())
    return {"planned": planned, "resumed": resumed}


def _enqueue_planned(broadcast_id: int, batch: PlannedBatch) -> bool:
    if batch.outbox_id is not None:
        return enqueue_delivery(batch.outbox_id)
    return enqueue_batch(broadcast_id, batch.batch_id)


def enqueue_fan_out(broadcast_id: int) -> bool:
    return _enqueue_again_if_over(
        fan_out_broadcast,
        broadcast_id,
        job_id=f"broadcast-{broadcast_id}-fanout",
        retry=FAN_OUT_RETRY,
        job_timeout=FAN_OUT_TIMEOUT,
    )


def batch_job_id(broadcast_id: int, batch_id: int) -> str:
    return f"broadcast-{broadcast_id}-batch-{batch_id}"


def enqueue_batch(broadcast_id: int, batch_id: int) -> bool:
    return enqueue(
        send_broadcast_batch,
        broadcast_id,
        batch_id,
        queue=QueueNames.BROADCAST,
        job_id=batch_job_id(broadcast_id, batch_id),
        retry=batch_retry(),
        on_failure=Callback(on_batch_failure),
        job_timeout=BATCH_TIMEOUT,
    )


def _enqueue_again_if_over(func, *args, job_id: str, **options) -> bool:
    """Enqueue unless a job with this id is still queued, scheduled or running; a finished or failed job of
    the same id is deleted first (unique=True would otherwise refuse the id for as long as it is kept)."""
    if enqueue(func, *args, queue=QueueNames.BROADCAST, job_id=job_id, **options):
        return True
    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return enqueue(func, *args, queue=QueueNames.BROADCAST, job_id=job_id, **options)
    if job.get_status() not in TERMINAL_JOB_STATUSES:
        return False
    job.delete()
    return enqueue(func, *args, queue=QueueNames.BROADCAST, job_id=job_id, **options)


# --- one batch ----------------------------------------------------------------------------------------


def send_broadcast_batch(broadcast_id: int, batch_id: int) -> str:
    """Send one batch at most once; record what was sent before returning. Returns the batch's status.

    Retryable errors (-1, 45066, network) raise for RQ to retry with backoff; permanent ones are recorded
    on the batch with WeChat's/WeCom's error code and the batch's monthly reservation is given back.
    """
    batch = db.session.execute(
        select(BroadcastBatch).filter_by(id=batch_id, broadcast_id=broadcast_id).with_for_update()
    ).scalar_one_or_none()
    if batch is None:
        return "missing"
    if batch.status not in OPEN_BATCH_STATUSES:
        return batch.status
    broadcast = db.session.get(Broadcast, broadcast_id)
    # A batch already SENDING when staff cancelled may have gone out: it is finished (a repeat of its
    # clientmsgid only finds out) rather than forgotten; only batches not yet begun are dropped.
    if broadcast.status == BroadcastStatus.CANCELLED and batch.status == BatchStatus.PENDING:
        batch.status = BatchStatus.CANCELLED
        release_reservation(batch, broadcast.month, plan_settings().limit)
        audit("system", "broadcast.batch_cancelled", f"broadcast:{broadcast_id}", batch=batch_id)
        db.session.commit()
        return BatchStatus.CANCELLED
    # Recorded before the call: from here a re-run knows the call may have gone out.
    batch.status = BatchStatus.SENDING
    batch.attempts += 1
    batch.started_at = batch.started_at or utcnow()
    db.session.commit()
    try:
        msg_id, rejected = _send(broadcast, batch)
    except RetryableSendError as exc:
        batch.errcode, batch.error = exc.errcode, f"attempt {batch.attempts}: {exc}"[:2000]
        db.session.commit()
        raise
    except PermanentSendError as exc:
        _mark_failed(batch, broadcast, exc.errcode, str(exc), release=True)
        db.session.commit()
        finish_if_complete(broadcast_id, utcnow())
        return BatchStatus.FAILED
    batch.status = BatchStatus.SENT
    batch.msg_id = msg_id
    batch.failed_count = rejected
    batch.sent_at = utcnow()
    batch.errcode = batch.error = None
    audit(
        "system",
        "broadcast.batch_sent",
        f"broadcast:{broadcast_id}",
        batch=batch_id,
        channel=batch.channel,
        recipients=batch.size,
        rejected=rejected,
        msg_id=msg_id,
        attempts=batch.attempts,
    )
    db.session.commit()
    finish_if_complete(broadcast_id, utcnow())
    return BatchStatus.SENT


class MassSendBudget(RobotBudget):
    """WeChat takes at most 60 mass-send requests a minute per account: the same Redis sliding window as a
    group robot's budget, shared by every worker."""

    @staticmethod
    def _key(name: str) -> str:
        return f"wechat:mass:{name}:sends"


def _wait_for_mass_slot() -> None:
    """Wait (a minute at most) for a mass-send request slot; a longer wait becomes a retry later."""
    per_minute = int(current_app.config["BROADCAST_MASS_PER_MINUTE"])
    if per_minute <= 0:
        return
    budget = MassSendBudget(redis_connection(), limit=per_minute, window=60.0)
    deadline = time.monotonic() + MASS_SLOT_WAIT
    while (wait := budget.acquire(current_app.config["WECHAT_APPID"], time.time())) > 0:
        if time.monotonic() + wait > deadline:
            raise RetryableSendError(f"mass-send budget of {per_minute}/minute in use; retrying later")
        time.sleep(min(wait, 5.0))


def _send(broadcast: Broadcast, batch: BroadcastBatch) -> tuple[str | None, int]:
    """One platform call for the batch; returns (msg_id, recipients the platform refused)."""
    text = notice_text(broadcast)
    if batch.kind in (BatchKind.OPENIDS, BatchKind.TAG, BatchKind.ALL):
        _wait_for_mass_slot()
    if batch.kind == BatchKind.OPENIDS:
        answer = wechat_api().mass_send_text_to_openids(list(batch.recipients), text, batch.clientmsgid)
        return _msg_id(answer), 0
    if batch.kind == BatchKind.TAG:
        tag_id = int(str(batch.target).split("/", 1)[1])
        answer = wechat_api().mass_send_text_to_tag(tag_id, text, batch.clientmsgid)
        return _msg_id(answer), 0
    if batch.kind == BatchKind.ALL:
        answer = wechat_api().mass_send_text_to_all(text, batch.clientmsgid)
        return _msg_id(answer), 0
    if batch.kind == BatchKind.USERIDS:
        api = wecom_api()
        answer = api.post(
            "/cgi-bin/message/send",
            {
                "touser": "|".join(batch.recipients),
                "msgtype": "text",
                "agentid": api.agent_id,
                "text": {"content": text},
                "enable_duplicate_check": 1,
                "duplicate_check_interval": WECOM_DUPLICATE_WINDOW,
            },
        )
        refused = {u for key in ("invaliduser", "unlicenseduser") for u in str(answer.get(key) or "").split("|") if u}
        return _msg_id(answer), len(refused & set(batch.recipients))
    raise PermanentSendError(f"batch kind {batch.kind!r} is not sent by this job")


def _msg_id(answer: dict) -> str | None:
    value = answer.get("msg_id") or answer.get("msgid")
    return str(value) if value else None


def _mark_failed(batch: BroadcastBatch, broadcast: Broadcast, errcode: int | None, error: str, release: bool) -> None:
    batch.status = BatchStatus.FAILED
    batch.errcode = errcode
    batch.error = error[:2000]
    if release:  # the platform refused it outright: nobody received it, so the month's send is given back
        release_reservation(batch, broadcast.month, plan_settings().limit)
    audit(
        "system",
        "broadcast.batch_failed",
        f"broadcast:{broadcast.id}",
        batch=batch.id,
        channel=batch.channel,
        recipients=batch.size,
        errcode=errcode,
        error=error[:500],
    )
    log.warning("broadcast %s batch %s failed: %s", broadcast.id, batch.id, error)


def on_batch_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ calls this after EVERY failed attempt (and for a job whose worker died); only the last is final.

    A batch that ran out of retries keeps its reservation: a lost answer may still have delivered it.
    """
    if job.retries_left:
        return
    broadcast_id, batch_id = job.args
    batch = db.session.get(BroadcastBatch, batch_id)
    if batch is None or batch.status not in OPEN_BATCH_STATUSES:
        return
    broadcast = db.session.get(Broadcast, broadcast_id)
    error = f"gave up after {batch.attempts} attempts: {exc_value or exc_type.__name__}"
    _mark_failed(batch, broadcast, getattr(exc_value, "errcode", None) or batch.errcode, error, release=False)
    db.session.commit()
    finish_if_complete(broadcast_id, utcnow())


# --- recovery -----------------------------------------------------------------------------------------


def ensure_batch_jobs(broadcast_id: int) -> int:
    """Give every open batch a job unless it has a live one; returns how many were enqueued."""
    enqueued = 0
    open_batches = db.session.execute(
        select(BroadcastBatch.id, BroadcastBatch.kind, BroadcastBatch.outbox_id).filter(
            BroadcastBatch.broadcast_id == broadcast_id, BroadcastBatch.status.in_(list(OPEN_BATCH_STATUSES))
        )
    ).all()
    connection = redis_connection()
    for batch_id, kind, outbox_id in open_batches:
        if kind == BatchKind.ROBOT:
            outbox = db.session.get(Outbox, outbox_id)
            if outbox is not None and outbox.status == OutboxStatus.PENDING and enqueue_delivery(outbox_id):
                enqueued += 1
            continue
        job_id = batch_job_id(broadcast_id, batch_id)
        try:
            status = Job.fetch(job_id, connection=connection).get_status()
        except NoSuchJobError:
            status = None
        if status == JobStatus.FAILED:
            # RQ already gave up on it (its last failure callback could not record that): record it now.
            batch = db.session.get(BroadcastBatch, batch_id)
            _mark_failed(batch, db.session.get(Broadcast, broadcast_id), batch.errcode, "job failed: gave up", False)
            db.session.commit()
            continue
        if status is None or status in TERMINAL_JOB_STATUSES:
            if status is not None:
                Job.fetch(job_id, connection=connection).delete()
            enqueued += int(enqueue_batch(broadcast_id, batch_id))
    return enqueued


def release_cancelled(broadcast_id: int) -> int:
    """Give back the monthly mass sends held by a cancelled broadcast's unsent batches (batch by batch)."""
    broadcast = db.session.get(Broadcast, broadcast_id)
    if broadcast is None:
        return 0
    limit = plan_settings().limit
    released = 0
    ids = db.session.execute(
        select(BroadcastBatch.id).filter(
            BroadcastBatch.broadcast_id == broadcast_id,
            BroadcastBatch.status == BatchStatus.CANCELLED,
            BroadcastBatch.reserved.is_(True),
        )
    ).scalars()
    for batch_id in list(ids):
        batch = db.session.get(BroadcastBatch, batch_id)
        released += release_reservation(batch, broadcast.month, limit)
        db.session.commit()
    return released


def enqueue_release(broadcast_id: int) -> bool:
    return _enqueue_again_if_over(release_cancelled, broadcast_id, job_id=f"broadcast-{broadcast_id}-release")


def recover_broadcasts() -> dict:
    """Periodic safety net: restart planning that stopped, give open batches without a job a job, finish
    broadcasts with nothing pending, and give back reservations of cancelled batches."""
    counts = {"planning": 0, "batches": 0, "finished": 0, "released": 0}
    rows = db.session.execute(
        select(Broadcast.id, Broadcast.status).filter(
            Broadcast.status.in_([BroadcastStatus.PLANNING, BroadcastStatus.SENDING])
        )
    ).all()
    for broadcast_id, status in rows:
        if status == BroadcastStatus.PLANNING:
            counts["planning"] += int(enqueue_fan_out(broadcast_id))
        else:
            counts["batches"] += ensure_batch_jobs(broadcast_id)
            counts["finished"] += int(finish_if_complete(broadcast_id, utcnow()))
    holding = db.session.execute(
        select(BroadcastBatch.broadcast_id)
        .filter(BroadcastBatch.status == BatchStatus.CANCELLED, BroadcastBatch.reserved.is_(True))
        .distinct()
    ).scalars()
    for broadcast_id in list(holding):
        counts["released"] += int(enqueue_release(broadcast_id))
    db.session.commit()
    return counts
