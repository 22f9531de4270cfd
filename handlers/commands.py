"""Resident commands on the official account: 查询, 取消, 帮助, 退订通知 / 订阅通知 / 政策通知.

What a resident may see and do is workflow.policy's answer like on every channel: their own tickets only
(as an active reporter). 取消 acts on the resident's own participation: it withdraws this resident, and
the ticket itself is cancelled only when they were its last reporter and nobody has acted on it yet.
"""

from __future__ import annotations

import re

from broadcasts.compose import recent_notices, set_notices
from models import OPEN_STATUSES, STATUS_LABELS, Ticket, TicketStatus, add_event, db, ticket_by_number
from workflow import replies
from workflow.policy import active_reporters, may, resident_actor, visible_filter

# Timeline entries that mean someone (staff, an officer) took the ticket up; the system's own routing does not.
HANDLED_KINDS = frozenset(
    {"sign", "start", "resolve", "assign", "escalate", "summon", "return", "request_info", "merge", "reopen", "close"}
)

_COMMAND = re.compile(r"^\s*(查询|查看|进度|取消|撤回|帮助|help|\?|？)\s*[:：]?\s*([0-9A-Za-z]*)\s*$", re.IGNORECASE)


# Policy notices: opting out stops broadcasts only; replies about the resident's own tickets continue.
_NOTICE_WORDS = {"退订通知": False, "退订政策通知": False, "订阅通知": True, "订阅政策通知": True}
NOTICES_QUERY = "政策通知"
# Menu click keys (config/menu.yaml) that mean the same as a typed command.
MENU_COMMANDS = {"MY_TICKETS": "查询", "NOTICES": NOTICES_QUERY, "NOTICES_ON": "订阅通知", "NOTICES_OFF": "退订通知"}


def handle_command(intake, text: str) -> bool:
    """Answer a command and return True; False when the text is not a command."""
    word = text.strip()
    if word in _NOTICE_WORDS:
        _notices(intake, _NOTICE_WORDS[word])
        return True
    if word in (NOTICES_QUERY, "最新通知"):
        intake.reply(replies.recent_notices(recent_notices(intake.resident)), kind="notices")
        return True
    match = _COMMAND.match(text)
    if not match:
        return False
    verb, number = match.group(1), match.group(2)
    if verb in ("查询", "查看", "进度"):
        _query(intake, number)
    elif verb in ("取消", "撤回"):
        if not number:
            return False  # "取消" alone reads as ordinary words, not a command
        _cancel(intake, number)
    else:
        intake.reply(replies.HELP, kind="help")
    return True


def _notices(intake, on: bool) -> None:
    changed = set_notices(intake.resident, on)
    if on:
        intake.reply(replies.NOTICES_ON if changed else replies.NOTICES_ALREADY_ON, kind="notices_on")
    else:
        intake.reply(replies.NOTICES_OFF if changed else replies.NOTICES_ALREADY_OFF, kind="notices_off")


def _own_ticket(intake, number: str, action: str = "view") -> Ticket | None:
    ticket = ticket_by_number(number[:32])
    if ticket is None or not may(resident_actor(intake.resident.openid), action, ticket):
        return None  # another resident's ticket is "not found", never disclosed
    return ticket


def _query(intake, number: str) -> None:
    if number:
        ticket = _own_ticket(intake, number)
        intake.reply(replies.status_line(ticket, STATUS_LABELS) if ticket else replies.NOT_FOUND, kind="query")
        return
    tickets = (
        db.session.execute(
            db.select(Ticket)
            .filter(
                visible_filter(resident_actor(intake.resident.openid)),
                Ticket.status.in_(list(OPEN_STATUSES) + [TicketStatus.RESOLVED]),
            )
            .order_by(Ticket.created_at.desc())
            .limit(5)
        )
        .scalars()
        .all()
    )
    text = "\n".join(replies.status_line(t, STATUS_LABELS) for t in tickets) if tickets else replies.NO_TICKETS
    intake.reply(text, kind="query")


def _cancel(intake, number: str) -> None:
    ticket = _own_ticket(intake, number, "cancel")
    if ticket is None:
        intake.reply(replies.NOT_FOUND, kind="cancel")
        return
    if not ticket.is_open:
        intake.reply(replies.CANNOT_CANCEL.format(number=number, status=STATUS_LABELS[ticket.status]), kind="cancel")
        return
    openid = intake.resident.openid
    mine = [r for r in active_reporters(ticket) if r.channel == "mp" and r.external_id == openid]
    others = [r for r in active_reporters(ticket) if r not in mine]
    acted = any(event.kind in HANDLED_KINDS for event in ticket.events)
    if intake.resident.pending_ticket_id == ticket.id:
        intake.resident.pending_ticket_id = intake.resident.pending_field = intake.resident.pending_until = None
    if others or acted:
        # Others still wait for it, or staff already took it up: only this resident's report is withdrawn.
        for reporter in mine:
            reporter.withdrawn_at = intake.now
        add_event(
            ticket, "withdrawn", f"resident:{openid}", remaining=len(others), channel="resident"
        ).created_at = intake.now
        intake.reply(replies.WITHDRAWN.format(number=number), kind="cancel")
        return
    ticket.status = TicketStatus.CANCELLED
    add_event(ticket, "cancelled", f"resident:{openid}", channel="resident").created_at = intake.now
    intake.reply(replies.CANCELLED.format(number=number), kind="cancel", ticket=ticket)
