"""Duplicate reports after the scorer has spoken: joins, suggestions (可能重复) and splits.

`workflow.tickets.find_duplicate` asks demand.duplicates whether a new report is an open ticket's job. A
`merge` joins it here (`join_report`), keeping the parsed report so the join can be undone; anything weaker
is stored as suggestions on the new ticket (`record_suggestions`) for staff to merge with one click. A split
(`split_off`: staff's `split` action, or the reporter's "不是同一件事") gives the reporter their own ticket
again, with their text, contacts, attachments and events, and deadlines from when they reported; the pair
is never suggested or merged again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from demand import Demand, Location
from demand.duplicates import Verdict
from models import (
    OPEN_STATUSES,
    DuplicateLink,
    InboundMessage,
    Outbox,
    Ticket,
    TicketReporter,
    TicketStatus,
    add_event,
    db,
)
from workflow.group_notices import notify_groups
from workflow.tickets import add_reporter, apply_demand, assign_number, set_deadlines

SUGGESTED, JOINED, SPLIT = "suggested", "joined", "split"
# A reporter's "不是同一件事" this long after their report was joined still undoes it (people read later).
DENIAL_WINDOW = timedelta(hours=24)
# Events of a joined reporter that leave with them when they are split off.
_MOVING_EVENTS = ("duplicate_joined", "attachment", "located")


class SplitRefused(Exception):
    """The reporter cannot be split off this ticket (the reason is shown to staff, in Chinese)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- joining and suggesting ------------------------------------------------------------------------


def join_report(
    ticket: Ticket,
    demand,
    *,
    reporter_channel: str,
    external_id: str,
    actor: str,
    now: datetime,
    verdict: Verdict | None = None,
    name: str | None = None,
    inbound_id: int | None = None,
    lat: float | None = None,
    lng: float | None = None,
) -> TicketReporter:
    """The same job, reported again: the reporter joins `ticket` (once) and hears its updates.

    The parsed report is kept on a "joined" link, so a split can give it back its own ticket."""
    reporter = next(
        (r for r in ticket.reporters if r.channel == reporter_channel and r.external_id == external_id), None
    )
    added = reporter is None
    if reporter is not None and reporter.withdrawn_at is not None:
        reporter.withdrawn_at = None  # they withdrew, and now report it again: they hear of it again
    if reporter is None:
        reporter = add_reporter(
            ticket, channel=reporter_channel, external_id=external_id, demand=demand, name=name, now=now
        )
    data = {"score": verdict.score, "reason": verdict.reason} if verdict is not None else {}
    add_event(ticket, "duplicate_joined", actor, note=(demand.description or "")[:500], **data).created_at = now
    db.session.flush()
    link = DuplicateLink(
        kind=JOINED,
        ticket_id=ticket.id,
        reporter_id=reporter.id if added else None,
        score=verdict.score if verdict is not None else None,
        reason=(verdict.reason[:200] if verdict is not None else None),
        report=_report(
            demand, reporter_channel, external_id, actor, inbound_id, lat, lng, ticket.channel, reporter.name
        ),
        created_at=now,
    )
    db.session.add(link)
    return reporter


def _report(demand, reporter_channel, external_id, actor, inbound_id, lat, lng, channel, name) -> dict:
    location = demand.location
    return {
        "description": demand.description or "",
        "category": demand.category,
        "subcategory": demand.subcategory,
        "confidence": demand.confidence,
        "urgency": demand.urgency,
        "urgency_reason": str(demand.urgency_reason)[:200] if demand.urgency_reason else None,
        "location": location.to_dict(),
        "missing": list(demand.missing),
        "fields": dict(demand.fields or {}),
        "reporter_grid": demand.reporter_grid,
        "lat": lat,
        "lng": lng,
        "channel": _ticket_channel(reporter_channel, channel),
        "reporter_channel": reporter_channel,
        "external_id": external_id,
        "name": name,
        "actor": actor,
        "inbound_id": inbound_id,
    }


def _ticket_channel(reporter_channel: str, fallback: str) -> str:
    return {"mp": "mp", "wecom": "wecom", "wecom_bot": "wecom", "open311": "open311"}.get(reporter_channel, fallback)


def record_suggestions(ticket: Ticket, suggestions: Iterable[tuple[Ticket, Verdict]], now: datetime) -> None:
    """A new ticket's likely duplicates (not joined): staff see them as 可能重复."""
    for other, verdict in suggestions:
        db.session.add(
            DuplicateLink(
                kind=SUGGESTED,
                ticket_id=ticket.id,
                other_id=other.id,
                score=verdict.score,
                reason=verdict.reason[:200],
                created_at=now,
            )
        )


@dataclass(frozen=True)
class Possible:
    """One 可能重复 on a ticket page: `number` is the other ticket; merging moves `source_id` into `target`."""

    id: int
    number: str
    score: float
    reason: str
    source_id: int  # the newer ticket of the pair (the one a merge closes)
    target: str  # the older ticket's number (the one a merge keeps)

    def to_dict(self) -> dict:
        return {"number": self.number, "score": round(self.score, 3), "reason": self.reason}


