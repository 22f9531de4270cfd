"""Tickets as the API returns them (DESIGN.md's field list), personal data masked by role."""

from __future__ import annotations

from models import Ticket
from ops.privacy import mask_id_card, mask_name, mask_phone, mask_text
from workflow.duplicates import Possible, possible_duplicates
from workflow.tickets import needs_review


def iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def reporter_dict(reporter, unmasked: bool) -> dict:
    return {
        "reporter_id": reporter.id,  # what the split action takes
        "channel": reporter.channel,
        "id": reporter.external_id if unmasked else (reporter.external_id or "")[:6] + "…",
        "name": reporter.name if unmasked or not reporter.name else mask_name(reporter.name),
        "phone": reporter.phone if unmasked or not reporter.phone else mask_phone(reporter.phone),
        "id_card": reporter.id_card if unmasked or not reporter.id_card else mask_id_card(reporter.id_card),
    }


def ticket_dict(
    ticket: Ticket, unmasked: bool, with_events: bool = True, possible: list[Possible] | None = None
) -> dict:
    """`possible` (the ticket's 可能重复) is looked up when not given; lists pass them in one batch."""
    if possible is None:
        possible = possible_duplicates([ticket.id]).get(ticket.id, []) if ticket.merged_into_id is None else []
    names = [r.name for r in ticket.reporters if r.name]
    data = {
        "id": ticket.id,
        "number": ticket.number,
        "status": ticket.status,
        "category": ticket.category,
        "subcategory": ticket.subcategory,
        "confidence": ticket.confidence,
        # In the 待分类 queue: `category` is the parser's suggestion, a person has to confirm it.
        "needs_review": needs_review(ticket),
        "urgency": ticket.urgency,
        "urgency_reason": ticket.urgency_reason,
        "grid": ticket.grid_code,
        "owner": ticket.owner_code,
        "location": {
            "text": ticket.location_text if unmasked else mask_text(ticket.location_text or "", names=names) or None,
            "place": ticket.place,
            "building": ticket.building,
            "unit": ticket.unit,
            "room": ticket.room,
            "lat": ticket.lat,
            "lng": ticket.lng,
        },
        "description": ticket.description if unmasked else mask_text(ticket.description or "", names=names),
        "channel": ticket.channel,
        "missing": list(ticket.missing or []),
        "reporters": [reporter_dict(r, unmasked) for r in ticket.reporters],
        "created_at": iso(ticket.created_at),
        "sign_due_at": iso(ticket.sign_due_at),
        "due_at": iso(ticket.due_at),
        "escalation_level": ticket.escalation_level,
        "possible_duplicates": [p.to_dict() for p in possible],
    }
    if with_events:
        data["events"] = [
            {
                "kind": e.kind,
                "actor": e.actor if unmasked else _mask_actor(e.actor),
                "note": e.note if unmasked or not e.note else mask_text(e.note, names=names),
                "data": e.data,
                "at": iso(e.created_at),
            }
            for e in ticket.events
        ]
    return data


def _mask_actor(actor: str) -> str:
    kind, _, ident = actor.partition(":")
    return f"{kind}:{ident[:6]}…" if ident and kind in ("resident", "officer") else actor
