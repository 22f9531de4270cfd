"""Telling reporters what happened: one Outbox row per reporter per update, on the channel that can reach them.

Inside WeChat's 48-hour window a customer-service message; outside it a template message (the template
id is configuration); officers through the WeCom app. Nothing here sends: delivery jobs do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models import Outbox, Resident, Ticket, db

SERVICE_WINDOW = timedelta(hours=48)


def notify_reporters(ticket: Ticket, kind: str, text: str, now: datetime, step: int | str) -> list[Outbox]:
    """Queue `text` for every distinct reporter of the ticket. `step` makes the dedup key unique per update
    (an event id), so a re-run of the same step queues nothing twice and every update reaches everyone."""
    queued, seen = [], set()
    for reporter in ticket.reporters:
        key = (reporter.channel, reporter.external_id)
        if not reporter.external_id or key in seen or reporter.withdrawn_at is not None:
            continue
        seen.add(key)
        channel = _channel_for(reporter.channel, reporter.external_id, now)
        if channel is None:
            continue
        message = Outbox(
            channel=channel,
            recipient=reporter.external_id,
            kind=kind,
            payload={"text": text, "number": ticket.number, "status": ticket.status},
            dedup_key=f"notify:{ticket.id}:{kind}:{step}:{reporter.channel}:{reporter.external_id}"[:160],
            ticket_id=ticket.id,
        )
        db.session.add(message)
        queued.append(message)
    return queued


def _channel_for(reporter_channel: str, external_id: str, now: datetime) -> str | None:
    if reporter_channel == "mp":
        resident = db.session.execute(db.select(Resident).filter_by(openid=external_id)).scalar_one_or_none()
        if resident is not None and resident.last_message_at and now - resident.last_message_at <= SERVICE_WINDOW:
            return "mp"
        return "mp_template"
    if reporter_channel in ("wecom", "wecom_bot"):
        return "wecom_app"
    return None  # open311/console reporters have no push channel