def possible_duplicates(ticket_ids: Iterable[int]) -> dict[int, list[Possible]]:
    """ticket id → its suggested duplicates that are still open and unmerged, best first (both directions)."""
    ids = set(ticket_ids)
    if not ids:
        return {}
    links = list(
        db.session.execute(
            db.select(DuplicateLink).filter(
                DuplicateLink.kind == SUGGESTED,
                db.or_(DuplicateLink.ticket_id.in_(ids), DuplicateLink.other_id.in_(ids)),
            )
        ).scalars()
    )
    if not links:
        return {}
    involved = {link.ticket_id for link in links} | {link.other_id for link in links if link.other_id}
    tickets = {
        t.id: t
        for t in db.session.execute(
            db.select(Ticket).filter(
                Ticket.id.in_(involved),
                Ticket.merged_into_id.is_(None),
                Ticket.status.in_([str(s) for s in OPEN_STATUSES]),
            )
        ).scalars()
    }
    split = _split_pairs(involved)
    found: dict[int, list[Possible]] = {}
    for link in links:
        new, old = tickets.get(link.ticket_id), tickets.get(link.other_id or 0)
        if new is None or old is None or frozenset((new.id, old.id)) in split:
            continue
        for mine, other in ((new, old), (old, new)):
            if mine.id in ids:
                found.setdefault(mine.id, []).append(
                    Possible(
                        other.id,
                        other.number or str(other.id),
                        link.score or 0.0,
                        link.reason or "",
                        new.id,
                        old.number or str(old.id),
                    )
                )
    for rows in found.values():
        rows.sort(key=lambda p: -p.score)
    return found


def _split_pairs(ids: set[int]) -> set[frozenset[int]]:
    rows = db.session.execute(
        db.select(DuplicateLink.ticket_id, DuplicateLink.other_id).filter(
            DuplicateLink.kind == SPLIT, db.or_(DuplicateLink.ticket_id.in_(ids), DuplicateLink.other_id.in_(ids))
        )
    ).all()
    return {frozenset((a, b)) for a, b in rows if b is not None}


def is_split_pair(first: Ticket, second: Ticket) -> bool:
    return frozenset((first.id, second.id)) in _split_pairs({first.id, second.id})


# --- staff merges ----------------------------------------------------------------------------------


def record_merge(target: Ticket, source: Ticket, copies: Iterable[TicketReporter], now: datetime) -> None:
    """A staff merge of `source` into `target` added these reporter rows: a split can take them back."""
    db.session.flush()
    for copy in copies:
        db.session.add(
            DuplicateLink(kind=JOINED, ticket_id=target.id, other_id=source.id, reporter_id=copy.id, created_at=now)
        )


# --- splitting -------------------------------------------------------------------------------------


@dataclass
class Split:
    ticket: Ticket  # the reporter's own ticket again
    step: int = 0  # the id of its "split_from" event (makes the reporters' notice unique)
    outbox: list[Outbox] = field(default_factory=list)


def splittable(ticket: Ticket) -> dict[int, DuplicateLink]:
    """reporter id → the join that brought them onto this ticket (reporters a split can move)."""
    links = db.session.execute(
        db.select(DuplicateLink).filter(
            DuplicateLink.kind == JOINED, DuplicateLink.ticket_id == ticket.id, DuplicateLink.reporter_id.is_not(None)
        )
    ).scalars()
    return {link.reporter_id: link for link in links if link.reporter_id is not None}


def recent_join(reporter_channel: str, external_id: str, since: datetime) -> DuplicateLink | None:
    """The reporter's latest automatic join since `since` onto a ticket still being handled."""
    links = db.session.execute(
        db.select(DuplicateLink)
        .join(Ticket, Ticket.id == DuplicateLink.ticket_id)
        .filter(
            DuplicateLink.kind == JOINED,
            DuplicateLink.other_id.is_(None),
            DuplicateLink.created_at >= since,
            Ticket.status.in_([str(s) for s in OPEN_STATUSES]),
        )
        .order_by(DuplicateLink.id.desc())
        .limit(20)
    ).scalars()
    return next(
        (
            link
            for link in links
            if (link.report or {}).get("external_id") == external_id
            and (link.report or {}).get("reporter_channel") == reporter_channel
        ),
        None,
    )


def undo_recent_join(reporter_channel: str, external_id: str, now: datetime, words: str) -> Split | None:
    """The reporter says their latest joined report is another matter: it gets its own ticket at once.
    None when nothing of theirs was joined within DENIAL_WINDOW."""
    link = recent_join(reporter_channel, external_id, now - DENIAL_WINDOW)
    joined = db.session.get(Ticket, link.ticket_id) if link is not None else None
    if link is None or joined is None:
        return None
    actor = (link.report or {}).get("actor") or f"{reporter_channel}:{external_id}"
    parted = split_off(joined, link, now, actor)
    add_event(joined, "split", actor, note=words[:500], split_to=parted.ticket.number).created_at = now
    return parted


