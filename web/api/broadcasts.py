"""POST /api/broadcasts, GET /api/broadcasts/<id>, POST /api/broadcasts/<id>/cancel."""

from __future__ import annotations

from flask import abort, current_app, g, jsonify, request

from broadcasts.compose import (
    BroadcastError,
    cancel_broadcast,
    create_broadcast,
    failures,
    finish_if_complete,
    parse_request,
    progress,
    visible_to,
)
from broadcasts.sending import enqueue_fan_out, enqueue_release
from models import Broadcast, db, utcnow
from web.api import bp


def _actor() -> str:
    return g.actor.label  # staff:<username>, as on every channel


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
    try:
        wanted = parse_request(request.get_json(silent=True))
        broadcast, counts = create_broadcast(
            wanted,
            actor=_actor(),
            caller_role=g.user.role,
            caller_region=g.user.region_code,
            now=utcnow(),
            limit=int(current_app.config["BROADCAST_MONTHLY_LIMIT"]),
        )
    except BroadcastError as exc:
        db.session.rollback()
        return _error(exc)
    if broadcast is None:
        over = counts.get("mp", {}).get("over_limit", 0)
        return jsonify(
            dry_run=True,
            counts=counts,
            over_limit=over,
            would_be_refused=bool(over and not wanted.skip_over_limit),
            total=sum(c["total"] for c in counts.values()),
        )
    db.session.commit()
    enqueue_fan_out(broadcast.id)
    return jsonify(id=broadcast.id, status=broadcast.status, counts=counts), 201


def _visible(broadcast_id: int) -> Broadcast:
    broadcast = db.session.get(Broadcast, broadcast_id)
    if broadcast is None or not visible_to(broadcast, g.user.region_code):
        abort(404)
    return broadcast


@bp.get("/broadcasts/<int:broadcast_id>")
def get_broadcast(broadcast_id: int):
    broadcast = _visible(broadcast_id)
    if finish_if_complete(broadcast.id, utcnow()):  # the last tier-group message may have just gone out
        db.session.refresh(broadcast)
    return jsonify(broadcast_dict(broadcast))


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
def post_cancel(broadcast_id: int):
    _visible(broadcast_id)
    if g.user.role not in ("admin", "staff"):
        return jsonify(error="forbidden", message="only admin and staff accounts may cancel notices"), 403
    try:
        broadcast = cancel_broadcast(broadcast_id, actor=_actor(), now=utcnow())
    except BroadcastError as exc:
        db.session.rollback()
        return _error(exc)
    db.session.commit()
    enqueue_release(broadcast_id)
    return jsonify(broadcast_dict(broadcast))
