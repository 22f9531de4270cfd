"""POST /api/broadcasts, GET /api/broadcasts/<id>, POST /api/broadcasts/<id>/cancel."""

from __future__ import annotations

from flask import abort, current_app, g, jsonify, request

from broadcasts import service
from broadcasts.compose import BroadcastError, failures, progress
from models import Broadcast, utcnow
from web.api import bp


def _error(exc: BroadcastError):
    return jsonify(exc.as_dict()), exc.status


def broadcast_dict(broadcast: Broadcast) -> dict:
    return {
        "id": broadcast.id,
        "title": broadcast.title,
        "body": broadcast.body,
        "link": broadcast.link,
        "audience": broadcast.audience,
        "channels": broadcast.channels,
        "status": broadcast.status,
        "skip_over_limit": broadcast.skip_over_limit,
        "month": broadcast.month,
        "created_by": broadcast.created_by,
        "created_at": broadcast.created_at.isoformat(),
        "planned_at": broadcast.planned_at.isoformat() if broadcast.planned_at else None,
        "finished_at": broadcast.finished_at.isoformat() if broadcast.finished_at else None,
        "cancelled_at": broadcast.cancelled_at.isoformat() if broadcast.cancelled_at else None,
        "cancelled_by": broadcast.cancelled_by,
        "progress": progress(broadcast),
        # WeChat's own figures, from the MASSSENDJOBFINISH events of this broadcast's mass sends.
        "mass_send_report": broadcast.report or None,
        "failures": failures(broadcast),
    }


@bp.post("/broadcasts")
def post_broadcast():
    limit = int(current_app.config["BROADCAST_MONTHLY_LIMIT"])
    try:
        submitted = service.submit(request.get_json(silent=True), g.user, utcnow(), limit)
    except BroadcastError as exc:
        return _error(exc)
    if submitted.broadcast is None:
        return jsonify(dry_run=True, **submitted.summary())
    broadcast = submitted.broadcast
    return jsonify(id=broadcast.id, status=broadcast.status, counts=submitted.counts), 201


@bp.get("/broadcasts/<int:broadcast_id>")
def get_broadcast(broadcast_id: int):
    broadcast = service.visible_broadcast(broadcast_id, g.user, utcnow())
    if broadcast is None:
        abort(404)
    return jsonify(broadcast_dict(broadcast))


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
def post_cancel(broadcast_id: int):
    try:
        broadcast = service.cancel(broadcast_id, g.user, utcnow())
    except BroadcastError as exc:
        return _error(exc)
    return jsonify(broadcast_dict(broadcast))
