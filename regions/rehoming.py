"""Open tickets on a retired or moved node find their new home after a region import.

Each one is re-routed by its place (the name residents gave, resolved against the new tree), else by its
coordinates, else to the nearest still-active node above its old one; a timeline event says why, and the
new owner's group is told (Outbox rows in the import's transaction; the caller enqueues them after commit).
"""

from __future__ import annotations

from datetime import datetime

from demand import Gazetteer
from models import OPEN_STATUSES, Outbox, RegionNode, Ticket, add_event, db, region_tree
from workflow.group_notices import notify_groups
from workflow.rules.geo import locate_grid
from workflow.tickets import grid_nodes


def rehome_tickets(codes: set[str], now: datetime, outbox: list[Outbox] | None = None) -> list[str]:
    """Re-route the open tickets whose grid or owner is one of `codes`; one line per ticket that moved.
    The group notices for the new owners are appended to `outbox`."""
    if not codes:
        return []
    tickets = (
        db.session.execute(
            db.select(Ticket)
            .filter(
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.merged_into_id.is_(None),
                db.or_(Ticket.grid_code.in_(codes), Ticket.owner_code.in_(codes)),
            )
            .order_by(Ticket.id)
        )
        .scalars()
        .all()
    )
    if not tickets:
        return []
    nodes = {n.code: n for n in db.session.execute(db.select(RegionNode)).scalars()}
    gazetteer = Gazetteer.from_region_tree(region_tree())
    grids = [g for g in grid_nodes() if nodes[g["code"]].retired_at is None]
    moved = []
    for ticket in tickets:
        line = _rehome(ticket, nodes, gazetteer, grids, now)
        if line:
            moved.append(line)
            if outbox is not None and ticket.owner_code:
                outbox.extend(notify_groups(ticket, "escalated", now, node_code=ticket.owner_code))
    return moved


def _active_above(node: RegionNode | None) -> RegionNode | None:
    """The node itself when active, else its nearest active ancestor."""
    while node is not None and node.retired_at is not None:
        node = node.parent
    return node


def _rehome(ticket: Ticket, nodes: dict, gazetteer: Gazetteer, grids: list[dict], now: datetime) -> str | None:
    old_grid, old_owner = ticket.grid_code, ticket.owner_code
    grid, how = None, ""
    for text in (ticket.place, ticket.location_text):
        match = gazetteer.resolve(text) if text else None
        if match is not None and match.grid:
            grid, how = match.grid, f"按地点「{text}」"
            break
    if grid is None and ticket.lat is not None and ticket.lng is not None:
        grid = locate_grid(grids, ticket.lat, ticket.lng)
        how = "按位置坐标" if grid else ""
    old_grid_node = nodes.get(old_grid) if old_grid else None
    if grid is None and old_grid_node is not None and old_grid_node.retired_at is None:
        grid, how = old_grid, "网格仍在"  # a moved grid keeps its tickets when nothing says otherwise
    owner_node = nodes.get(old_owner) if old_owner else None
    if grid is not None and (owner_node is None or owner_node.retired_at is not None or old_owner == old_grid):
        owner = grid
    elif owner_node is not None and owner_node.retired_at is None and _above(owner_node, nodes.get(grid)):
        owner = old_owner  # escalated to a node still above its grid: it stays there
    else:
        fallback = _active_above(owner_node) or _active_above(old_grid_node)
        owner = grid or (fallback.code if fallback else None)
        if grid is None:
            how = "无匹配网格，转上级"
    if (grid, owner) == (old_grid, old_owner):
        return None
    why = _reason(nodes, old_grid, old_owner)
    ticket.grid_code, ticket.owner_code = grid, owner
    ticket.owner_member_id = None
    if owner != old_owner:
        ticket.escalation_level = 0 if owner == grid else ticket.escalation_level
    add_event(
        ticket,
        "rerouted",
        "system",
        f"网格调整：{why}，{how}转至 {_name(nodes, owner)}",
        from_grid=old_grid,
        from_owner=old_owner,
        grid=grid,
        owner=owner,
        reason="region_import",
    ).created_at = now
    return f"{ticket.number}: {old_owner or '-'} -> {owner or '-'} ({how or why})"


def _above(node: RegionNode, grid: RegionNode | None) -> bool:
    return grid is not None and grid.path.startswith(node.path) and grid is not node


def _name(nodes: dict, code: str | None) -> str:
    node = nodes.get(code) if code else None
    return node.name if node else "县级受理"


def _reason(nodes: dict, old_grid: str | None, old_owner: str | None) -> str:
    for code in (old_owner, old_grid):
        node = nodes.get(code) if code else None
        if node is not None and node.retired_at is not None:
            return f"原承办单位「{node.name}」已撤销"
    return "所在网格的上级调整"
