"""The staff work queue and ticket page: what is mine, what is due first, what happened, what I may do.

Everything is limited to what workflow.policy lets the actor see. Personal data is masked for roles that
do not call residents back (policy.sees_personal_data). Staff actions go through workflow.service, the
same function the API uses, so the console refuses exactly what the API refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlparse

from demand.taxonomy import Taxonomy
from models import (
    OPEN_STATUSES,
    InboundMessage,
    MediaFile,
    RegionNode,
    Ticket,
    TicketStatus,
    UTCDateTime,
    add_event,
    db,
)
from ops.privacy import mask_id_card, mask_name, mask_phone, mask_text
from workflow.deliveries import delivery_problems
from workflow.duplicates import Possible, possible_duplicates, splittable
from workflow.policy import READ_ONLY_ROLES, ActionRefused, Actor, area_codes, may, sees_personal_data, visible_filter
from workflow.rules.sla import LOCAL_TZ
from workflow.scope import node_names
from workflow.tickets import CANDIDATES_FIELD, REVIEW_FIELD, needs_review, needs_review_filter

S = TicketStatus
PER_PAGE = 50
MAX_PER_PAGE = 100
# Statuses whose clocks run (WAITING is paused on the resident, so it is never overdue).
RUNNING = (S.ASSIGNED, S.SIGNED, S.PROCESSING)
STATUS_GROUPS = {"open": tuple(OPEN_STATUSES), "done": (S.RESOLVED, S.CLOSED, S.CANCELLED), "all": ()}
URGENCY_LABELS = {"urgent": "紧急", "normal": "一般"}
# Staff-facing names (models.STATUS_LABELS speaks to the resident: "待您补充信息").
STAFF_STATUS_LABELS: dict[str, str] = {
    S.ASSIGNED: "待签收",
    S.SIGNED: "已签收",
    S.PROCESSING: "办理中",
    S.WAITING: "待居民补充",
    S.RESOLVED: "已办结（待评价）",
    S.CLOSED: "已结案",
    S.CANCELLED: "已取消",
}
CHANNEL_LABELS = {"mp": "公众号", "wecom": "企业微信", "open311": "Open311", "console": "工作台"}
# The channel a staff action came through (event data "channel"; policy.CHANNELS).
ACTOR_CHANNEL_LABELS = {
    "api": "接口",
    "console": "工作台",
    "wecom": "企业微信",
    "open311": "Open311",
    "resident": "公众号",
}
EVENT_LABELS = {
    "created": "受理",
    "assigned": "派单",
    "sign": "签收",
    "start": "开始办理",
    "resolve": "办结",
    "assign": "改派",
    "escalate": "提级",
    "summon": "吹哨（协办）",
    "return": "退单",
    "request_info": "请居民补充",
    "merge": "合并到其他工单",
    "merged_from": "合并入本单",
    "reopen": "重新办理",
    "close": "结案",
    "cancelled": "取消",
    "withdrawn": "居民撤回反映",
    "reminded": "催办",
    "handler_reminded": "催办协办单位",
    "overdue": "超期",
    "corrected": "人工更正",
    "rerouted": "网格调整转办",
    "supplemented": "居民补充",
    "asked": "追问居民",
    "duplicate_joined": "重复诉求并入",
    "split": "拆分出单独工单",
    "split_from": "由合并拆分而来",
    "attachment": "附件",
    "located": "定位",
    "rated": "评价",
    "rating_expired": "评价超时",
    "notify_failed": "通知失败",
    "notify_fallback": "改用模板消息通知",
    "notify_deferred": "通知待额度恢复后重发",
    "notify_skipped": "通知未发送",
    "notify_resent": "重新发送通知",
}
MEDIA_TYPE_LABELS = {"image": "图片", "voice": "语音", "video": "视频", "shortvideo": "小视频"}
MEDIA_STATUS_LABELS = {
    "pending": "正在从微信下载",
    "stored": "已保存",
    "rejected": "超出大小或类型限制，未保存",
    "failed": "未能下载（微信已删除或多次失败）",
}
# What the parser may list as missing (Demand.missing), as staff read it under 待补充.
MISSING_LABELS = {"location": "地点", "matter": "问题描述", "contact": "联系方式", "category": "类别"}
# Which forms the ticket page offers in each status (a hint only: apply_action decides).
ACTION_STATUSES: dict[str, tuple[str, ...]] = {
    "sign": (S.ASSIGNED,),
    "start": (S.SIGNED,),
    "resolve": (S.SIGNED, S.PROCESSING),
    "request_info": (S.ASSIGNED, S.SIGNED, S.PROCESSING),
    "return": (S.ASSIGNED, S.SIGNED, S.PROCESSING),
    "escalate": (S.ASSIGNED, S.SIGNED, S.PROCESSING),
    "assign": tuple(OPEN_STATUSES),
    "summon": tuple(OPEN_STATUSES),
    "merge": tuple(OPEN_STATUSES),
    "reopen": (S.RESOLVED, S.CLOSED),
    "close": (S.RESOLVED, *OPEN_STATUSES),
}
ACTION_LABELS = {
    "sign": "签收",
    "start": "开始办理",
    "resolve": "办结",
    "request_info": "请居民补充信息",
    "return": "退单",
    "escalate": "提级",
    "assign": "派单 / 改派",
    "summon": "吹哨（请协办单位）",
    "merge": "合并到另一工单",
    "reopen": "重新办理",
    "close": "结案",
    "split": "拆分为单独工单",
}


# --- time ------------------------------------------------------------------------------------------


def local(moment: datetime | None) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def span_text(delta: timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{minutes}分"
    return f"{minutes}分钟"


def time_left(due: datetime | None, now: datetime) -> tuple[str, str]:
    """(text, state) for a deadline: state is ok | soon (< 4 h) | overdue | none."""
    if due is None:
        return "无时限", "none"
    delta = due - now
    if delta.total_seconds() < 0:
        return f"已超时 {span_text(delta)}", "overdue"
    return f"剩余 {span_text(delta)}", "soon" if delta < timedelta(hours=4) else "ok"


def next_due_expr():
    """The next deadline that matters: signing while unsigned, else resolving."""
    expr = db.case(
        (Ticket.status == S.ASSIGNED, db.func.coalesce(Ticket.sign_due_at, Ticket.due_at)), else_=Ticket.due_at
    )
    return db.type_coerce(expr, UTCDateTime)


def next_due(ticket: Ticket) -> datetime | None:
    if ticket.status == S.ASSIGNED and ticket.sign_due_at is not None:
        return ticket.sign_due_at
    return ticket.due_at


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    due = next_due(ticket)
    return ticket.status in RUNNING and due is not None and due < now


# --- the queue --------------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    status: str = "open"  # open | done | all | one TicketStatus
    category: str = ""
    urgency: str = ""
    grid: str = ""
    overdue: bool = False
    review: bool = False  # only the 待分类 tickets (category to be confirmed by a person)
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    page: int = 1
    per_page: int = PER_PAGE
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilters:
        """Read query-string values; anything malformed is dropped and named in `errors`."""
        filters = cls()
        status = (args.get("status") or "open").strip()
        if status in STATUS_GROUPS or status in set(S):
            filters.status = status
        else:
            filters.errors.append("状态")
        filters.category = (args.get("category") or "").strip()[:32]
        urgency = (args.get("urgency") or "").strip()
        filters.urgency = urgency if urgency in URGENCY_LABELS else ""
        filters.grid = (args.get("grid") or "").strip()[:32]
        filters.overdue = (args.get("overdue") or "") in ("1", "on", "true")
        filters.review = (args.get("review") or "") in ("1", "on", "true")
        filters.q = (args.get("q") or "").strip()[:100]
        for name in ("date_from", "date_to"):
            value = (args.get(name) or "").strip()
            if value:
                try:
                    setattr(filters, name, date.fromisoformat(value))
                except ValueError:
                    filters.errors.append("日期")
        try:
            filters.page = max(1, int(args.get("page") or 1))
            filters.per_page = min(MAX_PER_PAGE, max(1, int(args.get("per_page") or PER_PAGE)))
        except ValueError:
            filters.errors.append("页码")
        return filters

    def as_args(self, **changes) -> dict[str, str]:
        """The non-default filters as query-string values (for paging links and exports)."""
        values = {
            "status": self.status if self.status != "open" else "",
            "category": self.category,
            "urgency": self.urgency,
            "grid": self.grid,
            "overdue": "1" if self.overdue else "",
            "review": "1" if self.review else "",
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "q": self.q,
            "page": str(self.page) if self.page != 1 else "",
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


@dataclass
class QueueRow:
    id: int
    number: str
    status: str
    status_label: str
    category: str
    subcategory: str
    urgency: str
    grid_name: str
    owner_name: str
    summary: str
    created_at: str
    due_label: str
    due_at: str
    left_text: str
    left_state: str
    overdue: bool
    escalation_level: int
    possible: list[Possible] = field(default_factory=list)  # 可能重复
    needs_review: bool = False  # in 待分类: `category` is the parser's suggestion


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int
    page: int
    pages: int
    per_page: int


def local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ)


def queue_query(actor: Actor, filters: QueueFilters, now: datetime, codes: list[str] | None = None):
    """The SELECT for the actor's queue with the filters applied (unordered)."""
    query = db.select(Ticket).filter(visible_filter(actor, codes), Ticket.merged_into_id.is_(None))
    statuses = STATUS_GROUPS.get(filters.status, (filters.status,))
    if statuses:
        query = query.filter(Ticket.status.in_([str(s) for s in statuses]))
    if filters.category:
        query = query.filter(Ticket.category == filters.category)
    if filters.urgency:
        query = query.filter(Ticket.urgency == filters.urgency)
    if filters.grid:
        query = query.filter(Ticket.grid_code == filters.grid)
    if filters.overdue:
        query = query.filter(Ticket.status.in_([str(s) for s in RUNNING]), next_due_expr() < now)
    if filters.review:
        query = query.filter(needs_review_filter())
    if filters.date_from:
        query = query.filter(Ticket.created_at >= local_day_start(filters.date_from))
    if filters.date_to:
        query = query.filter(Ticket.created_at < local_day_start(filters.date_to + timedelta(days=1)))
    if filters.q:
        text = db.or_(
            Ticket.description.contains(filters.q, autoescape=True),
            Ticket.location_text.contains(filters.q, autoescape=True),
            Ticket.place.contains(filters.q, autoescape=True),
        )
        query = query.filter(db.or_(Ticket.number.startswith(filters.q, autoescape=True), text))
    return query


