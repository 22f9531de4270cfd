"""Creating and re-routing tickets. Writes Ticket, events and Outbox rows; never calls a platform API."""

from __future__ import annotations

from datetime import datetime, timedelta
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
from workflow.rules.routing import RoutingConfig, bigrams, load_routing, route, similarity
from workflow.rules.sla import LOCAL_TZ, SlaTable, load_sla

_sla_cache: dict[str, SlaTable] = {}
_routing_cache: dict[str, RoutingConfig] = {}


def routing_config(path: Path = CONFIG_DIR / "routing.yaml") -> RoutingConfig:
    key = str(path)
    if key not in _routing_cache:
        _routing_cache[key] = load_routing(path)
    return _routing_cache[key]


def lineage(code: str) -> list[tuple[str, str]]:
    """(code, tier) from the root down to the node."""
    node = node_by_code(code)
    if node is None:
        return []
    codes = node.ancestors_codes()
    tiers = dict(
        db.session.execute(db.select(RegionNode.code, RegionNode.tier).filter(RegionNode.code.in_(codes))).all()
    )
    return [(c, tiers[c]) for c in codes if c in tiers]


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
    assignment = route(
        location.grid,
        location.node,
        reporter_grid,
        root.code if root else None,
        category=ticket.category,
        subcategory=ticket.subcategory,
        rules=routing_config().rules,
        lineage=lineage,
    )
    ticket.grid_code = assignment.grid_code
    ticket.owner_code = assignment.owner_code
    ticket.owner_member_id = _member_with_role(assignment.owner_code, assignment.member_role)
    ticket.closable_tier = assignment.closable_tier
    ticket.fields["routed_by"] = assignment.reason
    mark_for_review(ticket, demand)


# The 待分类 mark in ticket.fields: "pending" while a person has to confirm the parser's guessed category,
# "done" once staff corrected or confirmed it (kept, so the share that abstained can still be counted).
REVIEW_FIELD = "review"
# The region nodes an ambiguous place name may mean (Location.candidates); the ticket is routed to the node
# they share until staff choose.
CANDIDATES_FIELD = "place_candidates"


def mark_for_review(ticket: Ticket, demand) -> None:
    """Send a ticket whose category the parser was unsure of (Demand.needs_review) to the 待分类 queue."""
    if getattr(demand, "needs_review", False):
        ticket.fields[REVIEW_FIELD] = "pending"
    candidates = list(getattr(demand.location, "candidates", None) or [])
    if candidates:  # an ambiguous place: the nodes it may mean, for staff to pick the grid
        ticket.fields[CANDIDATES_FIELD] = candidates[:10]


def needs_review(ticket: Ticket) -> bool:
    return (ticket.fields or {}).get(REVIEW_FIELD) == "pending"


def needs_review_filter():
    """SQL condition for tickets waiting in 待分类 (portable JSON access: SQLite and PostgreSQL)."""
    return Ticket.fields[REVIEW_FIELD].as_string() == "pending"


def _member_with_role(node_code: str | None, role: str | None) -> int | None:
    if not node_code or not role:
        return None
    node = node_by_code(node_code)
    member = next((m for m in node.members if m.role == role and m.active), None) if node else None
    return member.id if member else None


def set_deadlines(ticket: Ticket, start: datetime) -> None:
    """Fresh clocks from `start`: a new ticket, or a new owner after escalation or re-dispatch."""
    rule = sla_table().rule_for(ticket.urgency, ticket.subcategory)
    ticket.step_started_at = start
    ticket.reminded_at = None
    ticket.sign_due_at = rule.sign.after(start)
    ticket.due_at = rule.resolve.after(start)
    if rule.respond and ticket.first_response_at is None:
        ticket.respond_due_at = rule.respond.after(start)


def find_duplicate(demand, grid_code: str | None, now: datetime) -> Ticket | None:
    """An open ticket about the same thing: same category, same grid (or place), similar words, recent."""
    config = routing_config()
    if not demand.category or not (grid_code or demand.location.place):
        return None
    since = now - timedelta(days=config.duplicate_window_days)
    query = db.select(Ticket).filter(
        Ticket.category == demand.category,
        Ticket.created_at >= since,
        Ticket.status.in_([TicketStatus.ASSIGNED, TicketStatus.SIGNED, TicketStatus.PROCESSING]),
        Ticket.merged_into_id.is_(None),
    )
    query = (
        query.filter(Ticket.grid_code == grid_code)
        if grid_code
        else query.filter(Ticket.place == demand.location.place)
    )
    best, best_score = None, config.duplicate_min_similarity
    words = bigrams(demand.description or "")
    for candidate in db.session.execute(query.order_by(Ticket.id.desc()).limit(50)).scalars():
        score = similarity(candidate.description or "", words)
        same_place = bool(demand.location.place) and candidate.place == demand.location.place
        if same_place:
            score += 0.15  # the same named place is strong evidence on its own
        if score >= best_score:
            best, best_score = candidate, score
    return best


def add_reporter(
    ticket: Ticket, *, channel: str, external_id: str | None, demand=None, name: str | None = None, now: datetime
) -> TicketReporter:
    phones = [c.value for c in demand.contacts if c.kind == "phone"] if demand is not None else []
    ids = [c.value for c in demand.contacts if c.kind == "id_card"] if demand is not None else []
    reporter = TicketReporter(
        ticket=ticket,
        channel=channel,
        external_id=external_id,
        name=(demand.reporter_name if demand is not None else None) or name,
        phone=phones[0] if phones else None,
        id_card=ids[0] if ids else None,
        created_at=now,
    )
    db.session.add(reporter)
    return reporter


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
    add_reporter(ticket, channel=reporter_channel, external_id=reporter_id, demand=demand, name=reporter_name, now=now)
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
    if not ticket.owner_code:
        return None
    # Just the name, and no flush of the intake's pending rows for it (they go out at its commit, in one flush).
    with db.session.no_autoflush:
        return db.session.execute(db.select(RegionNode.name).filter_by(code=ticket.owner_code)).scalar_one_or_none()


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
