"""Open311 GeoReport v2 on top of the work-order model: the taxonomy's second levels as services (stable ASCII
codes and attributes from config/taxonomy.yaml), tickets as service requests, their public steps as
mySociety's service request updates, and new requests through the same intake as WeChat (parse → route →
deadlines → group notice).

Reads are made either by the public (`viewer` None: the whole county except whistle-blowing reports) or with
an API token (the token user's region subtree). Either way the text is masked and no reporter data is shown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from demand.taxonomy import OTHER, Subcategory, Taxonomy
from models import (
    DONE_STATUSES,
    STATUS_LABELS,
    Outbox,
    Ticket,
    TicketEvent,
    TicketReporter,
    TicketStatus,
    db,
    node_by_code,
)
from ops.privacy import mask_name, mask_text
from workflow.duplicates import join_report, record_suggestions
from workflow.group_notices import notify_groups
from workflow.policy import Actor, may_create_in, may_see, visible_filter
from workflow.rules.geo import contains, distance_km
from workflow.scope import node_names
from workflow.tickets import create_ticket, find_duplicate, grid_nodes, owner_name

DEFAULT_DAYS = 90  # GeoReport v2: without dates, the last 90 days
MAX_RESULTS = 1000
MAX_IDS = 5000  # FixMyStreet asks for every open request it holds at once
NEAREST_GRID_KM = 3.0  # a point outside every boundary still belongs to a grid centre this close
DESCRIPTION_MAX = 4000  # the spec's limit
ADDRESS_MAX = 400
MEDIA_URL_MAX = 2000
MEDIA_URLS_MAX = 10
ATTRIBUTE_VALUE_MAX = 500
ATTRIBUTES_MAX = 40
# Reports about officials (举报) never appear in the keyless public view: the reporter is easy to guess.
PRIVATE_GROUPS = ("纪检监察",)
# Actions whose note the resident already receives word for word (workflow.replies.update_text): the only
# staff notes that are public. Other notes (sign, assign, escalate…) stay internal.
PUBLIC_NOTE_ACTIONS = ("resolve", "request_info", "close")
# Timeline events that are steps a resident can see, as mySociety's extended statuses.
UPDATE_KINDS = (
    "assign",
    "sign",
    "start",
    "escalate",
    "return",
    "request_info",
    "resolve",
    "merge",
    "reopen",
    "close",
    "cancelled",
    "rating_expired",
)
EXTENDED_STATUS: dict[str, str] = {
    TicketStatus.ASSIGNED: "OPEN",
    TicketStatus.SIGNED: "ACTION_SCHEDULED",
    TicketStatus.PROCESSING: "IN_PROGRESS",
    TicketStatus.WAITING: "INVESTIGATING",
    TicketStatus.RESOLVED: "FIXED",
    TicketStatus.CLOSED: "CLOSED",
    TicketStatus.CANCELLED: "NO_FURTHER_ACTION",
}
ATTRIBUTE_NAME = re.compile(r"^attribute\[([A-Za-z_][A-Za-z0-9_.-]{0,63})\](\[\])?$")


class Open311Error(Exception):
    """Refused with GeoReport's error shape: [{"code": status, "description": message}]."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description


# --- services ----------------------------------------------------------------------------------------


def find_service(taxonomy: Taxonomy, code: str) -> Subcategory | None:
    """The service with this code; the former "一级/二级" codes still name their second level exactly."""
    service = taxonomy.service(code)
    if service is None and "/" in code:
        first, _, second = code.partition("/")
        category = taxonomy.category(first)
        service = next((s for s in category.children if s.name == second), None) if category else None
    return service


def ticket_service(taxonomy: Taxonomy, ticket: Ticket) -> Subcategory | None:
    """The service a ticket is filed under now: its categories (staff may have corrected them; a first
    level alone means that level's 其他), else the code it was posted with."""
    category = taxonomy.category(ticket.category)
    wanted = ticket.subcategory or OTHER
    service = next((s for s in category.children if s.name == wanted), None) if category else None
    return service or taxonomy.service((ticket.fields or {}).get("service_code"))


def _service_filter(service: Subcategory):
    """SQL condition: tickets filed under this service (as ticket_service decides)."""
    condition = db.and_(Ticket.category == service.parent, Ticket.subcategory == service.name)
    if service.name == OTHER:
        condition = db.or_(condition, db.and_(Ticket.category == service.parent, Ticket.subcategory.is_(None)))
    return condition


