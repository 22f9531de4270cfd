"""Prometheus metrics at GET /metrics, in the text exposition format (no client library needed).

Counters kept in Redis by ops.metrics are read with everything else (database and RQ queues) at
scrape time. Set METRICS_TOKEN to require `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, StartedJobRegistry

from config.queues import all_queues
from jobs.intake import PENDING_KEY
from models import OPEN_STATUSES, InboundMessage, InboundStatus, Outbox, Ticket, db, utcnow
from ops.metrics import COUNTERS, PREFIX, log
from ops.queue import get_queue

bp = Blueprint("metrics", __name__)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, **labels: object) -> None:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")


def render() -> str:
    out = _Text()
    now = utcnow()
    up = {"database": 1, "redis": 1}
    redis = current_app.extensions["redis"]
    try:
        for name, (help_text, label_names) in COUNTERS.items():
            out.family(f"civic_{name}_total", "counter", help_text)
            for field, value in sorted(redis.hgetall(PREFIX + name).items()):
                values = field.decode().split("|")
                out.sample(f"civic_{name}_total", int(value), **dict(zip(label_names, values, strict=False)))
        out.family("civic_intake_pending", "gauge", "Stored pushes waiting in the Redis intake list.")
        out.sample("civic_intake_pending", redis.llen(PENDING_KEY))
        out.family("civic_queue_depth", "gauge", "Jobs waiting in each RQ queue.")
        out.family("civic_queue_oldest_age_seconds", "gauge", "Age of the oldest waiting job in each RQ queue.")
        out.family("civic_jobs_failed", "gauge", "Jobs in each queue's failed registry (retries exhausted).")
        out.family("civic_jobs_running", "gauge", "Jobs running now, per queue.")
        depth, age, failed, running = [], [], [], []
        for queue_name in all_queues():
            queue = get_queue(queue_name, redis)
            depth.append((queue_name, queue.count))
            first = queue.get_job_ids(0, 0)
            job = queue.fetch_job(first[0]) if first else None
            enqueued = job.enqueued_at if job is not None and job.enqueued_at else None
            if enqueued is not None and enqueued.tzinfo is None:
                enqueued = enqueued.replace(tzinfo=now.tzinfo)
            age.append((queue_name, max(0.0, (now - enqueued).total_seconds()) if enqueued else 0.0))
            failed.append((queue_name, FailedJobRegistry(queue=queue).count))
            running.append((queue_name, StartedJobRegistry(queue=queue).count))
        for name, rows in (
            ("civic_queue_depth", depth),
            ("civic_queue_oldest_age_seconds", age),
            ("civic_jobs_failed", failed),
            ("civic_jobs_running", running),
        ):
            for queue_name, value in rows:
                out.sample(name, round(value, 3), queue=queue_name)
        out.family("civic_workers", "gauge", "RQ workers registered.")
        out.sample("civic_workers", redis.scard("rq:workers"))
    except RedisError as exc:
        up["redis"] = 0
        log.warning("metrics: Redis unavailable: %s", type(exc).__name__)
    try:
        out.family("civic_inbound_messages", "gauge", "Stored pushes by channel and status.")
        for channel, status, count in db.session.execute(
            db.select(InboundMessage.channel, InboundMessage.status, db.func.count(InboundMessage.id)).group_by(
                InboundMessage.channel, InboundMessage.status
            )
        ).all():
            out.sample("civic_inbound_messages", count, channel=channel, status=status)
        oldest = db.session.execute(
            db.select(db.func.min(InboundMessage.received_at)).filter(InboundMessage.status == InboundStatus.RECEIVED)
        ).scalar_one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        out.family(
            "civic_inbound_oldest_unprocessed_age_seconds",
            "gauge",
            "Age of the oldest stored push not yet processed (0 when none).",
        )
        out.sample(
            "civic_inbound_oldest_unprocessed_age_seconds", round((now - oldest).total_seconds(), 3) if oldest else 0
        )
        out.family("civic_outbox_messages", "gauge", "Outbound messages by channel and status.")
        for channel, status, count in db.session.execute(
            db.select(Outbox.channel, Outbox.status, db.func.count(Outbox.id)).group_by(Outbox.channel, Outbox.status)
        ).all():
            out.sample("civic_outbox_messages", count, channel=channel, status=status)
        out.family("civic_tickets_open", "gauge", "Open tickets.")
        out.sample(
            "civic_tickets_open",
            db.session.execute(
                db.select(db.func.count(Ticket.id)).filter(Ticket.status.in_(list(OPEN_STATUSES)))
            ).scalar_one(),
        )
        out.family("civic_tickets_overdue", "gauge", "Open tickets past their due time.")
        out.sample(
            "civic_tickets_overdue",
            db.session.execute(
                db.select(db.func.count(Ticket.id)).filter(Ticket.status.in_(list(OPEN_STATUSES)), Ticket.due_at < now)
            ).scalar_one(),
        )
    except Exception as exc:  # any driver error means "down"
        db.session.rollback()
        up["database"] = 0
        log.warning("metrics: database unavailable: %s", type(exc).__name__)
    out.family("civic_up", "gauge", "Whether each dependency answered this scrape.")
    for dependency, value in up.items():
        out.sample("civic_up", value, dependency=dependency)
    out.family("civic_scrape_timestamp_seconds", "gauge", "When this page was made.")
    out.sample("civic_scrape_timestamp_seconds", round(time.time(), 3))
    return "\n".join(out.lines) + "\n"


@bp.get("/metrics")
def metrics_page():
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response("unauthorized\n", status=401, headers={"WWW-Authenticate": "Bearer"})
    return Response(render(), mimetype="text/plain; version=0.0.4; charset=utf-8")
