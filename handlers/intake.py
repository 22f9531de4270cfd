"""Resident intake on the official account: one inbound row in, ticket changes and replies out.

`handle_inbound` runs in a worker. It is idempotent: a processed row is skipped, and every reply it
queues has a dedup key derived from the inbound row, so a re-run after a crash queues nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from demand import DemandParser
from demand.duplicates import denies_same
from handlers import commands, events, officers
from handlers import gate as demand_gate
from handlers.media import enqueue_fetch, keep_media
from handlers.ratings import awaiting_rating, parse_rating, rate
from models import (
    InboundMessage,
    InboundStatus,
    Resident,
    Ticket,
    TicketStatus,
    add_event,
    db,
    get_or_create_resident,
    node_by_code,
    root_node,
)
from workflow import replies
from workflow.duplicates import join_report, record_suggestions, undo_recent_join
from workflow.group_notices import notify_groups
from workflow.locating import locate, valid_point
from workflow.rules.routing import route
from workflow.tickets import (
    apply_demand,
    create_ticket,
    find_duplicate,
    lineage,
    owner_name,
    queue_message,
    routing_config,
    set_deadlines,
    sla_table,
)
from workflow.transitions import resume


@dataclass
class Intake:
    inbound: InboundMessage
    resident: Resident
    now: datetime
    parser: DemandParser
    attach_window: timedelta
    dialog_ttl: timedelta
    outbox: list = field(default_factory=list)
    media: list = field(default_factory=list)  # MediaFile rows to fetch once this transaction commits

    def reply(self, text: str, kind: str = "reply", ticket: Ticket | None = None, suffix: str = "") -> None:
        self.outbox.append(
            queue_message(
                channel="mp",
                recipient=self.inbound.sender,
                kind=kind,
                text=text,
                ticket=ticket,
                dedup_key=f"mp:{self.inbound.id}:{kind}{suffix}",
            )
        )


def handle_inbound(
    inbound_id: int, parser, now: datetime, attach_window: timedelta, dialog_ttl: timedelta
) -> list[int]:
    """Process one stored push; returns the outbox ids to deliver (empty when already processed)."""
    inbound = db.session.execute(
        db.select(InboundMessage).filter_by(id=inbound_id).with_for_update()
    ).scalar_one_or_none()
    if inbound is None or inbound.status == InboundStatus.PROCESSED:
        return []
    if inbound.channel in officers.CHANNELS:  # WeCom: officers, not residents
        return officers.handle_officer_message(inbound, parser, now, attach_window=attach_window)
    inbound.attempts += 1
    resident = get_or_create_resident(inbound.sender)
    intake = Intake(inbound, resident, now, parser, attach_window, dialog_ttl)
    handler = _HANDLERS.get(inbound.msg_type)
    if handler is None and inbound.msg_type.startswith("event:"):
        handler = events.handle_event
    if handler is not None:
        handler(intake)
    if not inbound.msg_type.startswith("event:"):
        resident.last_message_at = now
    if inbound.msg_type != "event:unsubscribe":
        _follows(resident, inbound, now)
    inbound.status = InboundStatus.PROCESSED
    inbound.processed_at = now
    inbound.error = None
    db.session.flush()
    ids = [message.id for message in intake.outbox]
    media_ids = [media.id for media in intake.media]
    db.session.commit()
    for media_file_id in media_ids:
        enqueue_fetch(media_file_id)  # WeChat deletes media after three days: fetch it now, in a job
    return ids


def _follows(resident: Resident, inbound: InboundMessage, now: datetime) -> None:
    """WeChat delivers messages and events only from followers: whoever writes follows the account (again),
    unless this push was stored before the unsubscribe we already processed (drained late)."""
    if resident.subscribed:
        return
    if resident.unsubscribed_at is not None and inbound.received_at and inbound.received_at <= resident.unsubscribed_at:
        return
    resident.subscribed = True
    resident.subscribed_at = now


def handle_text(intake: Intake) -> None:
    text = (intake.inbound.content or "").strip()
    if commands.handle_command(intake, text):
        return
    if _handle_rating(intake, text):
        return
    if (non_demand := demand_gate.screen(text)) is not None:
        demand_gate.decline(intake, non_demand)  # a greeting, a test, a sticker: answered, no ticket
        return
    if denies_same(text) and _split_my_join(intake):
        return
    if denies_same(text) and len(text) <= BARE_DENIAL_CHARS:
        intake.reply(replies.NOT_JOINED, kind="nothing")  # "不是同一件事" with no join to undo is no new matter
        return
    pending = _pending_ticket(intake)
    if pending is not None:
        if intake.resident.pending_field == "info":
            _answer_info_request(intake, pending, text)
        else:
            _merge_answer(intake, pending, text)
        return
    demand = intake.parser.parse(text, reporter_grid=intake.resident.grid_code)
    if "matter" in demand.missing:
        intake.reply(replies.NOTHING_TO_ACT_ON, kind="nothing")
        return
    _open_ticket(intake, demand)


def _handle_rating(intake: Intake, text: str) -> bool:
    parsed = parse_rating(text)
    if parsed is None:
        return False
    number, verdict = parsed
    ticket = awaiting_rating(intake.resident.openid, number, intake.now, sla_table().rating_window)
    if ticket is None:
        return False  # "1" or "满意" with nothing to rate reads as ordinary text
    intake.outbox += rate(ticket, verdict, f"resident:{intake.resident.openid}", intake.now)
    intake.inbound.ticket_id = ticket.id
    return True


def _answer_info_request(intake: Intake, ticket: Ticket, answer: str) -> None:
    """Staff asked the resident for more (request_info): record the answer and restart the clocks."""
    ticket.description = f"{ticket.description}\n【补充】{answer}"[:10000]
    resume(ticket, intake.now)
    add_event(ticket, "supplemented", f"resident:{intake.resident.openid}", note=answer[:500]).created_at = intake.now
    intake.inbound.ticket_id = ticket.id
    _close_dialog(intake.resident)
    intake.reply(replies.supplement_received(ticket, owner_name(ticket)), kind="supplement", ticket=ticket)


def _open_ticket(intake: Intake, demand) -> Ticket:
    resident = intake.resident
    found = find_duplicate(demand, demand.location.grid or resident.grid_code, intake.now, reporter_id=resident.openid)
    if found.ticket is not None:
        return _join_duplicate(intake, found.ticket, demand, found.verdict)
    ticket = _resident_ticket(intake, demand)
    record_suggestions(ticket, found.suggestions, intake.now)
    intake.inbound.ticket_id = ticket.id
    if ticket.grid_code:
        resident.grid_code = ticket.grid_code
    if ticket.missing:
        _ask(intake, ticket, ticket.missing[0])
    intake.reply(replies.acknowledgement(ticket, owner_name(ticket), ticket.missing[:1]), kind="ack", ticket=ticket)
    intake.outbox.extend(notify_groups(ticket, "new", intake.now))
    return ticket


def _join_duplicate(intake: Intake, ticket: Ticket, demand, verdict=None) -> Ticket:
    """The same streetlight, reported again: one ticket that keeps every reporter."""
    resident = intake.resident
    join_report(
        ticket,
        demand,
        reporter_channel="mp",
        external_id=resident.openid,
        actor=f"resident:{resident.openid}",
        now=intake.now,
        verdict=verdict,
        inbound_id=intake.inbound.id,
    )
    intake.inbound.ticket_id = ticket.id
    if ticket.grid_code:  # the ticket's place is where this resident is: later notices to the grid reach them
        resident.grid_code = ticket.grid_code
    text = replies.DUPLICATE_JOINED.format(number=ticket.number, owner=owner_name(ticket) or "责任单位")
    intake.reply(text, kind="ack", ticket=ticket)
    return ticket


# A denial this short is only a denial ("不是同一件事！"); a longer text may describe a new matter.
BARE_DENIAL_CHARS = 12


def _split_my_join(intake: Intake) -> bool:
    """The resident says their report is not the ticket it joined: it gets its own ticket at once."""
    parted = undo_recent_join("mp", intake.resident.openid, intake.now, intake.inbound.content or "")
    if parted is None:
        return False
    intake.outbox.extend(parted.outbox)
    intake.inbound.ticket_id = parted.ticket.id
    if parted.ticket.grid_code:
        intake.resident.grid_code = parted.ticket.grid_code
    text = replies.split_text(parted.ticket, owner_name(parted.ticket))
    intake.reply(text, kind="split", ticket=parted.ticket)
    return True


def _ask(intake: Intake, ticket: Ticket, field_name: str) -> None:
    """Keep the dialog open: the resident's next text answers this question for this ticket."""
    intake.resident.pending_ticket_id = ticket.id
    intake.resident.pending_field = field_name
    intake.resident.pending_until = intake.now + intake.dialog_ttl
    add_event(ticket, "asked", "system", field=field_name).created_at = intake.now


