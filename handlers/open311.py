"""Open311 GeoReport v2 on top of the work-order model: the taxonomy as services, tickets as service
requests, and new requests through the same intake as WeChat (parse → route → deadlines → group notice).

Every request is made with an API token (`flask create-token`), so reading and creating are limited to
the token user's region subtree like the staff API. Personal data is always masked here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from demand.taxonomy import Taxonomy
from models import DONE_STATUSES, STATUS_LABELS, Outbox, Ticket, TicketStatus, User, db, node_by_code
from ops.privacy import mask_text
from workflow.duplicates import join_report, record_suggestions
from workflow.group_notices import notify_groups
from workflow.rules.geo import contains, distance_km
from workflow.scope import in_scope, node_names, scope_codes, visible_filter
from workflow.tickets import create_ticket, find_duplicate, grid_nodes, owner_name

DEFAULT_DAYS = 90  # GeoReport v2: without dates, the last 90 days
MAX_RESULTS = 1000
NEAREST_GRID_KM = 3.0  # a point outside every boundary still belongs to a grid centre this close
DESCRIPTION_MAX = 4000


class Open311Error(Exception):
    """Refused with GeoReport's error shape: [{"code": status, "description": message}]."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description


# --- services ----------------------------------------------------------------------------------------


def service_code(category: str | None, subcategory: str | None) -> str:
    if not category:
        return ""
    return f"{category}/{subcategory}" if subcategory else category


def services(taxonomy: Taxonomy) -> list[dict]:
    """One service per second-level category, grouped by its first level (service_code "一级/二级")."""
    rows = []
    for category in taxonomy.categories:
        for sub in category.children:
            rows.append(
                {
                    "service_code": service_code(category.name, sub.name),
                    "service_name": sub.name,
                    "description": f"{category.name} — {sub.name}",
                    "metadata": False,
                    "type": "realtime",
                    "keywords": ",".join(sub.keywords[:8]),
                    "group": category.name,
                }
            )
    return rows


# --- reading -------------------------------------------------------------------------------------------


def request_dict(ticket: Ticket, names: Mapping[str, str]) -> dict:
    """A ticket as a GeoReport service request. Status is open/closed; the richer one is in status_notes."""
    status = "closed" if ticket.status in DONE_STATUSES else "open"
    notes = STATUS_LABELS.get(ticket.status, ticket.status)
    if ticket.merged_into_id:
        notes += "（已合并到其他工单）"
    return {
        "service_request_id": ticket.number,
        "status": status,
        "status_notes": f"{ticket.status}: {notes}",
        "service_name": ticket.subcategory or ticket.category or "",
        "service_code": service_code(ticket.category, ticket.subcategory),
        "description": mask_text(ticket.description or ""),
        "agency_responsible": names.get(ticket.owner_code, ticket.owner_code or ""),
        "service_notice": "",
        "requested_datetime": _iso(ticket.created_at),
        "updated_datetime": _iso(ticket.updated_at or ticket.created_at),
        "expected_datetime": _iso(ticket.due_at) if status == "open" else "",
        "address": mask_text(ticket.location_text or ticket.place or ""),
        "address_id": ticket.grid_code or "",
        "zipcode": "",
        "lat": ticket.lat if ticket.lat is not None else "",
        "long": ticket.lng if ticket.lng is not None else "",
        "media_url": "",
    }


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def parse_moment(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C/ISO 8601 datetime, e.g. 2026-11-01T00:00:00+08:00") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00+08:00")
    return moment


