"""What staff see of the messages a ticket sent (failed, skipped, waiting for the quota), and re-sending one.

The words come from delivery.rules.explain; re-sending puts the message back to pending and hands it to a
fresh delivery job, which follows WeChat's rules again (template fallback, quota, unsubscribed).
"""

from __future__ import annotations

from datetime import datetime

from delivery.rules import RESIDENT_CHANNELS, explain
from models import Outbox, OutboxStatus, Ticket, add_event, db
from workflow.policy import ActionRefused, Actor, may

STATUS_LABELS = {
    OutboxStatus.PENDING: "待发送",
    OutboxStatus.SENT: "已发送",
    OutboxStatus.FAILED: "发送失败",
    OutboxStatus.SKIPPED: "未发送",
}
KIND_LABELS = {
    "ack": "受理回复",
    "ask": "追问",
    "supplement": "补充确认",
    "located": "定位确认",
    "attached": "附件确认",
    "update": "进展通知",
    "rating": "评价邀请",
}
CHANNEL_LABELS = {"mp": "客服消息", "mp_template": "模板消息", "wecom_app": "企业微信应用", "wecom_robot": "群机器人"}
# Staff may put these back to pending: a message that never reached the resident.
RESENDABLE = frozenset({OutboxStatus.FAILED, OutboxStatus.SKIPPED})


def delivery_problems(ticket: Ticket) -> list[dict]:
    """The ticket's messages that did not (yet) reach their recipient, newest first, in words."""
    rows = (
        db.session.execute(
            db.select(Outbox)
            .filter(
                Outbox.ticket_id == ticket.id,
                db.or_(
                    Outbox.status.in_([OutboxStatus.FAILED, OutboxStatus.SKIPPED]),
                    db.and_(Outbox.status == OutboxStatus.PENDING, Outbox.errcode.is_not(None)),
                ),
            )
            .order_by(Outbox.id.desc())
        )
        .scalars()
        .all()
    )
    return [
        {
            "id": row.id,
            "kind": KIND_LABELS.get(row.kind, row.kind),
            "channel": CHANNEL_LABELS.get(row.channel, row.channel),
            "status": str(row.status),
            "status_label": STATUS_LABELS.get(row.status, row.status),
            "reason": "居民已取消关注公众号，未发送"
            if row.status == OutboxStatus.SKIPPED
            else explain(row.errcode, row.channel, error=row.last_error or ""),
            "text": str((row.payload or {}).get("text") or "")[:200],
            "at": row.created_at,
            "attempts": row.attempts,
            "resendable": row.status in RESENDABLE,
        }
        for row in rows
    ]


def resend(actor: Actor, ticket: Ticket, outbox_id: int, now: datetime) -> Outbox:
    """Staff ask for one failed (or skipped) message to go out again. The caller commits, then enqueues.

    Raises ActionRefused: 403 when the actor may not act on the ticket, 404 for a message of another
    ticket, 409 when it is not failed or skipped."""
    # Sending again is acting on the ticket: whoever may resolve it (its owner's team or above) may.
    if not may(actor, "resolve", ticket):
        raise ActionRefused(403, "您不能处理该工单的通知")
    message = db.session.execute(
        db.select(Outbox).filter_by(id=outbox_id, ticket_id=ticket.id).with_for_update()
    ).scalar_one_or_none()
    if message is None:
        raise ActionRefused(404, "没有这条通知")
    if message.status not in RESENDABLE:
        raise ActionRefused(409, f"该通知当前为“{STATUS_LABELS.get(message.status, message.status)}”，无需重新发送")
    previous = message.status
    message.status = OutboxStatus.PENDING
    message.errcode = None
    if message.channel in RESIDENT_CHANNELS:
        message.channel = "mp"  # the customer-service message first again; the template if the window is closed
    add_event(
        ticket, "notify_resent", actor.label, outbox_id=message.id, previous=str(previous), channel=actor.channel
    ).created_at = now
    return message