def _pending_ticket(intake: Intake) -> Ticket | None:
    resident = intake.resident
    if not resident.pending_ticket_id or not resident.pending_until or resident.pending_until < intake.now:
        return None
    ticket = db.session.get(Ticket, resident.pending_ticket_id)
    return ticket if ticket is not None and ticket.is_open else None


def _close_dialog(resident: Resident) -> None:
    resident.pending_ticket_id = resident.pending_field = resident.pending_until = None


def _merge_answer(intake: Intake, ticket: Ticket, answer: str) -> None:
    original = intake.parser.parse(ticket.description, reporter_grid=intake.resident.grid_code)
    merged = intake.parser.merge(original, answer)
    old_owner = ticket.owner_code
    apply_demand(ticket, merged, intake.resident.grid_code)
    if ticket.status == TicketStatus.WAITING and "matter" not in ticket.missing:
        ticket.status = TicketStatus.ASSIGNED
        set_deadlines(ticket, intake.now)
    intake.inbound.ticket_id = ticket.id
    add_event(
        ticket, "supplemented", f"resident:{intake.resident.openid}", note=answer[:500], missing=list(ticket.missing)
    ).created_at = intake.now
    if ticket.owner_code != old_owner:
        add_event(
            ticket, "assigned", "system", owner=ticket.owner_code, reason=ticket.fields.get("routed_by")
        ).created_at = intake.now
    if ticket.grid_code:
        intake.resident.grid_code = ticket.grid_code
    _close_dialog(intake.resident)
    intake.reply(replies.supplement_received(ticket, owner_name(ticket)), kind="supplement", ticket=ticket)


