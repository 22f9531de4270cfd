"""Creating and re-routing tickets. Writes Ticket, events and Outbox rows; never calls a platform API."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from config import CONFIG_DIR
from models import (
    Outbox,
    RegionNode,
    Ticket,
    TicketReporter,
    TicketStatus,
    add_event,
    db,
    node_by_code,
    root_node,
)
from workflow.routing import route
from workflow.sla import LOCAL_TZ, SlaTable, load_sla

_sla_cache: dict[str, SlaTable] = {}


def sla_table(path: Path = CONFIG_DIR / "sla.yaml") -> SlaTable:
    key = str(path)
    if key not in _sla_cache:
        _sla_cache[key] = load_sla(path)
    return _sla_cache[key]


def assign_number(ticket: Ticket) -> None:
    """What residents quote: local date + the row id, so it is unique without a counter table."""
    ticket.number = f"{ticket.created_at.astimezone(LOCAL_TZ):%y%m%d}{ticket.id:06d}"


def apply_demand(ticket: Ticket, demand, reporter_grid: str | None) -> None:
    """Copy the parser's structured demand onto the ticket and (re)route it."""
    location = demand.location
    ticket.category = demand.category
    ticket.subcategory = demand.subcategory
    ticket.confidence = demand.confidence
    ticket.urgency = demand.urgency
    ticket.urgency_reason = (demand.urgency_reason or None) and str(demand.urgency_reason)[:200]
    ticket.location_text = location.text or ticket.location_text
    ticket.place = location.place or ticket.place
    ticket.building = location.building or ticket.building
    ticket.unit = location.unit or ticket.unit
    ticket.room = location.room or ticket.room
    ticket.description = demand.description or ticket.description
    ticket.missing = list(demand.missing)
    ticket.fields = dict(demand.fields or {})
    root = root_node()
    assignment = route(location.grid, location.node, reporter_grid, root.code if root else None)
    ticket.grid_code = assignment.grid_code
    ticket.owner_code = assignment.owner_code
    ticket.fields["routed_by"] = assignment.reason


def set_deadlines(ticket: Ticket, start: datetime) -> None:
    rule = sla_table().rule_for(ticket.urgency, ticket.subcategory)
    ticket.sign_due_at = rule.sign.after(start)
    ticket.due_at = rule.resolve.after(start)


def create_ticket(
    *,
    demand,
    channel: str,
    now: datetime,
    reporter_channel: str,
    reporter_id: str | None,
    reporter_grid: str | None = None,
    reporter_name: str | None = None,
    actor: str,
) -> Ticket:
    """A new ticket from a parsed demand: routed, deadlines set, reporter and events recorded."""
    ticket = Ticket(channel=channel, created_at=now, status=TicketStatus.ASSIGNED)
    apply_demand(ticket, demand, reporter_grid)
    set_deadlines(ticket, now)
    db.session.add(ticket)
    db.session.flush()
    assign_number(ticket)
    phones = [c.value for c in demand.contacts if c.kind == "phone"]
    ids = [c.value for c in demand.contacts if c.kind == "id_card"]
    db.session.add(
        TicketReporter(
            ticket=ticket,
            channel=reporter_channel,
            external_id=reporter_id,
            name=demand.reporter_name or reporter_name,
            phone=phones[0] if phones else None,
            id_card=ids[0] if ids else None,
            created_at=now,
        )
    )
    add_event(
        ticket, "created", actor, category=ticket.category, urgency=ticket.urgency, missing=list(ticket.missing)
    ).created_at = now
    add_event(
        ticket,
        "assigned",
        "system",
        owner=ticket.owner_code,
        reason=ticket.fields.get("routed_by"),
        due_at=ticket.due_at.isoformat(),
    ).created_at = now
    return ticket


def owner_name(ticket: Ticket) -> str | None:
    node = node_by_code(ticket.owner_code)
    return node.name if node else None


def grid_nodes() -> list[dict]:
    rows = db.session.execute(db.select(RegionNode).filter_by(tier="grid")).scalars()
    return [{"code": n.code, "boundary": n.boundary, "lat": n.lat, "lng": n.lng} for n in rows]


def queue_message(
    *, channel: str, recipient: str, kind: str, text: str, dedup_key: str, ticket: Ticket | None = None
) -> Outbox:
    """An outbound message recorded now, sent by a delivery job after the transaction commits."""
    message = Outbox(
        channel=channel,
        recipient=recipient,
        kind=kind,
        payload={"text": text},
        dedup_key=dedup_key,
        ticket_id=ticket.id if ticket is not None else None,
    )
    db.session.add(message)
    return message
