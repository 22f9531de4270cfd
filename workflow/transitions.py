"""The work-order state machine: 受理 → 派单 → 签收 → 办理 → 办结 → 回访, with escalation, co-handling,
returns, merges and reopening. Each action asks workflow.policy whether the actor may take it, checks the
state, changes the ticket, writes one event (who, through which channel, when, from, to, note) and queues
the messages; it never commits or sends (workflow.service does, for the API and the console)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from models import (
    OPEN_STATUSES,
    STATUS_LABELS,
    Outbox,
    RegionNode,
    Resident,
    Ticket,
    TicketHandler,
    TicketStatus,
    add_event,
    db,
    node_by_code,
    ticket_by_number,
)
from models.region import TIER_RANK
from workflow import replies
from workflow.duplicates import SplitRefused, is_split_pair, record_merge, split_reporter
from workflow.group_notices import notify_groups
from workflow.notify import notify_reporters
from workflow.policy import ActionRefused, Actor, check, check_merge_target
from workflow.tickets import add_reporter, set_deadlines, sla_table

S = TicketStatus


__all__ = ["ACTIONS", "ActionRefused", "apply_action", "merge_into", "reopen_ticket", "resume"]


@dataclass
class Action:
    ticket: Ticket
    actor: str | Actor
    now: datetime
    note: str | None
    params: dict
    outbox: list[Outbox] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    notify: tuple[str, str | None] | None = None  # (update kind, node name) for the reporters
    groups: list[tuple[str, str]] = field(default_factory=list)  # (notice kind, node code)


ACTIONS: dict[str, Callable[[Action], None]] = {}


def action(name: str, *allowed: str):
    def register(func: Callable[[Action], None]) -> Callable[[Action], None]:
        def guarded(act: Action) -> None:
            if allowed and act.ticket.status not in allowed:
                label = replies_status(act.ticket.status)
                raise ActionRefused(409, f"工单当前状态为“{label}”，不能执行“{name}”")
            func(act)

        ACTIONS[name] = guarded
        return guarded

    return register


def replies_status(status: str) -> str:
    return STATUS_LABELS.get(status, status)


# Actions that need the authority of another: undoing a join (split) is the merge's own authority.
AUTHORITY_OF = {"split": "merge"}


def _label(actor: str | Actor) -> str:
    return actor.label if isinstance(actor, Actor) else actor


def apply_action(
    ticket: Ticket,
    name: str,
    actor: str | Actor,
    now: datetime,
    note: str | None = None,
    **params,
) -> list[Outbox]:
    """Run one action; returns the Outbox rows it queued. Raises ActionRefused and then changes nothing
    (the caller rolls back). `actor` is an Actor (checked by workflow.policy) or "system:…" (the sweep)."""
    handler = ACTIONS.get(name)
    if handler is None:
        raise ActionRefused(400, f"unknown action {name!r}; one of {', '.join(sorted(ACTIONS))}")
    check(actor, AUTHORITY_OF.get(name, name), ticket, params)
    label = _label(actor)
    act = Action(ticket, actor, now, (note or "").strip() or None, params)
    from_status = ticket.status
    handler(act)
    if isinstance(actor, Actor):
        act.data["channel"] = actor.channel
    event = add_event(ticket, name, label, act.note, from_status=from_status, to_status=ticket.status, **act.data)
    event.created_at = now
    db.session.flush()
    if act.notify is not None:
        kind, node_name = act.notify
        text = replies.update_text(kind, ticket, node_name, act.note)
        act.outbox += notify_reporters(ticket, kind, text, now, step=event.id)
    act.outbox += _group_notices(ticket, act.groups, now)
    db.session.flush()  # callers read the outbox ids to enqueue after their commit
    return act.outbox


def _group_notices(ticket: Ticket, notices: list[tuple[str, str]], now: datetime) -> list[Outbox]:
    if not notices:
        return []
    queued = []
    for kind, node_code in notices:
        queued += notify_groups(ticket, kind, now, node_code=node_code)
    return queued


def _parent(code: str | None) -> RegionNode | None:
    node = node_by_code(code)
    parent = node.parent if node is not None else None
    while parent is not None and parent.retired_at is not None:  # climb past tiers a re-drawn map retired
        parent = parent.parent
    return parent


def _node_name(code: str | None) -> str | None:
    node = node_by_code(code)
    return node.name if node else None


def _move_to(act: Action, node: RegionNode, *, climb: bool) -> None:
    ticket = act.ticket
    act.data["from_owner"] = ticket.owner_code
    ticket.owner_code = node.code
    ticket.owner_member_id = None
    ticket.status = S.ASSIGNED
    ticket.signed_at = None
    if climb:
        ticket.escalation_level += 1
    set_deadlines(ticket, act.now)
    act.data["to_owner"] = node.code


@action("sign", S.ASSIGNED, S.SIGNED, S.PROCESSING)
def sign(act: Action) -> None:
    ticket, node_code = act.ticket, act.params.get("node")
    if node_code and node_code != ticket.owner_code:
        handler = _handler(ticket, node_code)
        if handler.status != "pending":
            raise ActionRefused(409, "该协办单位已签收或已退回")
        handler.status, handler.signed_at = "signed", act.now
        act.data.update(node=node_code, on_time=act.now <= (handler.sign_due_at or act.now))
        return
    if ticket.status != S.ASSIGNED:
        raise ActionRefused(409, "工单已签收")
    ticket.status = S.SIGNED
    ticket.signed_at = act.now
    act.data["on_time"] = ticket.sign_due_at is None or act.now <= ticket.sign_due_at
    act.notify = ("sign", _node_name(ticket.owner_code))


@action("start", S.SIGNED)
def start(act: Action) -> None:
    act.ticket.status = S.PROCESSING


def _check_closable(ticket: Ticket) -> None:
    """Category rules name the tier that may close a ticket: a lower owner must escalate first."""
    if ticket.closable_tier:
        owner = node_by_code(ticket.owner_code)
        if owner is not None and TIER_RANK.get(owner.tier, 9) > TIER_RANK[ticket.closable_tier]:
            label = TIER_LABELS.get(ticket.closable_tier, ticket.closable_tier)
            raise ActionRefused(409, f"此类事项须由{label}级办结，请提级")


TIER_LABELS = {"county": "县", "town": "乡镇（街道）", "community": "社区（村）", "village": "村", "grid": "网格"}


@action("resolve", S.SIGNED, S.PROCESSING)
def resolve(act: Action) -> None:
    ticket = act.ticket
    if not act.note:
        raise ActionRefused(400, "办结需要填写答复居民的说明（note）")
    _check_closable(ticket)
    ticket.status = S.RESOLVED
    ticket.resolved_at = act.now
    ticket.rating_asked_at = act.now
    ticket.first_response_at = ticket.first_response_at or act.now
    act.notify = ("resolve", None)


@action("assign", *OPEN_STATUSES)
def assign(act: Action) -> None:
    node = node_by_code(act.params.get("node") if isinstance(act.params.get("node"), str) else None)
    if node is None:
        raise ActionRefused(400, "assign 需要有效的 node（区域编码）")
    if node.retired_at is not None:
        raise ActionRefused(400, "该单位已在网格调整中撤销，不能再派单")
    _move_to(act, node, climb=False)
    member_id = act.params.get("member")
    if member_id is not None:
        member = next((m for m in node.members if str(m.id) == str(member_id) or m.wecom_userid == member_id), None)
        if member is None:
            raise ActionRefused(400, f"{node.name}没有该成员")
        act.ticket.owner_member_id = member.id
        act.data["member"] = member.id
    act.notify = ("assigned", node.name)
    act.groups.append(("escalated", node.code))


@action("escalate", S.ASSIGNED, S.SIGNED, S.PROCESSING)
def escalate(act: Action) -> None:
    parent = _parent(act.ticket.owner_code)
    if parent is None:
        raise ActionRefused(409, "工单已在最高一级，不能再提级")
    _move_to(act, parent, climb=True)
    act.notify = ("escalate", parent.name)
    act.groups.append(("escalated", parent.code))


@action("summon", *OPEN_STATUSES)
def summon(act: Action) -> None:
    """吹哨: departments/nodes join as 主办 (lead) or 协办 (co), each with its own sign clock."""
    specs = act.params.get("handlers") or []
    if not isinstance(specs, list) or not specs:
        raise ActionRefused(400, "summon 需要 handlers: [{node, role: lead|co}]")
    rule = sla_table().rule_for(act.ticket.urgency, act.ticket.subcategory)
    leads = [s for s in specs if isinstance(s, dict) and s.get("role") == "lead"]
    if len(leads) > 1 or any(h.role == "lead" for h in act.ticket.handlers) and leads:
        raise ActionRefused(409, "只能有一个主办单位")
    summoned = []
    for spec in specs:
        node = node_by_code(spec.get("node") if isinstance(spec, dict) else None)
        if node is None or spec.get("role", "co") not in ("lead", "co"):
            raise ActionRefused(400, f"无效的协办单位：{spec}")
        if any(h.node_code == node.code for h in act.ticket.handlers):
            raise ActionRefused(409, f"{node.name}已在协办名单中")
        handler = TicketHandler(
            ticket=act.ticket, node_code=node.code, role=spec.get("role", "co"), sign_due_at=rule.sign.after(act.now)
        )
        handler.created_at = act.now
        db.session.add(handler)
        summoned.append({"node": node.code, "role": handler.role})
        act.groups.append(("escalated", node.code))
    act.data["handlers"] = summoned


@action("return", S.ASSIGNED, S.SIGNED, S.PROCESSING)
def return_ticket(act: Action) -> None:
    """退单: not ours. It goes to the tier above for re-dispatch, never into a void."""
    if not act.note:
        raise ActionRefused(400, "退单需要说明理由（note）")
    node_code = act.params.get("node")
    if node_code and node_code != act.ticket.owner_code:
        handler = _handler(act.ticket, node_code)
        handler.status = "returned"
        act.data["node"] = node_code
        return
    parent = _parent(act.ticket.owner_code)
    if parent is None:
        raise ActionRefused(409, "县级受理中心不能退单，请改派")
    _move_to(act, parent, climb=False)
    act.notify = ("return", parent.name)
    act.groups.append(("escalated", parent.code))


@action("request_info", S.ASSIGNED, S.SIGNED, S.PROCESSING)
def request_info(act: Action) -> None:
    """Ask the resident; the clocks pause until they answer (handlers.intake resumes it)."""
    if not act.note:
        raise ActionRefused(400, "请在 note 中写明需要居民补充的内容")
    ticket = act.ticket
    ticket.fields = {**(ticket.fields or {}), "paused_from": ticket.status}
    ticket.status = S.WAITING
    ticket.paused_at = act.now
    ticket.first_response_at = ticket.first_response_at or act.now
    for reporter in ticket.reporters:
        if reporter.channel == "mp" and reporter.external_id and reporter.withdrawn_at is None:
            resident = db.session.execute(
                db.select(Resident).filter_by(openid=reporter.external_id)
            ).scalar_one_or_none()
            if resident is not None:
                resident.pending_ticket_id, resident.pending_field = ticket.id, "info"
                resident.pending_until = sla_table().rating_window.after(act.now)
    act.notify = ("request_info", None)


def resume(ticket: Ticket, now: datetime) -> None:
    """The resident answered: clocks run again, shifted by the time spent waiting."""
    if ticket.status != S.WAITING:
        return
    paused = now - (ticket.paused_at or now)
    for column in ("sign_due_at", "due_at", "respond_due_at"):
        if getattr(ticket, column) is not None:
            setattr(ticket, column, getattr(ticket, column) + paused)
    fields = dict(ticket.fields or {})
    ticket.status = fields.pop("paused_from", S.PROCESSING)
    ticket.fields = fields
    ticket.paused_at = None


@action("merge", *OPEN_STATUSES)
def merge(act: Action) -> None:
    ref = act.params.get("into")
    if isinstance(ref, bool) or not isinstance(ref, (int, str)) or (isinstance(ref, int) and not 0 < ref < 2**31):
        raise ActionRefused(400, "merge 需要另一张工单（into: 工单号或 id）")
    target = db.session.get(Ticket, ref) if isinstance(ref, int) else ticket_by_number(ref[:32])
    if target is None or target.id == act.ticket.id:
        raise ActionRefused(400, "merge 需要另一张工单（into: 工单号或 id）")
    check_merge_target(act.actor, target)
    if target.status not in OPEN_STATUSES:
        raise ActionRefused(409, "目标工单已不在办理中")
    if is_split_pair(act.ticket, target):
        raise ActionRefused(409, "这两张工单已拆分为不同事项，不再合并")
    merge_into(act.ticket, target, act.now, act.actor.label if isinstance(act.actor, Actor) else act.actor)
    act.data["into"] = target.number
    act.notify = ("merge", target.number)


def merge_into(source: Ticket, target: Ticket, now: datetime, actor: str) -> None:
    """Every reporter of `source` becomes a reporter of `target` and hears its updates from now on."""
    known = {(r.channel, r.external_id) for r in target.reporters}
    copies = []
    for reporter in source.reporters:
        if reporter.withdrawn_at is None and (reporter.channel, reporter.external_id) not in known:
            copy = add_reporter(target, channel=reporter.channel, external_id=reporter.external_id, now=now)
            copy.name, copy.phone, copy.id_card = reporter.name, reporter.phone, reporter.id_card
            known.add((reporter.channel, reporter.external_id))
            copies.append(copy)
    record_merge(target, source, copies, now)  # what a split takes back
    source.status = S.CLOSED
    source.closed_at = now
    source.merged_into_id = target.id
    add_event(target, "merged_from", actor, source=source.number).created_at = now


@action("split", *OPEN_STATUSES, S.RESOLVED, S.CLOSED)
def split(act: Action) -> None:
    """Undo a join: the reporter (`reporter`: their id on this ticket) gets their own ticket back, with their
    text, contacts, attachments and events; its deadlines run from when they reported."""
    ref = act.params.get("reporter")
    reporter = next((r for r in act.ticket.reporters if str(r.id) == str(ref)), None) if ref is not None else None
    if reporter is None:
        raise ActionRefused(400, "split 需要本工单的一位反映人（reporter: 反映人编号）")
    try:
        parted = split_reporter(act.ticket, reporter, act.now, _label(act.actor))
    except SplitRefused as refused:
        raise ActionRefused(409, refused.reason) from None
    act.data.update(reporter=reporter.id, split_to=parted.ticket.number)
    text = replies.split_text(parted.ticket, _node_name(parted.ticket.owner_code))
    act.outbox += notify_reporters(parted.ticket, "split", text, act.now, step=parted.step)
    act.outbox += parted.outbox


@action("reopen", S.RESOLVED, S.CLOSED)
def reopen(act: Action) -> None:
    reopen_ticket(act.ticket, act.now)
    act.notify = ("reopen", None)


def reopen_ticket(ticket: Ticket, now: datetime) -> None:
    """Back to the same owner, already signed, with the shorter reopen limit."""
    ticket.status = S.PROCESSING
    ticket.reopen_count += 1
    ticket.resolved_at = ticket.closed_at = None
    ticket.rating_asked_at = None
    ticket.step_started_at = now
    ticket.reminded_at = None
    ticket.due_at = sla_table().reopen_resolve.after(now)


@action("close", S.RESOLVED, *OPEN_STATUSES)
def close(act: Action) -> None:
    if act.ticket.status != S.RESOLVED:
        if not act.note:
            raise ActionRefused(400, "未办结的工单结案需要说明理由（note）")
        _check_closable(act.ticket)  # closing unresolved is closing too: the same tier rule
    act.ticket.status = S.CLOSED
    act.ticket.closed_at = act.now
    act.notify = ("close", None)


def _handler(ticket: Ticket, node_code: str) -> TicketHandler:
    handler = next((h for h in ticket.handlers if h.node_code == node_code), None)
    if handler is None:
        raise ActionRefused(409, "该单位不是本工单的协办单位")
    return handler