def services(taxonomy: Taxonomy) -> list[dict]:
    """GET services: one service per second-level category, grouped by its first level."""
    return [
        {
            "service_code": sub.code,
            "service_name": sub.name,
            "description": f"{category.name} — {sub.name}",
            "metadata": bool(sub.attributes),
            "type": "realtime",
            "keywords": ",".join(sub.keywords[:8]),
            "group": category.name,
        }
        for category in taxonomy.categories
        for sub in category.children
    ]


def service_definition(taxonomy: Taxonomy, code: str) -> dict:
    """GET services/{code}: the attributes a client asks for with this service."""
    service = find_service(taxonomy, code)
    if service is None:
        raise Open311Error(404, f"service_code {code} not found")
    return {
        "service_code": service.code,
        "attributes": [
            {
                "variable": True,
                "code": attribute.code,
                "datatype": attribute.datatype,
                "required": attribute.required,
                "datatype_description": attribute.datatype_description or None,
                "order": order,
                "description": attribute.description,
                "values": [{"key": key, "name": name} for key, name in attribute.values],
            }
            for order, attribute in enumerate(service.attributes, start=1)
        ],
    }


# --- reading -------------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _masked(text: str | None, names: tuple[str, ...] = ()) -> str | None:
    """Contacts masked, and the reporters' own names where the text repeats them (我是张三 → 我是张*)."""
    if not text:
        return None
    for name in names:
        if len(name) >= 2 and name in text:
            text = text.replace(name, mask_name(name))
    return mask_text(text)


def request_dict(
    ticket: Ticket,
    names: Mapping[str, str],
    taxonomy: Taxonomy,
    note: str | None,
    reporters: tuple[str, ...] = (),
) -> dict:
    """A ticket as a GeoReport service request; null where the ticket has no value.
    Status is open/closed; status_notes is the latest public staff note, else the ticket's state."""
    status = "closed" if ticket.status in DONE_STATUSES else "open"
    fields = ticket.fields or {}
    service = ticket_service(taxonomy, ticket)
    notes = note or STATUS_LABELS.get(ticket.status, ticket.status)
    if ticket.merged_into_id and not note:
        notes += "（已合并到其他工单）"
    posted = ticket.channel == "open311" and "original_text" in fields
    description = fields.get("original_text") if posted else ticket.description
    media = fields.get("media_urls") or []
    return {
        "service_request_id": ticket.number,
        "status": status,
        "status_notes": _masked(notes, reporters),
        "service_name": service.name if service else (ticket.subcategory or ticket.category),
        "service_code": service.code if service else None,
        "description": _masked(description, reporters),
        "agency_responsible": names.get(ticket.owner_code or "", ticket.owner_code),
        "service_notice": None,
        "requested_datetime": _iso(ticket.created_at),
        "updated_datetime": _iso(ticket.updated_at or ticket.created_at),
        "expected_datetime": _iso(ticket.due_at) if status == "open" else None,
        "address": _masked(fields.get("address") or ticket.location_text or ticket.place, reporters),
        "address_id": ticket.grid_code or ticket.owner_code,
        "zipcode": None,
        "lat": ticket.lat,
        "long": ticket.lng,
        "media_url": media[0] if media else None,
        "attributes": fields.get("attributes") or {},
    }


def parse_moment(name: str, value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C/ISO 8601 datetime, e.g. 2026-11-01T00:00:00+08:00") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00+08:00")
    if not 2000 <= moment.year <= 2999:  # nothing outside is stored; year 1 or 9999 overflows an offset
        raise Open311Error(400, f"{name} must fall between the years 2000 and 2999")
    return moment


def window(args: Mapping[str, str], now: datetime) -> tuple[datetime | None, datetime | None]:
    """start_date/end_date as bounds [start, end) on the stored times, to the second like the times shown:
    a request shown at 10:00:00 is inside end_date=10:00:00 and outside start_date=10:00:00.5."""
    start = parse_moment("start_date", args.get("start_date"))
    end = parse_moment("end_date", args.get("end_date"))
    if start is None and end is None:
        start = now - timedelta(days=DEFAULT_DAYS)
    if start is not None and end is not None and start > end:
        raise Open311Error(400, "start_date must not be after end_date")
    if start is not None and start.microsecond:
        start = start.replace(microsecond=0) + timedelta(seconds=1)
    if end is not None:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    return start, end


