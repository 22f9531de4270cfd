"""Nobody who unfollowed the official account is messaged: their replies are recorded as skipped, not sent.

WeChat would refuse most of these anyway (43004, or 45015 outside the window), but a template message can
still reach someone who left; and a resident who unfollowed has said they want nothing more from us. The
check is made when a message is about to go out, so staff actions, replies queued before the unsubscribe
and retries are all covered. Staff see the skip on the ticket.
"""

from __future__ import annotations

from sqlalchemy import select

from models import Outbox, OutboxStatus, Resident, add_event, db
from models.ticket import Ticket

# Channels whose recipient is an official-account openid.
RESIDENT_CHANNELS = frozenset({"mp", "mp_template"})


def unfollowed(openids: set[str]) -> set[str]:
    """Those of `openids` who are known residents and no longer follow the account."""
    if not openids:
        return set()
    return set(
        db.session.execute(
            select(Resident.openid).filter(Resident.openid.in_(openids), Resident.subscribed.is_(False))
        ).scalars()
    )


def skip_unfollowed(messages: list[Outbox]) -> list[Outbox]:
    """Mark the messages to residents who unfollowed SKIPPED (with a ticket event); returns the others."""
    gone = unfollowed({m.recipient for m in messages if m.channel in RESIDENT_CHANNELS})
    if not gone:
        return messages
    kept = []
    for message in messages:
        if message.channel in RESIDENT_CHANNELS and message.recipient in gone:
            mark_skipped(message, "unsubscribed")
        else:
            kept.append(message)
    return kept


def mark_skipped(message: Outbox, reason: str) -> None:
    message.status = OutboxStatus.SKIPPED
    message.last_error = f"skipped: {reason}"
    if message.ticket_id:
        ticket = db.session.get(Ticket, message.ticket_id)
        if ticket is not None:
            add_event(
                ticket, "notify_skipped", "system", reason=reason, outbox_id=message.id, message_kind=message.kind
            )
