"""GET /api/tickets, GET /api/tickets/<id>: what workflow.policy lets the caller see."""

from __future__ import annotations

from datetime import datetime

from flask import g, jsonify, request

from models import Ticket, db
from web.api import bp, refusal
from web.api.serializers import ticket_dict
from web.inputs import InputError, bounded_int, moment
from workflow.duplicates import possible_duplicates
from workflow.policy import ActionRefused, sees_personal_data, visible_filter
from workflow.service import load_visible

MAX_PAGE = 200
MAX_OFFSET = 1_000_000
LIST_FILTERS = (
    ("status", Ticket.status),
    ("category", Ticket.category),
    ("urgency", Ticket.urgency),
    ("grid", Ticket.grid_code),
    ("owner", Ticket.owner_code),
    ("channel", Ticket.channel),
)


@bp.get("/tickets")
def list_tickets():
    query = db.select(Ticket).filter(visible_filter(g.actor))
    args = request.args
    try:
        for name, column in LIST_FILTERS:
            if args.get(name):
                values = [v.strip() for v in args[name].split(",") if v.strip()]
                if len(values) > 50 or any(len(v) > 64 for v in values):
                    raise InputError(f"{name}: at most 50 values of up to 64 characters")
                query = query.filter(column.in_(values))
        if args.get("number"):
            query = query.filter(Ticket.number == args["number"][:32])
        for name, op in (("since", "__ge__"), ("until", "__lt__")):
            when: datetime | None = moment(args, name)
            if when is not None:
                query = query.filter(getattr(Ticket.created_at, op)(when))
        limit = bounded_int(args, "limit", 50, 1, MAX_PAGE, clamp=True)
        offset = bounded_int(args, "offset", 0, 0, MAX_OFFSET)
    except InputError as exc:
        return jsonify(error="bad_request", message=str(exc)), 400
    total = db.session.execute(db.select(db.func.count()).select_from(query.subquery())).scalar_one()
    tickets = db.session.execute(query.order_by(Ticket.id.desc()).limit(limit).offset(offset)).scalars().all()
    unmasked = sees_personal_data(g.actor)
    possible = possible_duplicates(t.id for t in tickets if t.merged_into_id is None)
    return jsonify(
        total=total,
        limit=limit,
        offset=offset,
        tickets=[ticket_dict(t, unmasked, with_events=False, possible=possible.get(t.id, [])) for t in tickets],
    )


@bp.get("/tickets/<int:ticket_id>")
def get_ticket(ticket_id: int):
    try:
        ticket = load_visible(g.actor, ticket_id)
    except ActionRefused as refused:
        return refusal(refused)
    return jsonify(ticket_dict(ticket, sees_personal_data(g.actor)))