def _visible(viewer: Actor | None):
    if viewer is not None:
        return visible_filter(viewer)
    return db.or_(Ticket.category.is_(None), Ticket.category.not_in(PRIVATE_GROUPS))


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def find_requests(viewer: Actor | None, args: Mapping[str, str], now: datetime, taxonomy: Taxonomy) -> list[dict]:
    """GET requests: service_request_id (comma list, overrides the rest), service_code, start_date,
    end_date (on requested_datetime), status."""
    query = db.select(Ticket).filter(Ticket.number.is_not(None), _visible(viewer))
    ids = _split(args.get("service_request_id"))
    if len(ids) > MAX_IDS:
        raise Open311Error(400, f"at most {MAX_IDS} service_request_id at once")
    if ids:
        return _requests(_tickets(query.filter(Ticket.number.in_(ids)), MAX_IDS), taxonomy)
    start, end = window(args, now)
    if start is not None:
        query = query.filter(Ticket.created_at >= start)
    if end is not None:
        query = query.filter(Ticket.created_at < end)
    codes = _split(args.get("service_code"))
    if codes:
        conditions = []
        for code in codes:
            service = find_service(taxonomy, code)
            if service is None:
                raise Open311Error(404, f"service_code {code} not found")
            conditions.append(_service_filter(service))
        query = query.filter(db.or_(*conditions))
    query = _status_filter(query, args)
    return _requests(_tickets(query, MAX_RESULTS), taxonomy)


def _code_of(taxonomy: Taxonomy, ticket: Ticket) -> str | None:
    service = ticket_service(taxonomy, ticket)
    return service.code if service else None


def _statuses(args: Mapping[str, str]) -> set[str]:
    statuses = {s.lower() for s in _split(args.get("status"))}
    if statuses - {"open", "closed"}:
        raise Open311Error(400, "status must be open, closed or both")
    return statuses


def _status_filter(query, args: Mapping[str, str]):
    statuses = _statuses(args)
    done = [str(s) for s in DONE_STATUSES]
    if statuses == {"open"}:
        return query.filter(Ticket.status.not_in(done))
    if statuses == {"closed"}:
        return query.filter(Ticket.status.in_(done))
    return query


def _tickets(query, limit: int) -> list[Ticket]:
    ordered = query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
    return list(db.session.execute(ordered).scalars())


def _requests(tickets: list[Ticket], taxonomy: Taxonomy) -> list[dict]:
    names = node_names(t.owner_code for t in tickets)
    ids = [t.id for t in tickets]
    notes = public_notes(ids)
    reporters = reporter_names(ids)
    return [request_dict(t, names, taxonomy, notes.get(t.id), reporters.get(t.id, ())) for t in tickets]


