"""Messages the demand gate answered without a ticket (demand/gate.py): counted by kind and listed, so
staff see what residents sent that was not a demand (and can catch a real demand the gate let go)."""

from __future__ import annotations

from datetime import datetime

from models import InboundMessage, Resident, User, db, root_node, subtree_codes
from ops.privacy import mask_text
from workflow.queue import local

KIND_LABELS = {
    "placeholder": "微信占位消息（表情包等）",
    "greeting": "问候",
    "test": "测试",
    "thanks": "致谢/确认",
    "link": "仅链接",
    "emoji": "仅表情或符号",
}
LIST_LIMIT = 200


def _visible(user: User):
    """County-level staff see every one; others those of residents placed in their subtree."""
    root = root_node()
    if root is not None and user.region_code == root.code:
        return db.true()
    codes = subtree_codes(user.region_code)
    placed = db.select(Resident.openid).filter(Resident.grid_code.in_(codes))
    return InboundMessage.sender.in_(placed)


def non_demand_report(user: User, start: datetime, end: datetime) -> dict:
    """Counts by kind and the latest messages of [start, end), masked for roles without personal data."""
    period = (
        InboundMessage.gate.is_not(None),
        InboundMessage.received_at >= start,
        InboundMessage.received_at < end,
        _visible(user),
    )
    counts = dict(
        db.session.execute(
            db.select(InboundMessage.gate, db.func.count()).filter(*period).group_by(InboundMessage.gate)
        ).all()
    )
    rows = db.session.execute(
        db.select(InboundMessage)
        .filter(*period)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(LIST_LIMIT)
    ).scalars()
    unmasked = user.sees_personal_data
    latest = [
        {
            "at": local(row.received_at),
            "kind": KIND_LABELS.get(row.gate or "", row.gate),
            "text": (row.content or "") if unmasked else mask_text(row.content or ""),
            "sender": row.sender if unmasked else (row.sender[:4] + "…"),
            "type": row.msg_type,
        }
        for row in rows
    ]
    return {
        "counts": [{"kind": kind, "label": label, "count": counts.get(kind, 0)} for kind, label in KIND_LABELS.items()],
        "total": sum(counts.values()),
        "latest": latest,
    }
