"""The console map's figures: each active grid of an area with its team and its tickets under the queue's
filters (how many, how many overdue), and the tickets whose coordinates are known.

The same filters and the same region scope as the work queue (workflow.queue), so the map and the queue
always count the same tickets. Names are masked for roles that do not see personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from models import Member, RegionNode, Ticket, User, db
from ops.privacy import mask_name
from workflow.policy import staff_actor
from workflow.queue import RUNNING, STAFF_STATUS_LABELS, QueueFilters, local, next_due_expr, queue_query
from workflow.scope import home_node, in_scope, node_names

# The most ticket points one page draws (the newest first); the figures always count them all.
MAX_POINTS = 2000
# The most grids one page lists and draws: a city's whole map (tens of thousands) is chosen area by area;
# beyond this the grids with the most overdue and open tickets are shown first.
MAX_GRIDS = 2000
MEMBER_ROLE_LABELS = {
    "grid_officer": "网格员",
    "info_officer": "信息员",
    "party_leader": "党小组长",
    "cadre": "村（社区）干部",
    "police": "民警",
    "staff": "工作人员",
    "department": "职能部门",
}


@dataclass
class GridFigures:
    code: str
    name: str
    parent_name: str
    boundary: dict | None
    lat: float | None
    lng: float | None
    tickets: int = 0
    overdue: int = 0
    team: list[dict] = field(default_factory=list)

    @property
    def state(self) -> str:
        """overdue (red) | open (amber) | clear (green): the colour on the map and in the list."""
        return "overdue" if self.overdue else "open" if self.tickets else "clear"

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "parent": self.parent_name,
            "boundary": self.boundary,
            "lat": self.lat,
            "lng": self.lng,
            "tickets": self.tickets,
            "overdue": self.overdue,
            "state": self.state,
            "team": self.team,
        }


@dataclass
class GridMap:
    area: RegionNode
    grids: list[GridFigures]
    points: list[dict]
    points_total: int
    unplaced: int  # matching tickets without a grid in this area (owned above grid level, or unlocated)
    grids_total: int = 0  # the area's active grids; more than `grids` when MAX_GRIDS cut the list

    @property
    def with_boundaries(self) -> int:
        return sum(1 for g in self.grids if g.boundary)

    @property
    def totals(self) -> tuple[int, int]:
        return sum(g.tickets for g in self.grids), sum(g.overdue for g in self.grids)


def map_area(user: User, code: str | None) -> RegionNode | None:
    """The node the map shows: the one asked for when it is active and in scope, else the user's home."""
    if code and in_scope(user, code):
        node = db.session.execute(db.select(RegionNode).filter_by(code=code)).scalar_one_or_none()
        if node is not None and node.retired_at is None:
            return node
    return home_node(user)


def grid_map(user: User, filters: QueueFilters, area: RegionNode, now: datetime) -> GridMap:
    grids = (
        db.session.execute(
            db.select(RegionNode)
            .filter(RegionNode.path.startswith(area.path), RegionNode.tier == "grid", RegionNode.retired_at.is_(None))
            .order_by(RegionNode.path)
        )
        .scalars()
        .all()
    )
    parents = node_names(g.parent.code for g in grids if g.parent is not None)
    figures = {
        g.code: GridFigures(
            g.code, g.name, parents.get(g.parent.code, "") if g.parent else "", g.boundary, g.lat, g.lng
        )
        for g in grids
    }
    _add_teams(figures, unmasked=user.sees_personal_data)
    area_codes = select_area_codes(area)
    matching = queue_query(staff_actor(user, "console"), filters, now).filter(
        db.or_(Ticket.grid_code.in_(area_codes), Ticket.owner_code.in_(area_codes))
    )
    late = db.and_(Ticket.status.in_([str(s) for s in RUNNING]), next_due_expr() < now)
    counted = matching.with_only_columns(
        Ticket.grid_code, db.func.count(), db.func.sum(db.case((late, 1), else_=0))
    ).group_by(Ticket.grid_code)
    unplaced = 0
    for grid_code, count, overdue in db.session.execute(counted).all():
        if grid_code in figures:
            figures[grid_code].tickets, figures[grid_code].overdue = int(count), int(overdue or 0)
        else:
            unplaced += int(count)
    placed = matching.filter(Ticket.lat.is_not(None), Ticket.lng.is_not(None))
    points_total = db.session.execute(db.select(db.func.count()).select_from(placed.subquery())).scalar_one()
    due = next_due_expr()
    points = [
        {
            "id": t.id,
            "number": t.number or str(t.id),
            "lat": t.lat,
            "lng": t.lng,
            "category": t.category or "未分类",
            "status": STAFF_STATUS_LABELS.get(t.status, t.status),
            "grid": t.grid_code,
            "overdue": bool(t.status in RUNNING and due_at is not None and due_at < now),
            "created": local(t.created_at),
        }
        for t, due_at in db.session.execute(placed.add_columns(due).order_by(Ticket.id.desc()).limit(MAX_POINTS)).all()
    ]
    shown = list(figures.values())
    if len(shown) > MAX_GRIDS:
        shown = sorted(shown, key=lambda f: (-f.overdue, -f.tickets, f.code))[:MAX_GRIDS]
    return GridMap(area, shown, points, points_total, unplaced, grids_total=len(figures))


def select_area_codes(area: RegionNode):
    """Every node code under the area, retired ones included (their history still counts), as a subquery."""
    return db.select(RegionNode.code).filter(RegionNode.path.startswith(area.path))


def _add_teams(figures: dict[str, GridFigures], *, unmasked: bool) -> None:
    if not figures:
        return
    members = db.session.execute(
        db.select(Member, RegionNode.code)
        .join(RegionNode, Member.node_id == RegionNode.id)
        .filter(RegionNode.code.in_(list(figures)), Member.active.is_(True))
        .order_by(Member.id)
    ).all()
    for member, code in members:
        figures[code].team.append(
            {
                "name": member.name if unmasked else mask_name(member.name),
                "role": MEMBER_ROLE_LABELS.get(member.role, member.role),
            }
        )
