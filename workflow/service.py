"""One function per ticket use case, shared by the staff API and the console: load and lock the ticket,
ask the policy, apply, commit, then queue the deliveries. A refusal rolls back and changes nothing; the
channel only turns the result (or the ActionRefused) into JSON or HTML."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from delivery.outbox import enqueue_delivery
from demand.taxonomy import Taxonomy
from models import Ticket, db
from workflow.policy import ActionRefused, Actor, may_see
from workflow.transitions import apply_action

MAX_ID = 2**31 - 1  # tickets.id is a 32-bit integer on PostgreSQL


def load_visible(actor: Actor, ticket_id: int, for_update: bool = False) -> Ticket:
    """The ticket when the actor may see it; else ActionRefused(404) (no hint that it exists)."""
    if not isinstance(ticket_id, int) or not 0 < ticket_id <= MAX_ID:
        raise ActionRefused(404, "工单不存在或不在您的管辖范围内")
    query = db.select(Ticket).filter(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update(of=Ticket)
    ticket = db.session.execute(query).scalar_one_or_none()
    if ticket is None or not may_see(actor, ticket):
        raise ActionRefused(404, "工单不存在或不在您的管辖范围内")
    return ticket


def act_on_ticket(
    actor: Actor, ticket_id: int, action: str, note: str | None, params: Mapping, now: datetime
) -> Ticket:
    """Apply one workflow action as this actor, commit, and queue who is told. Raises ActionRefused
    (after rolling back)."""
    try:
        ticket = load_visible(actor, ticket_id, for_update=True)
        outbox = apply_action(ticket, action, actor, now, note=note, **dict(params))
    except ActionRefused:
        db.session.rollback()
        raise
    ids = [message.id for message in outbox]
    db.session.commit()
    for outbox_id in ids:
        enqueue_delivery(outbox_id)
    return ticket


def correct(
    actor: Actor, ticket_id: int, values: Mapping[str, str], taxonomy: Taxonomy, now: datetime, note: str | None
) -> Ticket:
    """Staff fix the parser's fields (workflow.queue.correct_ticket); committed, or rolled back and refused."""
    from workflow.queue import correct_ticket

    try:
        ticket = load_visible(actor, ticket_id, for_update=True)
        correct_ticket(ticket, actor, values, taxonomy, now, note=note)
    except ActionRefused:
        db.session.rollback()
        raise
    db.session.commit()
    return ticket
