"""POST /api/tickets/<id>/actions: the workflow's staff actions (workflow.service, like the console).
Refusals change nothing and tell no one."""

from __future__ import annotations

from flask import g, jsonify, request

from models import utcnow
from web.api import bp, refusal
from web.api.serializers import ticket_dict
from workflow.policy import ActionRefused, sees_personal_data
from workflow.service import act_on_ticket

NOTE_MAX = 2000


@bp.post("/tickets/<int:ticket_id>/actions")
def act_on_ticket_view(ticket_id: int):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        return jsonify(error="bad_request", message='body must be JSON like {"action": "sign", "note": "…"}'), 400
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        return jsonify(error="bad_request", message="note must be a string"), 400
    if note is not None and len(note) > NOTE_MAX:
        return jsonify(error="bad_request", message=f"note is limited to {NOTE_MAX} characters"), 400
    params = {k: v for k, v in body.items() if k not in ("action", "note")}
    try:
        ticket = act_on_ticket(g.actor, ticket_id, body["action"], note, params, utcnow())
    except ActionRefused as refused:
        return refusal(refused)
    return jsonify(ticket_dict(ticket, sees_personal_data(g.actor)))