def _recent_open_ticket(intake: Intake) -> Ticket | None:
    pending = _pending_ticket(intake)
    if pending is not None:
        return pending
    since = intake.now - intake.attach_window
    return (
        db.session.execute(
            db.select(Ticket)
            .filter(
                Ticket.reporters.any(external_id=intake.resident.openid),
                Ticket.created_at >= since,
                Ticket.status.in_(
                    [TicketStatus.ASSIGNED, TicketStatus.SIGNED, TicketStatus.PROCESSING, TicketStatus.WAITING]
                ),
            )
            .order_by(Ticket.created_at.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def handle_media(intake: Intake) -> None:
    """Images, video and voice without recognised text join the resident's recent ticket or start one."""
    payload = intake.inbound.payload
    media = {k: payload.get(k) for k in ("MediaId", "PicUrl", "Format", "ThumbMediaId") if payload.get(k)}
    what = {"image": "图片", "voice": "语音", "video": "视频", "shortvideo": "视频"}.get(
        intake.inbound.msg_type, "附件"
    )
    if intake.inbound.msg_type == "voice" and (intake.inbound.content or "").strip():
        handle_text(intake)  # voice with Recognition text is a demand in words
        ticket = db.session.get(Ticket, intake.inbound.ticket_id) if intake.inbound.ticket_id else None
        if ticket is not None:
            add_event(
                ticket, "attachment", f"resident:{intake.resident.openid}", media_type="voice", **media
            ).created_at = intake.now
        _keep_media(intake, ticket)
        return
    ticket = _recent_open_ticket(intake)
    if ticket is None:
        demand = intake.parser.parse("", reporter_grid=intake.resident.grid_code)
        ticket = _open_waiting_ticket(intake, demand, what)
    else:
        intake.reply(replies.attachment_received(ticket, what), kind="attached", ticket=ticket)
    intake.inbound.ticket_id = ticket.id
    add_event(
        ticket, "attachment", f"resident:{intake.resident.openid}", media_type=intake.inbound.msg_type, **media
    ).created_at = intake.now
    _keep_media(intake, ticket)


def _keep_media(intake: Intake, ticket: Ticket | None) -> None:
    kept = keep_media(intake.inbound, ticket.id if ticket is not None else None, intake.now)
    if kept is not None:
        db.session.flush()
        intake.media.append(kept)


def _resident_ticket(intake: Intake, demand) -> Ticket:
    resident = intake.resident
    return create_ticket(
        demand=demand,
        channel="mp",
        now=intake.now,
        reporter_channel="mp",
        reporter_id=resident.openid,
        reporter_grid=resident.grid_code,
        actor=f"resident:{resident.openid}",
    )


def _open_waiting_ticket(intake: Intake, demand, what: str) -> Ticket:
    """A picture alone is evidence of something: keep it on a ticket that waits for the words."""
    ticket = _resident_ticket(intake, demand)
    ticket.status = TicketStatus.WAITING
    ticket.description = f"[{what}]"
    _ask(intake, ticket, "matter")
    intake.reply(
        f"已收到您发送的{what}（工单号：{ticket.number}）。" + replies.ASK["matter"], kind="ask", ticket=ticket
    )
    return ticket


def handle_link(intake: Intake) -> None:
    ticket = _recent_open_ticket(intake)
    payload = intake.inbound.payload
    if ticket is None:
        demand_gate.decline(intake, demand_gate.NonDemand.LINK)  # a shared link alone is not a demand
        return
    add_event(
        ticket,
        "attachment",
        f"resident:{intake.resident.openid}",
        media_type="link",
        url=payload.get("Url"),
        title=payload.get("Title"),
    ).created_at = intake.now
    intake.inbound.ticket_id = ticket.id
    intake.reply(replies.attachment_received(ticket, "链接"), kind="attached", ticket=ticket)


def handle_location(intake: Intake) -> None:
    """A shared location: placed in the county's grids (containment, else the nearest within reach), it
    updates the resident's recent ticket; outside the county it routes nothing and the place is asked."""
    payload = intake.inbound.payload
    point = valid_point(payload.get("Location_X"), payload.get("Location_Y"))
    if point is None:
        intake.reply(replies.location_recorded(None), kind="location")
        return
    lat, lng = point
    placement = locate(lat, lng)
    resident = intake.resident
    ticket = _recent_open_ticket(intake)
    if placement.inside:
        resident.lat, resident.lng = lat, lng
        if placement.grid_code:
            resident.grid_code = placement.grid_code
    if ticket is not None:
        _locate_ticket(intake, ticket, lat, lng, placement)
        return
    if not placement.grid_code:
        intake.reply(replies.location_not_used(not placement.inside, asking=False), kind="location")
        return
    grid = node_by_code(placement.grid_code)
    intake.reply(replies.location_recorded(grid.name if grid else None), kind="location")


# How a ticket's grid was chosen when a later location may replace it: no grid in the words, so a named
# node above grid level, the resident's home grid or county intake stood in.
_REROUTABLE = frozenset({"reporter_grid", "named_node", "county_intake"})


def _locate_ticket(intake: Intake, ticket: Ticket, lat: float, lng: float, placement) -> None:
    """A location sent during or just after a report is that report's place: recorded on the ticket (even
    when it already has a grid), and routing it when the words named no place and no one signed it yet."""
    resident, label = intake.resident, intake.inbound.payload.get("Label")
    intake.inbound.ticket_id = ticket.id
    add_event(
        ticket,
        "located",
        f"resident:{resident.openid}",
        lat=lat,
        lng=lng,
        label=label,
        grid=placement.grid_code,
        how=placement.reason,
    ).created_at = intake.now
    if not placement.grid_code:
        # Outside the county (or near no grid): nothing is routed by it; the place is asked in words.
        asking = "location" in (ticket.missing or []) or not ticket.grid_code
        other_question = resident.pending_ticket_id == ticket.id and resident.pending_field not in (None, "location")
        if asking and not other_question:  # a question about the matter itself stays the one asked
            _ask(intake, ticket, "location")
        intake.reply(replies.location_not_used(not placement.inside, asking), kind="located", ticket=ticket)
        return
    routed_by = str((ticket.fields or {}).get("routed_by") or "").removesuffix("+rule")
    words_named_a_place = bool(ticket.location_text or ticket.place)
    reroute = placement.grid_code != ticket.grid_code and (
        not ticket.grid_code
        or "location" in (ticket.missing or [])
        or routed_by in _REROUTABLE
        or not words_named_a_place  # the grid came from where the resident lives, not from the report
    )
    ticket.lat, ticket.lng = lat, lng
    ticket.location_text = ticket.location_text or label or f"{lat:.5f},{lng:.5f}"
    if reroute and ticket.status in (TicketStatus.ASSIGNED, TicketStatus.WAITING):
        _route_to_grid(ticket, placement.grid_code)
        add_event(ticket, "assigned", "system", owner=ticket.owner_code, reason="location").created_at = intake.now
        intake.outbox.extend(notify_groups(ticket, "new", intake.now))  # groups on the new path not yet told
    ticket.missing = [m for m in (ticket.missing or []) if m != "location"]
    if resident.pending_ticket_id == ticket.id and resident.pending_field == "location":
        _close_dialog(resident)
    intake.reply(replies.supplement_received(ticket, owner_name(ticket)), kind="located", ticket=ticket)


def _route_to_grid(ticket: Ticket, grid_code: str) -> None:
    """The grid is now known from the map: route as a ticket placed there would be (category rules too)."""
    root = root_node()
    assignment = route(
        grid_code,
        None,
        None,
        root.code if root else None,
        category=ticket.category,
        subcategory=ticket.subcategory,
        rules=routing_config().rules,
        lineage=lineage,
    )
    if assignment.owner_code != ticket.owner_code:
        ticket.owner_member_id = None  # a member named at the old owner does not follow the ticket
    ticket.grid_code, ticket.owner_code = assignment.grid_code, assignment.owner_code
    ticket.closable_tier = assignment.closable_tier
    ticket.fields = {**(ticket.fields or {}), "routed_by": "location" + assignment.reason.removeprefix("grid")}


_HANDLERS = {
    "text": handle_text,
    "image": handle_media,
    "voice": handle_media,
    "video": handle_media,
    "shortvideo": handle_media,
    "location": handle_location,
    "link": handle_link,
}
