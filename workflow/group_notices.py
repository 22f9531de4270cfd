"""What the tier group chats (county → town → community/village) see of a ticket: a new ticket in their
subtree, an escalation into their node, an overdue warning, a reminder (催办). Writes Outbox rows only, in
the caller's transaction; the caller commits and enqueues delivery (robot rows are drained within each
robot's 20-a-minute budget by delivery.robots).

A node's group is `group.robot_key` (a group robot, preferred: its markdown can @-mention members) or else
`group.chat_id` (a chat the WeCom app created). The responsible members are @-mentioned as `<@userid>`.
"""

from __future__ import annotations

from datetime import datetime

from models import Member, Outbox, RegionNode, Ticket, db, node_by_code
from ops.privacy import mask_text
from workflow.policy import node_sees
from workflow.replies import local_time

NOTICE_KINDS = ("new", "escalated", "overdue", "reminder")
ROBOT_CHANNEL = "wecom_robot"
APPCHAT_CHANNEL = "wecom_appchat"
MAX_MENTIONS = 10
EXCERPT_CHARS = 200
# Who is @-mentioned first when a node has many members (the people who act on a ticket).
ROLE_ORDER = {"grid_officer": 0, "info_officer": 1, "cadre": 2, "staff": 3, "department": 4, "party_leader": 5}

TITLES = {"new": "新工单", "escalated": "工单转办", "overdue": "超期预警", "reminder": "催办"}


def group_destination(node: RegionNode) -> tuple[str, str] | None:
    """(outbox channel, recipient) of the node's group, or None when it has none."""
    group = node.group or {}
    if group.get("robot_key"):
        return ROBOT_CHANNEL, str(group["robot_key"])
    if group.get("chat_id"):
        return APPCHAT_CHANNEL, str(group["chat_id"])
    return None


def _path_nodes(node: RegionNode) -> list[RegionNode]:
    """The node and its ancestors, root first."""
    codes = node.ancestors_codes()
    found = {n.code: n for n in db.session.execute(db.select(RegionNode).filter(RegionNode.code.in_(codes))).scalars()}
    return [found[code] for code in codes if code in found]


def notify_groups(ticket: Ticket, kind: str, now: datetime, node_code: str | None = None) -> list[Outbox]:
    """Queue the group notices for one event on a ticket; returns the Outbox rows added (none on a re-run).

    "new": the groups of the owner node and of each ancestor. "escalated" / "overdue" / "reminder": the group
    of `node_code` (default: the owner), or of its nearest ancestor that has one when the node itself has none.
    """
    if kind not in NOTICE_KINDS:
        raise ValueError(f"group notice kind {kind!r} is not one of {NOTICE_KINDS}")
    subject = node_by_code(node_code or ticket.owner_code)
    if subject is None:
        return []
    # A group hears only of what its team may see (workflow.policy: complaints about officials stay with
    # the office that handles them, never in the groups of the teams below it).
    path = [n for n in _path_nodes(subject) if group_destination(n) is not None and node_sees(n, ticket)]
    if kind == "new":
        targets = path
        step = ""
    else:
        targets = path[-1:]  # the node itself when it has a group, else its nearest ancestor with one
        step = f":{int(ticket.step_started_at.timestamp())}" if ticket.step_started_at else ""
    mentions = responsible_userids(ticket, subject)
    queued = []
    for node in targets:
        channel, recipient = group_destination(node)
        where = node.code if kind == "new" else subject.code
        dedup_key = f"group:{ticket.id}:{kind}:{where}:{ticket.escalation_level}{step}"[:160]
        if db.session.execute(db.select(Outbox.id).filter_by(dedup_key=dedup_key)).first() is not None:
            continue
        payload = {
            "msgtype": "markdown",
            "content": notice_markdown(ticket, kind, subject, mentions, now),
            "mentioned_list": mentions,
            "node": node.code,
            "number": ticket.number,
        }
        message = Outbox(
            channel=channel,
            recipient=recipient,
            kind=f"group_{kind}",
            payload=payload,
            dedup_key=dedup_key,
            ticket_id=ticket.id,
        )
        db.session.add(message)
        queued.append(message)
    return queued


def responsible_userids(ticket: Ticket, node: RegionNode) -> list[str]:
    """WeCom userids of who must act: the named owner member when there is one, else the node's members."""
    if ticket.owner_member_id and node.code == ticket.owner_code:
        member = db.session.get(Member, ticket.owner_member_id)
        if member is not None and member.active and member.wecom_userid:
            return [member.wecom_userid]
    members = sorted(
        (m for m in node.members if m.active and m.wecom_userid), key=lambda m: (ROLE_ORDER.get(m.role, 9), m.id)
    )
    return list(dict.fromkeys(m.wecom_userid for m in members))[:MAX_MENTIONS]


def notice_markdown(ticket: Ticket, kind: str, node: RegionNode, mentions: list[str], now: datetime) -> str:
    """The group message, WeCom markdown (quote lines, font colours, `<@userid>` mentions)."""
    title = TITLES[kind]
    if kind == "escalated":
        title = f"工单提级至{node.name}" if ticket.escalation_level else f"工单转派至{node.name}"
    urgent = ' <font color="warning">紧急</font>' if ticket.urgency == "urgent" else ""
    category = (ticket.category or "待分类") + (f"/{ticket.subcategory}" if ticket.subcategory else "")
    owner = node_by_code(ticket.owner_code)
    grid = node_by_code(ticket.grid_code)
    place = ticket.location_text or ticket.place or (grid.name if grid else "")
    lines = [f"**【{title}】{ticket.number}**{urgent}", f"> 类别：{category}"]
    if place:
        lines.append(f"> 地点：{place}" + (f"（{grid.name}）" if grid and grid.name != place else ""))
    lines.append(
        f"> 承办：{owner.name if owner else '待定'}"
        + (f"（第{ticket.escalation_level}级督办）" if ticket.escalation_level else "")
    )
    lines.append(f"> 签收时限：{local_time(ticket.sign_due_at)}　办结时限：{local_time(ticket.due_at)}")
    if kind == "overdue" and ticket.due_at is not None and ticket.due_at < now:
        hours = (now - ticket.due_at).total_seconds() / 3600
        lines.append(f'> <font color="warning">已超过办结时限{hours:.0f}小时</font>')
    names = [r.name for r in ticket.reporters if r.name]
    description = mask_text(" ".join((ticket.description or "").split()), names=names)
    if description:
        excerpt = description if len(description) <= EXCERPT_CHARS else description[:EXCERPT_CHARS] + "…"
        lines.append(f"> 内容：{excerpt}")
    ask = {
        "new": "及时签收办理",
        "escalated": "及时签收办理",
        "overdue": "尽快办结并答复",
        "reminder": "尽快签收",
    }[kind]
    who = " ".join(f"<@{userid}>" for userid in mentions)
    lines.append(f"请 {who} {ask}。" if who else f"请{node.name}{ask}。")
    return "\n".join(lines)