def reporter_names(ticket_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """ticket id → its reporters' names (one query), to mask where the text repeats them."""
    found: dict[int, tuple[str, ...]] = {}
    if not ticket_ids:
        return found
    rows = db.session.execute(
        db.select(TicketReporter.ticket_id, TicketReporter.name).filter(
            TicketReporter.ticket_id.in_(ticket_ids), TicketReporter.name.is_not(None)
        )
    ).all()
    for ticket_id, name in rows:
        found[ticket_id] = (*found.get(ticket_id, ()), name.strip())
    return found


def public_notes(ticket_ids: list[int]) -> dict[int, str]:
    """ticket id → its latest public staff note (one query)."""
    if not ticket_ids:
        return {}
    rows = db.session.execute(
        db.select(TicketEvent.ticket_id, TicketEvent.note)
        .filter(
            TicketEvent.ticket_id.in_(ticket_ids),
            TicketEvent.kind.in_(PUBLIC_NOTE_ACTIONS),
            TicketEvent.note.is_not(None),
        )
        .order_by(TicketEvent.created_at, TicketEvent.id)
    ).all()
    return {ticket_id: note for ticket_id, note in rows if note.strip()}


def find_request(viewer: Actor | None, number: str, taxonomy: Taxonomy) -> dict:
    ticket = db.session.execute(
        db.select(Ticket).filter(Ticket.number == number, _visible(viewer))
    ).scalar_one_or_none()
    if ticket is None:
        raise Open311Error(404, f"service_request_id {number} not found")
    return _requests([ticket], taxonomy)[0]


def find_token(viewer: Actor | None, token: str) -> dict:
    """GET tokens/{token}: requests are created at once, so a token is the service_request_id itself."""
    ticket = db.session.execute(db.select(Ticket).filter(Ticket.number == token, _visible(viewer))).scalar_one_or_none()
    if ticket is None:
        raise Open311Error(404, f"token {token} not found")
    return {"service_request_id": ticket.number, "token": token}


def find_updates(viewer: Actor | None, args: Mapping[str, str], now: datetime) -> list[dict]:
    """mySociety's GET servicerequestupdates: the public steps of every visible request, oldest first,
    with start_date/end_date on the step's time."""
    start, end = window(args, now)
    query = (
        db.select(TicketEvent, Ticket)
        .join(Ticket, TicketEvent.ticket_id == Ticket.id)
        .filter(TicketEvent.kind.in_(UPDATE_KINDS), Ticket.number.is_not(None), _visible(viewer))
    )
    if start is not None:
        query = query.filter(TicketEvent.created_at >= start)
    if end is not None:
        query = query.filter(TicketEvent.created_at < end)
    rows = db.session.execute(query.order_by(TicketEvent.created_at, TicketEvent.id).limit(MAX_RESULTS)).all()
    return [update_dict(event, ticket) for event, ticket in rows]


def update_dict(event: TicketEvent, ticket: Ticket) -> dict:
    data = event.data or {}
    to_status = str(data.get("to_status") or ticket.status)
    if event.kind == "merge":
        status = "DUPLICATE"
    elif to_status == TicketStatus.CLOSED and ticket.resolved_at is not None:
        status = "FIXED"  # revisited after 办结: still fixed
    else:
        status = EXTENDED_STATUS.get(to_status, "OPEN")
    public = event.kind in PUBLIC_NOTE_ACTIONS and (event.note or "").strip()
    description = event.note if public else STATUS_LABELS.get(to_status, to_status)
    return {
        "update_id": str(event.id),
        "service_request_id": ticket.number,
        "status": status,
        "external_status_code": to_status,
        "updated_datetime": _iso(event.created_at),
        "description": mask_text(description or ""),
        "media_url": None,
    }


# --- creating ----------------------------------------------------------------------------------------


@dataclass
class Submitted:
    ticket: Ticket
    notice: str
    outbox: list[Outbox]
    joined: bool = False


def _float(form: Mapping[str, str], name: str, limit: float) -> float | None:
    value = (form.get(name) or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise Open311Error(400, f"{name} must be between -{limit:g} and {limit:g}")
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


def _values(form: Mapping[str, str], key: str) -> list[str]:
    getlist = getattr(form, "getlist", None)
    return list(getlist(key)) if getlist else [form[key]]


def media_urls(form: Mapping[str, str]) -> list[str]:
    """media_url, kept as links (the server never fetches them); FixMyStreet may send several."""
    urls = [u.strip() for u in _values(form, "media_url") if u and u.strip()] if "media_url" in form else []
    if len(urls) > MEDIA_URLS_MAX:
        raise Open311Error(400, f"at most {MEDIA_URLS_MAX} media_url")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MEDIA_URL_MAX or " " in url:
            raise Open311Error(400, "media_url must be an http(s) URL")
    return urls


def attributes(form: Mapping[str, str], service: Subcategory) -> dict:
    """attribute[code] (and attribute[code][] for lists), checked against the service definition.
    Codes the definition does not name (clients add their own, e.g. FixMyStreet's report_url) are kept."""
    given: dict[str, list[str]] = {}
    for key in form:
        match = ATTRIBUTE_NAME.match(key)
        if match is None:
            if key.startswith("attribute["):
                raise Open311Error(400, f"{key}: attribute codes are letters, digits, _ . -")
            continue
        values = [v.strip() for v in _values(form, key) if v is not None and v.strip()]
        if values:
            given.setdefault(match.group(1), []).extend(values)
    if len(given) > ATTRIBUTES_MAX:
        raise Open311Error(400, f"at most {ATTRIBUTES_MAX} attributes")
    kept: dict = {}
    defined = {a.code: a for a in service.attributes}
    for attribute in service.attributes:
        if attribute.required and attribute.code not in given:
            raise Open311Error(400, f"attribute[{attribute.code}] is required for {service.code}")
    for code, values in given.items():
        if any(len(v) > (DESCRIPTION_MAX if code in defined else ATTRIBUTE_VALUE_MAX) for v in values):
            raise Open311Error(400, f"attribute[{code}] is too long")
        attribute = defined.get(code)
        if attribute is None:
            kept[code] = values[0] if len(values) == 1 else values
            continue
        keys = {key for key, _ in attribute.values}
        if attribute.datatype in ("singlevaluelist", "multivaluelist") and set(values) - keys:
            raise Open311Error(400, f"attribute[{code}] must be one of {', '.join(sorted(keys))}")
        if attribute.datatype == "multivaluelist":
            kept[code] = values
            continue
        if len(values) > 1:
            raise Open311Error(400, f"attribute[{code}] takes one value")
        value = values[0]
        if attribute.datatype == "number":
            try:
                if not math.isfinite(float(value)):
                    raise ValueError(value)
            except ValueError:
                raise Open311Error(400, f"attribute[{code}] must be a number") from None
        elif attribute.datatype == "datetime":
            parse_moment(f"attribute[{code}]", value)
        elif attribute.datatype == "string" and len(value) > ATTRIBUTE_VALUE_MAX:
            raise Open311Error(400, f"attribute[{code}] is too long")
        kept[code] = value
    return kept


def submit_request(actor: Actor, form: Mapping[str, str], parser, taxonomy: Taxonomy, now: datetime) -> Submitted:
    """POST requests: parse the text like any message, route it inside the caller's region, join an open
    duplicate of the same service or open a ticket. Returns the ticket and the Outbox rows to enqueue
    after commit."""
    home_code = actor.homes[0].code if actor.homes else None
    if not may_create_in(actor, home_code):
        raise Open311Error(403, "this api_key may only read")
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code is required")
    service = find_service(taxonomy, code)
    if service is None:
        raise Open311Error(404, f"service_code {code} not found")
    description = (form.get("description") or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise Open311Error(400, f"description is limited to {DESCRIPTION_MAX} characters")
    lat, lng = _float(form, "lat", 90), _float(form, "long", 180)
    if (lat is None) != (lng is None):
        raise Open311Error(400, "lat and long go together")
    address = (form.get("address_string") or "").strip()
    if len(address) > ADDRESS_MAX:
        raise Open311Error(400, f"address_string is limited to {ADDRESS_MAX} characters")
    address_id = (form.get("address_id") or "").strip()
    if lat is None and not address and not address_id:
        raise Open311Error(400, "a location is required: lat and long, address_string or address_id")
    media = media_urls(form)
    given_attributes = attributes(form, service)
    # The address helps the parser place it; the description stays as posted (blank lines and all).
    text = " ".join(part for part in (address, description or service.name) if part)
    demand = parser.parse(text)
    demand.category, demand.subcategory = service.parent, service.name
    demand.confidence, demand.classifier = 1.0, "open311"
    location = demand.location
    if address_id:
        node = node_by_code(address_id)
        if node is None:
            raise Open311Error(400, f"unknown address_id {address_id}")
        location.node, location.grid = node.code, node.code if node.tier == "grid" else None
    elif lat is not None and lng is not None and not location.grid:
        location.grid = grid_at(lat, lng)
    for where in (location.grid, location.node):
        if where and not may_create_in(actor, where):
            raise Open311Error(403, "the location is outside this api_key's region")
    home = node_by_code(home_code)
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
    external_id = f"{actor.name}:{reporter_id}" if reporter_id else actor.name
    label = actor.label  # staff:<username>, the channel (open311) recorded beside it
    phone = (form.get("phone") or "").strip()[:32] or None
    found = find_duplicate(
        demand, location.grid or reporter_grid, now, chosen_service=True, lat=lat, lng=lng, reporter_id=external_id
    )
    duplicate = found.ticket
    if (
        duplicate is not None
        and _code_of(taxonomy, duplicate) == service.code  # never merged across services
        and may_see(actor, duplicate)
    ):
        reporter = join_report(
            duplicate,
            demand,
            reporter_channel="open311",
            external_id=external_id,
            actor=label,
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
        actor=label,
    )
    ticket.fields = {
        **(ticket.fields or {}),
        "original_text": description,
        "service_code": service.code,
        "address": address or None,
        "attributes": given_attributes,
        "media_urls": media,
    }
    if lat is not None:
        ticket.lat, ticket.lng = lat, lng
    if address and not ticket.location_text:
        ticket.location_text = address
    record_suggestions(ticket, found.suggestions, now)
    if phone and ticket.reporters and not ticket.reporters[0].phone:
        ticket.reporters[0].phone = phone
    outbox = _group_notice(ticket, now)
    notice = f"已受理，工单号 {ticket.number}，承办：{owner_name(ticket) or '受理中心'}"
    return Submitted(ticket, notice, outbox)


def _group_notice(ticket: Ticket, now: datetime) -> list[Outbox]:
    """The owner's tier groups hear of the new ticket, as for a resident's message (handlers.intake)."""
    if ticket.status != TicketStatus.ASSIGNED:
        return []
    return notify_groups(ticket, "new", now)
