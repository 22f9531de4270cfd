"""Information officers (信息员) and grid teams writing to the WeCom app or @-mentioning the AI bot.

One inbound row in (channel "wecom" or "wecom_bot"), ticket changes and one reply out. The sender must be an
active region member with that `wecom_userid`; anyone else is refused politely and nothing is created.

- A report (free text or the bracket format 【事项】【地点】【诉求人】【电话】【紧急】) becomes a ticket with
  channel "wecom", the officer as reporter and their grid as the default location; the groups are told.
- "查询 <工单号>" answers for tickets workflow.policy lets the officer see ("查询" alone: their open ones).
- "签收 <工单号>", "办结 <工单号> <说明>" act through the workflow (workflow.transitions.apply_action), which
  asks workflow.policy like every channel: the ticket must be the officer's (owner node, or a summoned
  co-handler for 签收), sensitive categories stay with their office, and 办结 keeps the closable tier.

Replies: the app's messages for "wecom" (Outbox channel wecom_app); for the bot, one answer through the
message's response_url (Outbox channel wecom_bot; the URL takes a single post, so one reply per message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from demand import DemandParser
from demand.duplicates import denies_same
from models import (
    OPEN_STATUSES,
    STATUS_LABELS,
    InboundMessage,
    InboundStatus,
    Member,
    Outbox,
    RegionNode,
    Ticket,
    add_event,
    db,
    node_by_code,
    ticket_by_number,
)
from workflow.duplicates import join_report, record_suggestions, undo_recent_join
from workflow.group_notices import notify_groups
from workflow.policy import ActionRefused, Actor, may_see, officer_actor, visible_filter
from workflow.replies import local_time
from workflow.tickets import create_ticket, find_duplicate
from workflow.transitions import apply_action

CHANNELS = frozenset({"wecom", "wecom_bot"})

REFUSED = (
    "您好，您的企业微信账号尚未登记为本县网格员或信息员，暂不能通过此渠道上报或办理工单。"
    "如需开通，请联系县网格化服务中心；群众反映问题请通过县政务服务公众号。"
)
HELP = (
    "直接发送问题即可上报，推荐格式：\n【事项】3号楼路灯不亮【地点】阳光花园3栋【诉求人】张先生【电话】138…【紧急】否\n"
    "“查询 工单号”查看进度，“查询”列出待办；“签收 工单号”签收；“办结 工单号 办理说明”办结。"
)
NOTHING = "没有看懂要上报的问题，请写明事项，例如“【事项】3号楼路灯不亮【地点】阳光花园3栋”。发送“帮助”查看用法。"
NOT_FOUND = "没有找到工单{number}，或该工单不在您的管辖范围内。"
NO_OPEN = "您管辖范围内暂无待办工单。"
MEDIA_HINT = "已收到{what}。请再发送文字描述问题（事项、地点），以便立即派单。"

_QUERY = re.compile(r"^\s*(?:查询|查看|进度)\s*[:：]?\s*([0-9A-Za-z]*)\s*$")
_SIGN = re.compile(r"^\s*签收\s*[:：]?\s*([0-9A-Za-z]+)\s*$")
_RESOLVE = re.compile(r"^\s*办结\s*[:：]?\s*([0-9A-Za-z]+)\s*[，,:：]?\s*(.*)$", re.DOTALL)
_HELP = re.compile(r"^\s*(?:帮助|help|\?|？)\s*$", re.IGNORECASE)
MEDIA_WORDS = {"image": "图片", "voice": "语音", "video": "视频", "file": "文件", "location": "位置", "link": "链接"}


@dataclass
class OfficerIntake:
    inbound: InboundMessage
    members: list[Member]
    now: datetime
    parser: DemandParser
    attach_window: timedelta
    outbox: list[Outbox] = field(default_factory=list)

    @property
    def userid(self) -> str:
        return self.inbound.sender

    @property
    def actor(self) -> str:
        return f"officer:{self.userid}"

    @property
    def policy_actor(self) -> Actor:
        """The officer as workflow.policy sees them: a member of each node they belong to, on WeCom."""
        return officer_actor(self.userid, [m.node for m in self.members], self.inbound.channel)

    @property
    def home(self):
        """The officer's deepest node (their grid, when they have one)."""
        return max((m.node for m in self.members), key=lambda node: len(node.path))

    def reply(self, text: str, kind: str = "reply", ticket: Ticket | None = None) -> None:
        response_url = (self.inbound.payload or {}).get("response_url")
        if self.inbound.channel == "wecom_bot" and response_url:
            existing = next((m for m in self.outbox if m.channel == "wecom_bot"), None)
            if existing is not None:  # a response_url takes one post: say everything in it
                existing.payload = {**existing.payload, "text": existing.payload["text"] + "\n\n" + text}
                return
            channel, payload = "wecom_bot", {"text": text, "response_url": response_url}
        else:
            channel, payload = "wecom_app", {"text": text}
        message = Outbox(
            channel=channel,
            recipient=self.userid,
            kind=kind,
            payload=payload,
            dedup_key=f"{self.inbound.channel}:{self.inbound.id}:{kind}"[:160],
            ticket_id=ticket.id if ticket is not None else None,
        )
        db.session.add(message)
        self.outbox.append(message)