def find_requests(user: User, args: Mapping[str, str], now: datetime) -> list[dict]:
    """GET requests: service_request_id (comma list), service_code, start_date, end_date, status."""
    query = db.select(Ticket).filter(visible_filter(user, scope_codes(user)))
    ids = [i.strip() for i in (args.get("service_request_id") or "").split(",") if i.strip()]
    if ids:
        query = query.filter(Ticket.number.in_(ids[:MAX_RESULTS]))
    else:
        start = parse_moment("start_date", args.get("start_date"))
        end = parse_moment("end_date", args.get("end_date"))
        if start is None and end is None:
            start = now - timedelta(days=DEFAULT_DAYS)
        if start is not None and end is not None and start >= end:
            raise Open311Error(400, "start_date must be before end_date")
        if start is not None:
            query = query.filter(Ticket.created_at >= start)
        if end is not None:
            query = query.filter(Ticket.created_at <= end)
        codes = [c.strip() for c in (args.get("service_code") or "").split(",") if c.strip()]
        if codes:
            conditions = []
            for code in codes:
                category, _, sub = code.partition("/")
                conditions.append(
                    db.and_(Ticket.category == category, Ticket.subcategory == sub) if sub else Ticket.category == code
                )
            query = query.filter(db.or_(*conditions))
        statuses = {s.strip().lower() for s in (args.get("status") or "").split(",") if s.strip()}
        if statuses - {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both")
        if statuses == {"open"}:
            query = query.filter(Ticket.status.not_in([str(s) for s in DONE_STATUSES]))
        elif statuses == {"closed"}:
            query = query.filter(Ticket.status.in_([str(s) for s in DONE_STATUSES]))
    ordered = query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(MAX_RESULTS)
    tickets = db.session.execute(ordered).scalars().all()
    names = node_names(t.owner_code for t in tickets)
    return [request_dict(t, names) for t in tickets]


def find_request(user: User, number: str) -> dict:
    ticket = db.session.execute(
        db.select(Ticket).filter(Ticket.number == number, visible_filter(user, scope_codes(user)))
    ).scalar_one_or_none()
    if ticket is None:
        raise Open311Error(404, f"no service request {number}")
    return request_dict(ticket, node_names([ticket.owner_code]))


# --- creating ----------------------------------------------------------------------------------------


@dataclass
class Submitted:
    ticket: Ticket
    notice: str
    outbox: list[Outbox]
    joined: bool = False


def _float(form: Mapping[str, str], name: str) -> float | None:
    value = (form.get(name) or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None
    if not math.isfinite(number):
        raise Open311Error(400, f"{name} must be a number")
    return number


def grid_at(lat: float, lng: float) -> str | None:
    """The grid whose boundary holds the point, else a grid centre within NEAREST_GRID_KM."""
    grids = grid_nodes()
    for grid in grids:
        if contains(grid.get("boundary"), lat, lng):
            return grid["code"]
    near = [
        (distance_km(lat, lng, g["lat"], g["lng"]), g["code"])
        for g in grids
        if g.get("lat") is not None and g.get("lng") is not None
    ]
    best = min(near, default=None)
    return best[1] if best and best[0] <= NEAREST_GRID_KM else None


def _full_name(first: str, last: str) -> str:
    """张 + 伟 → 张伟 (family name first, no space); John + Smith → John Smith."""
    if all(part and all("\u4e00" <= ch <= "\u9fff" for ch in part) for part in (first, last)):
        return last + first
    return " ".join(part for part in (first, last) if part)


def submit_request(user: User, form: Mapping[str, str], parser, taxonomy: Taxonomy, now: datetime) -> Submitted:
    """POST requests: parse the description like any message, route it inside the caller's region,
    join an open duplicate or open a ticket. Returns the ticket and the Outbox rows to enqueue after commit."""
    if user.role == "viewer":
        raise Open311Error(403, "this api_key may only read")
    description = (form.get("description") or "").strip()
    if not description:
        raise Open311Error(400, "description is required")
    if len(description) > DESCRIPTION_MAX:
        raise Open311Error(400, f"description is limited to {DESCRIPTION_MAX} characters")
    code = (form.get("service_code") or "").strip()
    chosen = taxonomy.resolve_label(code) if code else None
    if code and chosen is None:
        raise Open311Error(400, f"unknown service_code {code}")
    lat, lng = _float(form, "lat"), _float(form, "long")
    if (lat is None) != (lng is None):
        raise Open311Error(400, "lat and long go together")
    address = (form.get("address_string") or "").strip()[:400]
    address_id = (form.get("address_id") or "").strip()
    text = f"{address} {description}" if address and address not in description else description
    demand = parser.parse(text)
    if chosen is not None:
        demand.category, demand.subcategory = chosen
        demand.confidence, demand.classifier = 1.0, "open311"
    location = demand.location
    if address_id:
        node = node_by_code(address_id)
        if node is None:
            raise Open311Error(400, f"unknown address_id {address_id}")
        location.node, location.grid = node.code, node.code if node.tier == "grid" else None
    elif lat is not None and not location.grid:
        location.grid = grid_at(lat, lng)
    for where in (location.grid, location.node):
        if where and not in_scope(user, where):
            raise Open311Error(403, "the location is outside this api_key's region")
    home = node_by_code(user.region_code)
    if home is None:
        raise Open311Error(403, "this api_key's region no longer exists")
    reporter_grid = None
    if not location.grid and not location.node:
        # Nothing placed it: it stays with the caller's own node (for a grid account, that grid).
        if home.tier == "grid":
            reporter_grid = home.code
        else:
            location.node = home.code
    name = _full_name((form.get("first_name") or "").strip()[:50], (form.get("last_name") or "").strip()[:50])
    reporter_id = (form.get("account_id") or form.get("device_id") or form.get("email") or "").strip()[:100] or None
    external_id = f"{user.username}:{reporter_id}" if reporter_id else user.username
    actor = f"api:{user.username}"
    phone = (form.get("phone") or "").strip()[:32] or None
    found = find_duplicate(
        demand,
        location.grid or reporter_grid,
        now,
        chosen_service=chosen is not None,
        lat=lat,
        lng=lng,
        reporter_id=external_id,
    )
    duplicate = found.ticket
    if duplicate is not None and (in_scope(user, duplicate.owner_code) or in_scope(user, duplicate.grid_code)):
        reporter = join_report(
            duplicate,
            demand,
            reporter_channel="open311",
            external_id=external_id,
            actor=actor,
            now=now,
            verdict=found.verdict,
            name=name or None,
            lat=lat,
            lng=lng,
        )
        reporter.phone = reporter.phone or phone
        notice = (
            f"同一事项已在办理（工单号 {duplicate.number}，承办：{owner_name(duplicate) or '责任单位'}），已并入该工单"
        )
        return Submitted(duplicate, notice, [], joined=True)
    ticket = create_ticket(
        demand=demand,
        channel="open311",
        now=now,
        reporter_channel="open311",
        reporter_id=external_id,
        reporter_grid=reporter_grid,
        reporter_name=name or None,
        actor=actor,
    )
    ticket.fields = {**(ticket.fields or {}), "original_text": description}
    if lat is not None:
        ticket.lat, ticket.lng = lat, lng
    if address and not ticket.location_text:
        ticket.location_text = address
    if phone and ticket.reporters and not ticket.reporters[0].phone:
        ticket.reporters[0].phone = phone
    record_suggestions(ticket, found.suggestions, now)
    outbox = _group_notice(ticket, now)
    notice = f"已受理，工单号 {ticket.number}，承办：{owner_name(ticket) or '受理中心'}"
    return Submitted(ticket, notice, outbox)


def _group_notice(ticket: Ticket, now: datetime) -> list[Outbox]:
    """The owner's tier groups hear of the new ticket, as for a resident's message (handlers.intake)."""
    if ticket.status != TicketStatus.ASSIGNED:
        return []
    return notify_groups(ticket, "new", now)