def split_reporter(ticket: Ticket, reporter: TicketReporter, now: datetime, actor: str) -> Split:
    """Staff's `split`: `reporter` (who joined `ticket`) gets a ticket of their own again."""
    if ticket.merged_into_id is not None:
        raise SplitRefused("该工单已合并到其他工单，请在保留的工单上拆分")
    link = splittable(ticket).get(reporter.id)
    if link is None:
        raise SplitRefused("该反映人是本工单的原始反映人，不是合并进来的，不能拆分")
    return split_off(ticket, link, now, actor)


def split_off(ticket: Ticket, link: DuplicateLink, now: datetime, actor: str) -> Split:
    """Undo one join: a staff merge revives the merged ticket, an automatic join becomes a new ticket."""
    if link.other_id is not None:
        split = _revive_merged(ticket, link, now, actor)
    else:
        split = _ticket_from_report(ticket, link, now, actor)
    db.session.add(DuplicateLink(kind=SPLIT, ticket_id=split.ticket.id, other_id=ticket.id, created_at=now))
    split.outbox += notify_groups(split.ticket, "new", now)
    return split


def _revive_merged(ticket: Ticket, link: DuplicateLink, now: datetime, actor: str) -> Split:
    source = db.session.get(Ticket, link.other_id)
    if source is None or source.merged_into_id != ticket.id:
        raise SplitRefused("找不到合并前的工单")
    # Every reporter the merge copied goes back with it (they are still on the revived ticket).
    links = db.session.execute(
        db.select(DuplicateLink).filter_by(kind=JOINED, ticket_id=ticket.id, other_id=source.id)
    ).scalars()
    for each in list(links):
        copy = db.session.get(TicketReporter, each.reporter_id) if each.reporter_id else None
        db.session.delete(each)
        db.session.flush()
        if copy is not None and copy.ticket_id == ticket.id:
            db.session.delete(copy)
    db.session.flush()
    db.session.expire(ticket, ["reporters"])
    source.merged_into_id = None
    source.status = TicketStatus.ASSIGNED
    source.closed_at = source.signed_at = None
    set_deadlines(source, source.created_at)  # the clock runs from when it was reported
    event = add_event(source, "split_from", actor, source=ticket.number, due_at=_iso(source.due_at))
    event.created_at = now
    db.session.flush()
    return Split(source, event.id)


def _ticket_from_report(ticket: Ticket, link: DuplicateLink, now: datetime, actor: str) -> Split:
    report = dict(link.report or {})
    reported_at = link.created_at
    demand = Demand(
        description=report.get("description") or "",
        category=report.get("category"),
        subcategory=report.get("subcategory"),
        confidence=float(report.get("confidence") or 0.0),
        urgency=report.get("urgency") or "normal",
        urgency_reason=report.get("urgency_reason"),
        location=Location(**{k: v for k, v in (report.get("location") or {}).items() if k in _LOCATION_KEYS}),
        missing=list(report.get("missing") or []),
        fields=dict(report.get("fields") or {}),
        reporter_grid=report.get("reporter_grid"),
    )
    own = Ticket(channel=report.get("channel") or ticket.channel, created_at=reported_at, status=TicketStatus.ASSIGNED)
    apply_demand(own, demand, report.get("reporter_grid"))
    own.lat, own.lng = report.get("lat"), report.get("lng")
    set_deadlines(own, reported_at)  # the clock runs from when they reported, not from the split
    db.session.add(own)
    db.session.flush()
    assign_number(own)
    reporter = db.session.get(TicketReporter, link.reporter_id) if link.reporter_id else None
    if reporter is not None and reporter.ticket_id == ticket.id:
        reporter.ticket = own  # contacts (name, phone, ID) move with the row
    else:  # they were on the ticket before this join: they stay there too
        add_reporter(
            own,
            channel=report.get("reporter_channel") or own.channel,
            external_id=report.get("external_id"),
            name=report.get("name"),
            now=reported_at,
        )
    who = report.get("actor")
    for event in list(ticket.events):
        if event.actor == who and event.kind in _MOVING_EVENTS and event.created_at >= reported_at:
            event.ticket = own
    inbound_id = report.get("inbound_id")
    if inbound_id is not None and report.get("external_id"):
        db.session.execute(
            db.update(InboundMessage)
            .where(
                InboundMessage.ticket_id == ticket.id,
                InboundMessage.sender == report["external_id"],
                InboundMessage.id >= inbound_id,
            )
            .values(ticket_id=own.id)
        )
    db.session.delete(link)
    add_event(
        own, "created", who or actor, category=own.category, urgency=own.urgency, missing=list(own.missing)
    ).created_at = reported_at
    add_event(
        own, "assigned", "system", owner=own.owner_code, reason=own.fields.get("routed_by"), due_at=_iso(own.due_at)
    ).created_at = reported_at
    event = add_event(own, "split_from", actor, source=ticket.number)
    event.created_at = now
    db.session.flush()
    return Split(own, event.id)


_LOCATION_KEYS = ("text", "place", "node", "grid", "building", "unit", "room", "source")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
