"""Creating and re-routing tickets. Writes Ticket, events and Outbox rows; never calls a platform API."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from config import CONFIG_DIR
from demand.duplicates import (
    MERGE,
    DuplicateConfig,
    Facts,
    Verdict,
    facts_from_demand,
    load_duplicate_config,
    rank,
    service_code_of,
)
from models import (
    DuplicateLink,
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
from workflow.rules.routing import RoutingConfig, load_routing, route
from workflow.rules.sla import LOCAL_TZ, SlaTable, load_sla

_sla_cache: dict[str, SlaTable] = {}
_routing_cache: dict[str, RoutingConfig] = {}
_duplicate_cache: dict[str, DuplicateConfig] = {}
# The most recent open tickets of the grid (or place) that the duplicate check scores.
MAX_CANDIDATES = 50


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
        _active_or_none(reporter_grid),
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


def _active_or_none(code: str | None) -> str | None:
    """A resident's remembered grid may have been retired by a re-drawn map: it then says nothing."""
    node = node_by_code(code)
    return code if node is not None and node.retired_at is None else None


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


@dataclass
class DuplicateMatch:
    """What `find_duplicate` found: an open ticket to join (only when the scorer is certain), or suggestions."""

    ticket: Ticket | None = None  # join this one
    verdict: Verdict | None = None  # why (the merge verdict)
    suggestions: list[tuple[Ticket, Verdict]] = field(default_factory=list)  # 可能重复, when nothing is joined


def duplicate_config(path: Path = CONFIG_DIR / "routing.yaml") -> DuplicateConfig:
    key = str(path)
    if key not in _duplicate_cache:
        _duplicate_cache[key] = load_duplicate_config(path)
    return _duplicate_cache[key]


def ticket_facts(ticket: Ticket) -> Facts:
    """What the duplicate scorer compares on an existing ticket: its own fields, its own service_code."""
    return Facts(
        description=ticket.description or "",
        category=ticket.category,
        subcategory=ticket.subcategory,
        service_code=service_code_of(ticket.category, ticket.subcategory),
        place=ticket.place,
        grid=ticket.grid_code,
        building=ticket.building,
        unit=ticket.unit,
        location_text=ticket.location_text,
        lat=ticket.lat,
        lng=ticket.lng,
        created_at=ticket.created_at,
        matter=(ticket.fields or {}).get("matter"),
    )


def find_duplicate(
    demand,
    grid_code: str | None,
    now: datetime,
    *,
    chosen_service: bool = False,
    lat: float | None = None,
    lng: float | None = None,
    reporter_id: str | None = None,
) -> DuplicateMatch:
    """Open tickets in the same grid (or place) that may be the same job, scored by demand.duplicates.

    Only a `merge` verdict comes back as `ticket` (an automatic join); the rest are `suggestions` for staff.
    `chosen_service`: the reporter chose the demand's category pair (an Open311 service_code), so a ticket
    filed under another one is never the same job (compared as category pairs, whatever the code's spelling);
    `reporter_id` leaves out tickets split apart from one this reporter is on (a split pair is never matched
    again)."""
    config = duplicate_config()
    if not (grid_code or demand.location.place):
        return DuplicateMatch()
    since = now - timedelta(days=config.window_days)
    query = db.select(Ticket).filter(
        Ticket.created_at >= since,
        Ticket.status.in_([TicketStatus.ASSIGNED, TicketStatus.SIGNED, TicketStatus.PROCESSING]),
        Ticket.merged_into_id.is_(None),
    )
    if grid_code:
        query = query.filter(Ticket.grid_code == grid_code)
    else:
        # 幸福里 (a community's short name, no grid) and 幸福里小区 (its estate) are written for the same spot.
        place = demand.location.place
        query = query.filter(
            db.or_(Ticket.place.startswith(place, autoescape=True), db.literal(place).startswith(Ticket.place))
        )
    if demand.location.building:
        # Another building is never the same job: leaving those out keeps a busy grid's other buildings from
        # crowding the real candidates out of the limit below.
        building = demand.location.building
        query = query.filter(db.or_(Ticket.building.is_(None), Ticket.building == building))
    service_code = service_code_of(demand.category, demand.subcategory) if chosen_service else None
    new = facts_from_demand(demand, service_code=service_code, lat=lat, lng=lng, created_at=now)
    new = replace(new, grid=new.grid or grid_code)
    candidates = db.session.execute(query.order_by(Ticket.id.desc()).limit(MAX_CANDIDATES)).scalars().all()
    ranked = rank(new, ((t, ticket_facts(t)) for t in candidates), config, now)
    if ranked and reporter_id:
        apart = _split_from(reporter_id, [t.id for t, _ in ranked])
        ranked = [(t, verdict) for t, verdict in ranked if t.id not in apart]
    if ranked and ranked[0][1].decision == MERGE:
        return DuplicateMatch(ranked[0][0], ranked[0][1])
    return DuplicateMatch(suggestions=ranked)


def _split_from(reporter_id: str, ids: list[int]) -> set[int]:
    """Those of `ids` that were split apart from a ticket this reporter is on (either side of the split)."""
    links = db.session.execute(
        db.select(DuplicateLink.ticket_id, DuplicateLink.other_id).filter(
            DuplicateLink.kind == "split", db.or_(DuplicateLink.ticket_id.in_(ids), DuplicateLink.other_id.in_(ids))
        )
    ).all()
    if not links:
        return set()
    partners = {a for a, _ in links} | {b for _, b in links if b is not None}
    mine = set(
        db.session.execute(
            db.select(TicketReporter.ticket_id).filter(
                TicketReporter.external_id == reporter_id, TicketReporter.ticket_id.in_(partners)
            )
        ).scalars()
    )
    return {a for a, b in links if b in mine} | {b for a, b in links if a in mine and b is not None}


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
    """The active grids, for locating a point (retired grids take no new work)."""
    rows = db.session.execute(db.select(RegionNode).filter_by(tier="grid", retired_at=None)).scalars()
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
