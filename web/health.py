"""GET /healthz: database, Redis and queue state; 503 when a dependency is down."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from config.queues import all_queues
from delivery.robots import robot_health
from jobs.intake import PENDING_KEY
from models import InboundMessage, InboundStatus, db
from ops.queue import get_queue

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    report: dict = {"database": "ok", "redis": "ok", "queues": {}}
    healthy = True
    try:
        db.session.execute(text("SELECT 1"))
        report["inbound_unprocessed"] = db.session.execute(
            db.select(db.func.count(InboundMessage.id)).filter_by(status=InboundStatus.RECEIVED)
        ).scalar_one()
    except Exception as exc:  # any driver error means "down"
        db.session.rollback()
        report["database"] = f"down: {type(exc).__name__}"
        healthy = False
    try:
        redis = current_app.extensions["redis"]
        redis.ping()
        for name in all_queues():
            report["queues"][name] = get_queue(name, redis).count
        report["workers"] = len(redis.smembers("rq:workers"))
        # Pushes stored and waiting for a drain job (the batched intake list, see jobs.intake).
        report["intake_backlog"] = redis.llen(PENDING_KEY)
    except Exception as exc:
        report["redis"] = f"down: {type(exc).__name__}"
        healthy = False
    if healthy:
        try:
            # A robot key WeCom rejected: staff must fix it (its messages wait); not a reason for 503.
            report["wecom_robots"] = robot_health()
        except Exception as exc:
            db.session.rollback()
            report["wecom_robots"] = f"unknown: {type(exc).__name__}"
    report["status"] = "ok" if healthy else "degraded"
    return jsonify(report), 200 if healthy else 503
