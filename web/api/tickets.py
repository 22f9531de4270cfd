"""GET /api/tickets, GET /api/tickets/<id>."""

from __future__ import annotations

from datetime import datetime

from flask import abort, g, jsonify, request

from models import Ticket, db, subtree_codes
from web.api import bp
from web.api.serializers import ticket_dict
from workflow.duplicates import possible_duplicates

MAX_PAGE = 200


def _scope_filter():
    """Tickets whose owner or grid lies in the caller's subtree."""
    codes = subtree_codes(g.user.region_code)
    return db.or_(Ticket.owner_code.in_(codes), Ticket.grid_code.in_(codes))


@bp.get("/tickets")
def list_tickets():
    query = db.select(Ticket).filter(_scope_filter())
    args = request.args
    for field, column in (
        ("status", Ticket.status),
        ("category", Ticket.category),
        ("urgency", Ticket.urgency),
        ("grid", Ticket.grid_code),
        ("owner", Ticket.owner_code),
        ("channel", Ticket.channel),
    ):
        if args.get(field):
            query = query.filter(column.in_(args[field].split(",")))
    if args.get("number"):
        query = query.filter(Ticket.number == args["number"])
    for field, op in (("since", "__ge__"), ("until", "__lt__")):
        if args.get(field):
            try:
                moment = datetime.fromisoformat(args[field])
            except ValueError:
                return jsonify(error="bad_request", message=f"{field} must be ISO 8601"), 400
            if moment.tzinfo is None:
                return jsonify(error="bad_request", message=f"{field} needs a UTC offset"), 400
            query = query.filter(getattr(Ticket.created_at, op)(moment))
    try:
        limit = min(MAX_PAGE, max(1, int(args.get("limit", 50))))
        offset = max(0, int(args.get("offset", 0)))
    except ValueError:
        return jsonify(error="bad_request", message="limit/offset must be integers"), 400
    total = db.session.execute(db.select(db.func.count()).select_from(query.subquery())).scalar_one()
    tickets = db.session.execute(query.order_by(Ticket.id.desc()).limit(limit).offset(offset)).scalars().all()
    unmasked = g.user.sees_personal_data
    possible = possible_duplicates(t.id for t in tickets if t.merged_into_id is None)
    return jsonify(
        total=total,
        limit=limit,
        offset=offset,
        tickets=[ticket_dict(t, unmasked, with_events=False, possible=possible.get(t.id, [])) for t in tickets],
    )


@bp.get("/tickets/<int:ticket_id>")
def get_ticket(ticket_id: int):
    ticket = db.session.execute(db.select(Ticket).filter(Ticket.id == ticket_id, _scope_filter())).scalar_one_or_none()
    if ticket is None:
        abort(404)
    return jsonify(ticket_dict(ticket, g.user.sees_personal_data))
