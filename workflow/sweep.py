"""The deadline sweep: 催办 reminders, 督办 escalations, overdue marks, expired ratings — all as of `now`.

Idempotent for a given moment: every step changes the state its query selects on (reminded_at, owner,
status), so a second run for the same `now` finds nothing to do. Rows are locked (SKIP LOCKED on
PostgreSQL) so two sweeps at once never act on the same ticket twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from models import Outbox, Ticket, TicketHandler, TicketStatus, add_event, db
from workflow.group_notices import notify_groups
from workflow.tickets import sla_table
from workflow.transitions import ActionRefused, apply_action

S = TicketStatus
BATCH = 500
SYSTEM = "system:sweep"


def run_sweep(now: datetime) -> tuple[Counter, list[int]]:
    """Run every check; returns (counts by step, outbox ids to deliver)."""
    counts: Counter = Counter()
    outbox: list[int] = []
    sla = sla_table()
    shortest_grace = min(d.after(now) - now for d in sla.escalate_after_reminder.values())

    _in_batches(
        db.select(Ticket.id).filter(
            Ticket.status == S.ASSIGNED, Ticket.sign_due_at <= now, Ticket.reminded_at.is_(None)
        ),
        lambda t: t.status == S.ASSIGNED and t.sign_due_at <= now and t.reminded_at is None,
        lambda t: _remind(t, now),
        "reminded",
        counts,
        outbox,
    )
    _in_batches(
        db.select(Ticket.id).filter(
            Ticket.status == S.ASSIGNED, Ticket.reminded_at.is_not(None), Ticket.reminded_at <= now - shortest_grace
        ),
        lambda t: t.status == S.ASSIGNED
        and t.reminded_at is not None
        and sla.escalate_after(t.urgency).after(t.reminded_at) <= now
        and not _noted_at_top(t, "unsigned"),
        lambda t: _escalate(t, now, "超时未签收，自动提级督办", "unsigned"),
        "escalated_unsigned",
        counts,
        outbox,
    )
    open_working = [S.ASSIGNED, S.SIGNED, S.PROCESSING]
    _in_batches(
        db.select(Ticket.id).filter(Ticket.status.in_(open_working), Ticket.due_at <= now),
        lambda t: t.status in open_working and t.due_at <= now and not _noted_at_top(t, "overdue"),
        lambda t: _escalate(t, now, "超过办结时限，自动提级督办", "overdue"),
        "escalated_overdue",
        counts,
        outbox,
    )
    _handlers_in_batches(now, counts, outbox)
    window = sla.rating_window
    _in_batches(
        db.select(Ticket.id).filter(
            Ticket.status == S.RESOLVED,
            Ticket.rated_at.is_(None),
            Ticket.rating_asked_at <= now - (window.after(now) - now),
        ),
        lambda t: t.status == S.RESOLVED and t.rated_at is None and window.after(t.rating_asked_at) <= now,
        lambda t: _expire_rating(t, now),
        "ratings_expired",
        counts,
        outbox,
    )
    return counts, outbox


def _in_batches(id_query, still_due, act, name: str, counts: Counter, outbox: list[int]) -> None:
    ids = db.session.execute(id_query.order_by(Ticket.id)).scalars().all()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        tickets = (
            db.session.execute(
                db.select(Ticket).filter(Ticket.id.in_(chunk)).order_by(Ticket.id).with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        queued: list[Outbox] = []
        for ticket in tickets:
            if still_due(ticket):
                escalated_before = ticket.escalation_level
                queued += act(ticket)
                lapsed = name.startswith("escalated") and ticket.escalation_level == escalated_before
                counts["lapsed_at_top" if lapsed else name] += 1
        db.session.flush()
        outbox += [message.id for message in queued]
        db.session.commit()


def _remind(ticket: Ticket, now: datetime) -> list[Outbox]:
    """催办: the owner is reminded once per step; the group hears it."""
    ticket.reminded_at = now
    add_event(ticket, "reminded", SYSTEM, note="超过签收时限，催办", owner=ticket.owner_code).created_at = now
    return _group(ticket, "reminder", now, ticket.owner_code)


def _escalate(ticket: Ticket, now: datetime, note: str, reason: str) -> list[Outbox]:
    """督办: one tier up with fresh clocks; at the top, the overdue is recorded once."""
    try:
        queued = apply_action(ticket, "escalate", SYSTEM, now, note=note)
    except ActionRefused:
        fields = dict(ticket.fields or {})
        fields[f"noted_at_top_{reason}"] = _clock(ticket, reason)
        ticket.fields = fields
        add_event(ticket, "overdue", SYSTEM, note="已在最高一级仍超时", reason=reason).created_at = now
        return _group(ticket, "overdue", now, ticket.owner_code)
    ticket.events[-1].data = {**ticket.events[-1].data, "reason": reason}
    return queued + _group(ticket, "overdue", now, ticket.owner_code) if reason == "overdue" else queued


def _clock(ticket: Ticket, reason: str) -> str | None:
    moment = ticket.due_at if reason == "overdue" else ticket.sign_due_at
    return moment.astimezone(UTC).isoformat() if moment else None


def _noted_at_top(ticket: Ticket, reason: str) -> bool:
    """At the county there is no tier left: the lapse is recorded once per deadline, not on every sweep."""
    return (ticket.fields or {}).get(f"noted_at_top_{reason}") == _clock(ticket, reason)


def _expire_rating(ticket: Ticket, now: datetime) -> list[Outbox]:
    """No answer within the window is no rating — never counted as satisfied."""
    ticket.status = S.CLOSED
    ticket.closed_at = now
    add_event(ticket, "rating_expired", SYSTEM, from_status=S.RESOLVED, to_status=S.CLOSED).created_at = now
    return []


def _handlers_in_batches(now: datetime, counts: Counter, outbox: list[int]) -> None:
    handlers = (
        db.session.execute(
            db.select(TicketHandler)
            .filter(
                TicketHandler.status == "pending", TicketHandler.sign_due_at <= now, TicketHandler.reminded_at.is_(None)
            )
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    queued: list[Outbox] = []
    for handler in handlers:
        handler.reminded_at = now
        add_event(
            handler.ticket, "reminded", SYSTEM, note="协办单位超时未签收，催办", node=handler.node_code
        ).created_at = now
        queued += _group(handler.ticket, "reminder", now, handler.node_code)
        counts["handlers_reminded"] += 1
    db.session.flush()
    outbox += [message.id for message in queued]
    db.session.commit()


def _group(ticket: Ticket, kind: str, now: datetime, node_code: str | None) -> list[Outbox]:
    return notify_groups(ticket, kind, now, node_code=node_code)
