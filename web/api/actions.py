"""POST /api/tickets/<id>/actions: the workflow's staff actions. Refusals change nothing."""

from __future__ import annotations

from flask import abort, g, jsonify, request

from delivery.outbox import enqueue_delivery
from models import Ticket, db, utcnow
from web.api import bp
from web.api.serializers import ticket_dict
from workflow.transitions import ActionRefused, apply_action


@bp.post("/tickets/<int:ticket_id>/actions")
def act_on_ticket(ticket_id: int):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        return jsonify(error="bad_request", message='body must be JSON like {"action": "sign", "note": "…"}'), 400
    if g.user.role == "viewer":
        return jsonify(error="forbidden", message="viewer 角色只能查看"), 403
    ticket = db.session.execute(db.select(Ticket).filter_by(id=ticket_id).with_for_update()).scalar_one_or_none()
    if ticket is None:
        abort(404)
    params = {k: v for k, v in body.items() if k not in ("action", "note")}
    note = body.get("note") if isinstance(body.get("note"), str) else None
    try:
        outbox = apply_action(
            ticket, body["action"], f"staff:{g.user.username}", utcnow(), note=note, user=g.user, **params
        )
    except ActionRefused as refused:
        db.session.rollback()
        error = {400: "bad_request", 403: "forbidden", 409: "conflict"}[refused.status]
        return jsonify(error=error, message=refused.reason), refused.status
    ids = [message.id for message in outbox]
    db.session.commit()
    for outbox_id in ids:
        enqueue_delivery(outbox_id)
    db.session.refresh(ticket)
    return jsonify(ticket_dict(ticket, g.user.sees_personal_data))