def review_count(actor: Actor) -> int:
    """How many open tickets in the actor's area wait in 待分类 (the tab's badge)."""
    query = db.select(db.func.count(Ticket.id)).filter(
        visible_filter(actor),
        Ticket.merged_into_id.is_(None),
        Ticket.status.in_([str(s) for s in OPEN_STATUSES]),
        needs_review_filter(),
    )
    return db.session.execute(query).scalar_one()


def search_queue(actor: Actor, filters: QueueFilters, now: datetime) -> QueuePage:
    """One page of the actor's queue, soonest deadline first (tickets without one last)."""
    codes = area_codes(actor)
    query = queue_query(actor, filters, now, codes)
    total = db.session.execute(db.select(db.func.count()).select_from(query.subquery())).scalar_one()
    pages = max(1, -(-total // filters.per_page))
    page = min(filters.page, pages)
    due = next_due_expr()
    tickets = (
        db.session.execute(
            query.order_by(due.is_(None), due, Ticket.id).limit(filters.per_page).offset((page - 1) * filters.per_page)
        )
        .scalars()
        .all()
    )
    names = node_names([t.grid_code for t in tickets] + [t.owner_code for t in tickets])
    possible = possible_duplicates(t.id for t in tickets)
    unmasked = sees_personal_data(actor)
    rows = []
    for t in tickets:
        due_at = next_due(t)
        running = t.status in RUNNING
        left_text, left_state = (
            time_left(due_at, now) if running else (STAFF_STATUS_LABELS.get(t.status, t.status), "none")
        )
        description = t.description or ""
        summary = description if unmasked else mask_text(description, names=reporter_names(t))
        rows.append(
            QueueRow(
                id=t.id,
                number=t.number or str(t.id),
                status=t.status,
                status_label=STAFF_STATUS_LABELS.get(t.status, t.status),
                category=t.category or "未分类",
                subcategory=t.subcategory or "",
                urgency=t.urgency,
                grid_name=names.get(t.grid_code, t.grid_code or ""),
                owner_name=names.get(t.owner_code, t.owner_code or ""),
                summary=summary[:80] + ("…" if len(summary) > 80 else ""),
                created_at=local(t.created_at),
                due_label="签收时限" if t.status == S.ASSIGNED and t.sign_due_at else "办结时限",
                due_at=local(due_at),
                left_text=left_text,
                left_state=left_state,
                overdue=running and left_state == "overdue",
                escalation_level=t.escalation_level,
                possible=possible.get(t.id, []),
                needs_review=needs_review(t),
            )
        )
    return QueuePage(rows=rows, total=total, page=page, pages=pages, per_page=filters.per_page)


# --- the ticket page ---------------------------------------------------------------------------------


def safe_url(url: object) -> str | None:
    """Only http(s) links are shown (a javascript: URL would run in the console's origin)."""
    if not isinstance(url, str):
        return None
    parsed = urlparse(url.strip())
    return url.strip() if parsed.scheme in ("http", "https") and parsed.netloc else None


ROUTING_REASONS = {
    "grid": "诉求地点所在网格",
    "reporter_grid": "反映人所在网格",
    "named_node": "诉求中提到的单位",
    "county_intake": "未能定位，由县级受理中心派单",
    "location": "居民发送的位置所在网格",
}


def routing_reason(reason: str | None) -> str:
    """workflow.tickets' routing reason ("grid+rule") in words."""
    if not reason:
        return ""
    base, rule = reason.removesuffix("+rule"), reason.endswith("+rule")
    return ROUTING_REASONS.get(base, base) + ("，按类别规则上提" if rule else "")


def _actor_label(actor: str, unmasked: bool) -> str:
    kind, _, ident = (actor or "").partition(":")
    # "user:" and "api:" are how older rows named staff accounts (today: staff:<username>, channel apart).
    labels = {
        "staff": "工作人员",
        "user": "工作人员",
        "api": "工作人员",
        "resident": "居民",
        "officer": "信息员",
        "system": "系统",
    }
    if kind in ("resident", "officer") and ident and not unmasked:
        ident = ident[:4] + "…"
    label = labels.get(kind, kind)
    return f"{label} {ident}".strip() if ident else label


def _event_details(event, names: dict[str, str]) -> list[str]:
    data = event.data or {}
    details = []
    if data.get("from_status") and data.get("to_status") and data["from_status"] != data["to_status"]:
        details.append(
            f"{STAFF_STATUS_LABELS.get(data['from_status'], data['from_status'])} → "
            f"{STAFF_STATUS_LABELS.get(data['to_status'], data['to_status'])}"
        )
    for key, label in (("from_owner", "原承办"), ("to_owner", "新承办"), ("owner", "承办"), ("node", "单位")):
        if data.get(key):
            details.append(f"{label}：{names.get(data[key], data[key])}")
    if data.get("handlers"):
        role = {"lead": "主办", "co": "协办"}
        details.append(
            "协办："
            + "、".join(
                f"{names.get(h.get('node'), h.get('node'))}（{role.get(h.get('role'), '')}）"
                for h in data["handlers"]
                if isinstance(h, dict)
            )
        )
    if data.get("into"):
        details.append(f"并入：{data['into']}")
    if data.get("source"):
        details.append(f"来源工单：{data['source']}")
    if data.get("split_to"):
        details.append(f"拆分为：{data['split_to']}")
    if data.get("reason") and event.kind == "duplicate_joined":
        score = f"（相似度 {data['score']:.2f}）" if isinstance(data.get("score"), int | float) else ""
        details.append(f"依据：{data['reason']}{score}")
    if isinstance(data.get("changes"), dict):
        for name, change in data["changes"].items():
            if isinstance(change, dict):
                old, new = change.get("from"), change.get("to")
                if name == "grid":
                    old, new = names.get(old, old), names.get(new, new)
                details.append(f"{CORRECTABLE.get(name, name)}：{old or '空'} → {new or '空'}")
    if data.get("channel") in ACTOR_CHANNEL_LABELS:
        details.append(f"渠道：{ACTOR_CHANNEL_LABELS[data['channel']]}")
    if isinstance(data.get("reviewed"), dict):
        details.append(f"待分类已处理：确认类别为{data['reviewed'].get('category') or '空'}")
    if "on_time" in data:
        details.append("按时" if data["on_time"] else "超时")
    if data.get("reason") and event.kind == "assigned":
        details.append(f"依据：{routing_reason(data['reason'])}")
    return details


# Ticket fields the page shows in their own place, or not at all.
HIDDEN_FIELDS = ("original_text", "paused_from", "routed_by", REVIEW_FIELD, CANDIDATES_FIELD)


def reporter_names(ticket: Ticket) -> list[str]:
    return [r.name for r in ticket.reporters if r.name]


def ticket_page(ticket: Ticket, actor: Actor, now: datetime) -> dict:
    """Everything the ticket page shows, masked for the actor's role."""
    unmasked = sees_personal_data(actor)
    names_to_mask = reporter_names(ticket)
    mask = (lambda text: text or "") if unmasked else (lambda text: mask_text(text or "", names=names_to_mask))
    event_codes = []
    for e in ticket.events:
        data = e.data or {}
        event_codes += [data.get(k) for k in ("from_owner", "to_owner", "owner", "node")]
        event_codes += [h.get("node") for h in data.get("handlers") or [] if isinstance(h, dict)]
        changes = data.get("changes") if isinstance(data.get("changes"), dict) else {}
        event_codes += [(changes.get("grid") or {}).get(k) for k in ("from", "to")]
    candidates = [c for c in (ticket.fields or {}).get(CANDIDATES_FIELD) or [] if isinstance(c, str)]
    names = node_names(
        [ticket.grid_code, ticket.owner_code, *[h.node_code for h in ticket.handlers], *[c for c in event_codes if c]]
    )
    names.update(node_names(candidates))
    originals = db.session.execute(
        db.select(InboundMessage.received_at, InboundMessage.channel, InboundMessage.content)
        .filter(InboundMessage.ticket_id == ticket.id, InboundMessage.content.is_not(None))
        .order_by(InboundMessage.id)
    ).all()
    words = [
        {"at": local(at), "channel": CHANNEL_LABELS.get(ch, ch), "text": mask(text)}
        for at, ch, text in originals
        if (text or "").strip()
    ]
    if not words and (ticket.fields or {}).get("original_text"):
        words.append(
            {
                "at": local(ticket.created_at),
                "channel": CHANNEL_LABELS.get(ticket.channel, ticket.channel),
                "text": mask(ticket.fields["original_text"]),
            }
        )
    attachments = []
    for e in ticket.events:
        if e.kind != "attachment":
            continue
        data = e.data or {}
        attachments.append(
            {
                "at": local(e.created_at),
                "type": data.get("media_type") or "",
                "image": safe_url(data.get("PicUrl")) if data.get("media_type") == "image" else None,
                "url": safe_url(data.get("url") or data.get("PicUrl")),
                "title": data.get("title") or "",
                "media_id": data.get("MediaId") or "",
            }
        )
    media = [
        {
            "id": m.id,
            "type": m.msg_type,
            "label": MEDIA_TYPE_LABELS.get(m.msg_type, "附件"),
            "status": str(m.status),
            "status_label": MEDIA_STATUS_LABELS.get(m.status, m.status),
            "content_type": m.content_type or "",
            "size_kb": round((m.size or 0) / 1024, 1),
            "at": local(m.created_at),
        }
        for m in db.session.execute(
            db.select(MediaFile).filter_by(ticket_id=ticket.id).order_by(MediaFile.id)
        ).scalars()
    ]
    timeline = [
        {
            "at": local(e.created_at),
            "kind": e.kind,
            "label": EVENT_LABELS.get(e.kind, e.kind),
            "actor": _actor_label(e.actor, unmasked),
            "note": mask(e.note) if e.note else "",
            "details": _event_details(e, names),
        }
        for e in ticket.events
    ]
    running = ticket.status in RUNNING
    deadlines = []
    for label, moment, done_at in (
        ("签收时限", ticket.sign_due_at, ticket.signed_at),
        ("首次答复时限", ticket.respond_due_at, ticket.first_response_at),
        ("办结时限", ticket.due_at, ticket.resolved_at),
    ):
        if moment is None:
            continue
        if done_at is not None:
            on_time = done_at <= moment
            text, state = f"已于 {local(done_at)} 完成" + ("" if on_time else "（逾期）"), "done" if on_time else "late"
        elif ticket.status == S.WAITING:
            text, state = "等待居民补充，计时暂停", "paused"
        elif not running:
            text, state = STAFF_STATUS_LABELS.get(ticket.status, ticket.status), "none"
        else:
            text, state = time_left(moment, now)
        deadlines.append({"label": label, "at": local(moment), "text": text, "state": state})
    may_act = actor.role not in READ_ONLY_ROLES
    joined = splittable(ticket) if may_act and ticket.merged_into_id is None else {}
    reporters = [
        {
            "id": r.id,
            "splittable": r.id in joined,
            "channel": CHANNEL_LABELS.get(r.channel, r.channel),
            "name": (r.name if unmasked else mask_name(r.name)) if r.name else "",
            "phone": (r.phone if unmasked else mask_phone(r.phone)) if r.phone else "",
            "id_card": (r.id_card if unmasked else mask_id_card(r.id_card)) if r.id_card else "",
        }
        for r in ticket.reporters
    ]
    fields = {}
    for key, value in (ticket.fields or {}).items():
        if key in HIDDEN_FIELDS or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else str(value)
        fields[key] = text if unmasked else (mask_name(text) if key == "reporter" else mask(text))
    actions = [
        name for name, statuses in ACTION_STATUSES.items() if ticket.status in statuses and may(actor, name, ticket)
    ]
    return {
        "ticket": ticket,
        "status_label": STAFF_STATUS_LABELS.get(ticket.status, ticket.status),
        "channel": CHANNEL_LABELS.get(ticket.channel, ticket.channel),
        "grid_name": names.get(ticket.grid_code, ticket.grid_code or ""),
        "owner_name": names.get(ticket.owner_code, ticket.owner_code or ""),
        "description": mask(ticket.description),
        "needs_review": needs_review(ticket),
        "place_candidates": [names.get(code, code) for code in candidates],
        "urgency_reason": mask(ticket.urgency_reason) if ticket.urgency_reason else "",
        "words": words,
        "attachments": attachments,
        "media": media,
        "timeline": timeline,
        "deadlines": deadlines,
        "overdue": is_overdue(ticket, now),
        "reporters": reporters,
        "fields": fields,
        "routed_by": routing_reason((ticket.fields or {}).get("routed_by")),
        "missing": [MISSING_LABELS.get(name, name) for name in ticket.missing or []],
        "delivery_problems": delivery_problems(ticket),
        "handlers": [
            {
                "code": h.node_code,
                "name": names.get(h.node_code, h.node_code),
                "role": h.role,
                "status": h.status,
                "sign_due": local(h.sign_due_at),
                "mine": actor.covers(h.node_code),
            }
            for h in ticket.handlers
        ],
        "actions": actions,
        "may_correct": may(actor, "correct", ticket),
        "possible": possible_duplicates([ticket.id]).get(ticket.id, []) if ticket.merged_into_id is None else [],
        "may_act": may_act,
    }


# --- acting -----------------------------------------------------------------------------------------


CORRECTABLE = {"category": "类别", "subcategory": "子类", "urgency": "紧急程度", "grid": "网格"}


def correct_ticket(
    ticket: Ticket, actor: Actor, values: Mapping[str, str], taxonomy: Taxonomy, now: datetime, note: str | None = None
):
    """Staff fix the parser's fields (category/subcategory/urgency/grid); one "corrected" event records
    each change (from → to). Deadlines and the owner stay as they are: re-dispatch is the assign action.
    Raises ActionRefused(403/400)."""
    if not may(actor, "correct", ticket):
        raise ActionRefused(403, "您不能更正该工单")
    category = (values.get("category") or "").strip() or ticket.category
    subcategory = (values.get("subcategory") or "").strip() or None
    urgency = (values.get("urgency") or "").strip() or ticket.urgency
    grid = (values.get("grid") or "").strip() or ticket.grid_code
    if category not in taxonomy.names:
        raise ActionRefused(400, f"未知的类别：{category}")
    if subcategory and subcategory not in taxonomy.subcategories(category):
        raise ActionRefused(400, f"“{subcategory}”不是“{category}”的子类")
    if urgency not in URGENCY_LABELS:
        raise ActionRefused(400, "紧急程度只能是 紧急 或 一般")
    if grid != ticket.grid_code:
        node = db.session.execute(db.select(RegionNode).filter_by(code=grid)).scalar_one_or_none()
        if node is None or node.tier != "grid":
            raise ActionRefused(400, "请选择一个网格")
        if not actor.covers(grid):
            raise ActionRefused(403, "该网格不在您的管辖范围内")
    new = {"category": category, "subcategory": subcategory, "urgency": urgency, "grid": grid}
    old = {
        "category": ticket.category,
        "subcategory": ticket.subcategory,
        "urgency": ticket.urgency,
        "grid": ticket.grid_code,
    }
    changes = {k: {"from": old[k], "to": new[k]} for k in new if (old[k] or None) != (new[k] or None)}
    reviewed = needs_review(ticket)
    if not changes and not reviewed:
        raise ActionRefused(400, "没有需要更正的内容")
    ticket.category, ticket.subcategory, ticket.urgency, ticket.grid_code = category, subcategory, urgency, grid
    if "category" in changes or "subcategory" in changes or reviewed:
        ticket.confidence = 1.0  # a person decided
    extra: dict = {}
    if reviewed:
        # Out of 待分类: saving the form, changed or not, is a person's decision on the category.
        ticket.fields = {**(ticket.fields or {}), REVIEW_FIELD: "done"}
        extra["reviewed"] = {"suggested": old["category"], "category": category}
    event = add_event(
        ticket,
        "corrected",
        actor.label,
        (note or "").strip()[:2000] or None,
        changes=changes,
        channel=actor.channel,
        **extra,
    )
    event.created_at = now
    return event
