"""响应率 / 解决率 / 满意率 per node of a subtree, for a period — the numbers staff are judged by.

响应率 = signed in time / received; 解决率 = resolved / received; 满意率 = (satisfied + basic) / rated.
A ticket counts for the node whose subtree holds its grid (else its owner).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from models import RegionNode, Ticket, TicketEvent, TicketStatus, db, node_by_code
from workflow.tickets import REVIEW_FIELD

RESOLVED = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
OPEN = (TicketStatus.ASSIGNED, TicketStatus.SIGNED, TicketStatus.PROCESSING, TicketStatus.WAITING)


def region_stats(code: str, start: datetime, end: datetime, now: datetime) -> dict | None:
    """Totals for the node and one row per child node, for tickets received in [start, end)."""
    root = node_by_code(code)
    if root is None:
        return None
    nodes = db.session.execute(db.select(RegionNode).filter(RegionNode.path.startswith(root.path))).scalars().all()
    path_of = {node.code: node.path for node in nodes}
    tickets = (
        db.session.execute(
            db.select(Ticket).filter(
                Ticket.created_at >= start,
                Ticket.created_at < end,
                Ticket.merged_into_id.is_(None),
                db.or_(Ticket.grid_code.in_(path_of), Ticket.owner_code.in_(path_of)),
            )
        )
        .scalars()
        .all()
    )
    on_time = _signed_on_time({t.id for t in tickets})
    rows: dict[str, list] = {child.code: [] for child in root.children}
    for ticket in tickets:
        path = path_of.get(ticket.grid_code) or path_of.get(ticket.owner_code) or ""
        child = next((c.code for c in root.children if path.startswith(c.path)), None)
        if child is not None:
            rows[child].append(ticket)
    children = [
        {"code": c.code, "name": c.name, "tier": c.tier, **_figures(rows[c.code], on_time, now)} for c in root.children
    ]
    children.sort(key=lambda row: (-(row["response_rate"] or 0), -(row["resolution_rate"] or 0), row["code"]))
    return {
        "region": {"code": root.code, "name": root.name, "tier": root.tier},
        "from": start.isoformat(),
        "to": end.isoformat(),
        "total": _figures(tickets, on_time, now),
        "children": children,
    }


def _signed_on_time(ticket_ids: set[int]) -> set[int]:
    """Tickets whose first sign by the owner was within its limit (the sign event records it)."""
    first: dict[int, bool] = {}
    ids = sorted(ticket_ids)
    for start in range(0, len(ids), 900):
        events = db.session.execute(
            db.select(TicketEvent.ticket_id, TicketEvent.data)
            .filter(TicketEvent.kind == "sign", TicketEvent.ticket_id.in_(ids[start : start + 900]))
            .order_by(TicketEvent.id)
        ).all()
        for ticket_id, data in events:
            if "node" not in (data or {}) and ticket_id not in first:
                first[ticket_id] = bool((data or {}).get("on_time"))
    return {ticket_id for ticket_id, ok in first.items() if ok}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _figures(tickets: Sequence[Ticket], on_time: set[int], now: datetime) -> dict:
    received = len(tickets)
    resolved = [t for t in tickets if t.status in RESOLVED and t.resolved_at is not None]
    rated = [t for t in tickets if t.satisfaction]
    satisfied = [t for t in rated if t.satisfaction in ("satisfied", "basic")]
    signed_in_time = sum(1 for t in tickets if t.id in on_time)
    overdue = sum(1 for t in tickets if t.status in OPEN and t.due_at is not None and t.due_at < now)
    sign_minutes = [(t.signed_at - t.created_at).total_seconds() / 60 for t in tickets if t.signed_at]
    resolve_hours = [(t.resolved_at - t.created_at).total_seconds() / 3600 for t in resolved]
    abstained = sum(1 for t in tickets if (t.fields or {}).get(REVIEW_FIELD))
    return {
        "received": received,
        "signed_on_time": signed_in_time,
        "resolved": len(resolved),
        "overdue": overdue,
        "escalated": sum(1 for t in tickets if t.escalation_level > 0),
        # Tickets whose category the parser abstained on (sent to 待分类), whether reviewed since or not.
        "abstained": abstained,
        "abstain_rate": _rate(abstained, received),
        "rated": len(rated),
        "satisfied": len(satisfied),
        "response_rate": _rate(signed_in_time, received),
        "resolution_rate": _rate(len(resolved), received),
        "satisfaction_rate": _rate(len(satisfied), len(rated)),
        "median_minutes_to_sign": round(statistics.median(sign_minutes), 1) if sign_minutes else None,
        "median_hours_to_resolve": round(statistics.median(resolve_hours), 2) if resolve_hours else None,
        "top_categories": Counter(t.category or "未分类" for t in tickets).most_common(5),
    }