def officer_memberships(userid: str) -> list[Member]:
    if not userid:
        return []
    return list(
        db.session.execute(
            db.select(Member).filter(Member.wecom_userid == userid, Member.active.is_(True)).order_by(Member.id)
        ).scalars()
    )


def handle_officer_message(
    inbound: InboundMessage, parser, now: datetime, attach_window: timedelta = timedelta(hours=2)
) -> list[int]:
    """Process one stored WeCom push (already locked by the caller); returns the outbox ids to deliver."""
    inbound.attempts += 1
    members = officer_memberships(inbound.sender)
    intake = OfficerIntake(inbound, members, now, parser, attach_window)
    is_event = inbound.msg_type.startswith("event:")
    if not members:
        if not is_event:
            intake.reply(REFUSED, kind="refused")
    elif not is_event:
        text = (inbound.content or "").strip()
        if text and inbound.msg_type in ("text", "voice"):
            handle_officer_text(intake, text)
        else:
            _handle_media(intake)
    inbound.status = InboundStatus.PROCESSED
    inbound.processed_at = now
    inbound.error = None
    db.session.flush()
    ids = [message.id for message in intake.outbox]
    db.session.commit()
    return ids


def handle_officer_text(intake: OfficerIntake, text: str) -> None:
    if _HELP.match(text):
        intake.reply(HELP, kind="help")
        return
    if match := _QUERY.match(text):
        _query(intake, match.group(1))
        return
    if match := _SIGN.match(text):
        _act(intake, match.group(1), "sign", None)
        return
    if match := _RESOLVE.match(text):
        _act(intake, match.group(1), "resolve", match.group(2).strip() or None)
        return
    if denies_same(text) and _split_my_join(intake, text):
        return
    _report(intake, text)


def _split_my_join(intake: OfficerIntake, text: str) -> bool:
    """An officer's "不是同一件事" after their report was joined: the report gets its own ticket."""
    parted = undo_recent_join("wecom", intake.userid, intake.now, text)
    if parted is None:
        return False
    intake.outbox.extend(parted.outbox)
    intake.inbound.ticket_id = parted.ticket.id
    intake.reply("已为您的上报单独立案。\n" + ticket_summary(parted.ticket), kind="split", ticket=parted.ticket)
    return True


def _report(intake: OfficerIntake, text: str) -> None:
    home = intake.home
    grid = home.code if home.tier == "grid" else None
    demand = intake.parser.parse(text, reporter_grid=grid)
    if "matter" in demand.missing:
        intake.reply(NOTHING, kind="nothing")
        return
    if grid is None and not demand.location.grid and not demand.location.node:
        # An officer above grid level: their own node is the default place, not county intake.
        demand = replace(demand, location=replace(demand.location, node=home.code, source="reporter"))
    found = find_duplicate(demand, demand.location.grid or grid, intake.now, reporter_id=intake.userid)
    duplicate = found.ticket
    if duplicate is not None and not may_see(intake.policy_actor, duplicate):
        duplicate = None  # e.g. a complaint about officials: its number and owner are not told below its office
    if duplicate is not None:
        join_report(
            duplicate,
            demand,
            reporter_channel="wecom",
            external_id=intake.userid,
            actor=intake.actor,
            now=intake.now,
            verdict=found.verdict,
            name=_name(intake),
            inbound_id=intake.inbound.id,
        )
        intake.inbound.ticket_id = duplicate.id
        intake.reply(
            f"该问题已有工单{duplicate.number}在办，已将您的上报合并。\n" + ticket_summary(duplicate),
            kind="ack",
            ticket=duplicate,
        )
        return
    ticket = create_ticket(
        demand=demand,
        channel="wecom",
        now=intake.now,
        reporter_channel="wecom",
        reporter_id=intake.userid,
        reporter_grid=grid,
        reporter_name=_name(intake),
        actor=intake.actor,
    )
    record_suggestions(ticket, found.suggestions, intake.now)
    intake.inbound.ticket_id = ticket.id
    intake.reply("已受理。\n" + ticket_summary(ticket), kind="ack", ticket=ticket)
    intake.outbox.extend(notify_groups(ticket, "new", intake.now))


def _name(intake: OfficerIntake) -> str:
    return intake.members[0].name


