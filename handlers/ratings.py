"""回访: the resident rates a resolved ticket. 不满意 reopens it; no answer within the window is no rating."""

from __future__ import annotations

import re
from datetime import datetime

from models import Outbox, Ticket, TicketStatus, add_event, db
from workflow import replies
from workflow.notify import notify_reporters
from workflow.transitions import reopen_ticket

VERDICTS = {
    "1": "satisfied",
    "满意": "satisfied",
    "非常满意": "satisfied",
    "2": "basic",
    "基本满意": "basic",
    "3": "unsatisfied",
    "不满意": "unsatisfied",
    "不满": "unsatisfied",
}
_RATING = re.compile(r"^\s*(?:评价\s*([0-9]+)\s*)?(非常满意|基本满意|不满意|不满|满意|[123])\s*[。.!！]?\s*$")


def parse_rating(text: str) -> tuple[str | None, str] | None:
    """("number or None", verdict) when the text is a rating, else None."""
    match = _RATING.match(text or "")
    if not match:
        return None
    return match.group(1), VERDICTS[match.group(2)]


def awaiting_rating(openid: str, number: str | None, now: datetime, window) -> Ticket | None:
    query = db.select(Ticket).filter(
        Ticket.status == TicketStatus.RESOLVED,
        Ticket.rated_at.is_(None),
        Ticket.reporters.any(external_id=openid),
    )
    if number:
        query = query.filter(Ticket.number == number)
    for ticket in db.session.execute(query.order_by(Ticket.resolved_at.desc())).scalars():
        if ticket.rating_asked_at and window.after(ticket.rating_asked_at) >= now:
            return ticket
    return None


def rate(ticket: Ticket, verdict: str, actor: str, now: datetime) -> list[Outbox]:
    ticket.satisfaction = verdict
    ticket.rated_at = now
    event = add_event(ticket, "rated", actor, verdict=verdict, from_status=ticket.status)
    event.created_at = now
    if verdict == "unsatisfied":
        reopen_ticket(ticket, now)
        event.data = {**event.data, "to_status": ticket.status}
        db.session.flush()
        return notify_reporters(ticket, "reopen", replies.update_text("reopen", ticket), now, step=event.id)
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = now
    event.data = {**event.data, "to_status": ticket.status}
    db.session.flush()
    return notify_reporters(ticket, "rated", replies.update_text("rated", ticket), now, step=event.id)