def ticket_summary(ticket: Ticket) -> str:
    """Number, category, grid and deadlines: what the officer needs to check the system understood."""
    grid = node_by_code(ticket.grid_code)
    owner = node_by_code(ticket.owner_code)
    category = (ticket.category or "待分类") + (f"/{ticket.subcategory}" if ticket.subcategory else "")
    lines = [
        f"工单号：{ticket.number}",
        f"状态：{STATUS_LABELS.get(ticket.status, ticket.status)}",
        f"类别：{category}",
        f"网格：{grid.name}（{grid.code}）" if grid else "网格：未识别",
        f"承办：{owner.name}" if owner else "承办：待派",
    ]
    if ticket.location_text:
        lines.append(f"地点：{ticket.location_text}")
    if ticket.urgency == "urgent":
        lines.append("紧急程度：紧急")
    lines.append(f"签收时限：{local_time(ticket.sign_due_at)}；办结时限：{local_time(ticket.due_at)}")
    if "location" in (ticket.missing or []):
        lines.append("未识别到具体地点，已按您所在网格派单；如有误请补充【地点】重新上报。")
    return "\n".join(lines)


def _visible_ticket(intake: OfficerIntake, number: str) -> Ticket | None:
    """The ticket when workflow.policy lets this officer see it; otherwise "not found" (no hint)."""
    ticket = ticket_by_number(number[:32])
    if ticket is None or not may_see(intake.policy_actor, ticket):
        return None
    return ticket


def _query(intake: OfficerIntake, number: str) -> None:
    if number:
        ticket = _visible_ticket(intake, number)
        intake.reply(ticket_summary(ticket) if ticket else NOT_FOUND.format(number=number), kind="query")
        return
    actor = intake.policy_actor
    owned = [h.code for h in actor.homes]
    tickets = list(
        db.session.execute(
            db.select(Ticket)
            .filter(
                visible_filter(actor),
                Ticket.owner_code.in_(_area(owned)),
                Ticket.status.in_(list(OPEN_STATUSES)),
            )
            .order_by(Ticket.due_at.asc())
            .limit(10)
        ).scalars()
    )
    if not tickets:
        intake.reply(NO_OPEN, kind="query")
        return
    lines = [f"待办工单（按办结时限，前{len(tickets)}条）："]
    for ticket in tickets:
        lines.append(
            f"{ticket.number} {STATUS_LABELS.get(ticket.status, ticket.status)} {ticket.category or '待分类'}"
            f" 时限{local_time(ticket.due_at)}"
        )
    intake.reply("\n".join(lines), kind="query")


def _area(codes: list[str]) -> list[str]:
    nodes = [node_by_code(code) for code in codes]
    paths = [n.path for n in nodes if n is not None]
    if not paths:
        return []
    return list(
        db.session.execute(
            db.select(RegionNode.code).filter(db.or_(*(RegionNode.path.startswith(p) for p in paths)))
        ).scalars()
    )


def _act(intake: OfficerIntake, number: str, action: str, note: str | None) -> None:
    verb = {"sign": "签收", "resolve": "办结"}[action]
    ticket = _visible_ticket(intake, number)
    if ticket is None:
        intake.reply(NOT_FOUND.format(number=number), kind=action)
        return
    params: dict[str, Any] = {}
    try:
        # workflow.policy decides (through apply_action): whose part is signed comes from the ticket's
        # co-handlers and the officer's nodes, never from the message.
        queued = apply_action(ticket, action, intake.policy_actor, intake.now, note=note, **params)
    except ActionRefused as refused:
        db.session.expire(ticket)  # the action changes nothing when it refuses; drop anything half-set
        intake.reply(f"工单{number}无法{verb}：{refused.reason}", kind=action)
        return
    intake.outbox.extend(queued)
    intake.inbound.ticket_id = ticket.id
    done = "，已通知群众评价" if action == "resolve" else ""
    intake.reply(f"工单{number}已{verb}{done}。\n" + ticket_summary(ticket), kind=action, ticket=ticket)


def _handle_media(intake: OfficerIntake) -> None:
    """A picture or file joins the officer's latest report (within the attach window); otherwise ask for words."""
    kind = intake.inbound.msg_type
    what = MEDIA_WORDS.get(kind, "消息")
    since = intake.now - intake.attach_window
    ticket = (
        db.session.execute(
            db.select(Ticket)
            .filter(
                Ticket.reporters.any(external_id=intake.userid),
                Ticket.created_at >= since,
                Ticket.status.in_(list(OPEN_STATUSES)),
            )
            .order_by(Ticket.created_at.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )
    if ticket is None or kind in ("location", "link"):
        intake.reply(MEDIA_HINT.format(what=what), kind="media")
        return
    payload = intake.inbound.payload or {}
    media = {k: payload.get(k) for k in ("MediaId", "PicUrl", "media_url") if payload.get(k)}
    add_event(ticket, "attachment", intake.actor, media_type=kind, **media).created_at = intake.now
    intake.inbound.ticket_id = ticket.id
    intake.reply(f"已收到{what}，已补充到工单{ticket.number}。", kind="attached", ticket=ticket)
