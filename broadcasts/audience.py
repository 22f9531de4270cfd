"""Who a broadcast reaches: region subtrees, roles, resident tags; counted with aggregate queries only.

Nothing here loads an audience into memory: counts are single aggregate queries and the planner
(handlers/broadcast_planning.py) pages through ids with these same filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, true

from config import LOCAL_TZ
from models import Member, RegionNode, Resident, ResidentTag, db
from models.region import MEMBER_ROLES, TIER_RANK

RESIDENT = "resident"
# The grid team (DESIGN.md): grid officer, party-group leader, village cadre, police.
GRID_TEAM_ROLES = ("grid_officer", "party_leader", "cadre", "police")
ROLE_ALIASES: dict[str, frozenset[str]] = {
    RESIDENT: frozenset({RESIDENT}),
    "residents": frozenset({RESIDENT}),
    "officers": frozenset(MEMBER_ROLES),
    "grid_teams": frozenset(GRID_TEAM_ROLES),
    "all": frozenset({RESIDENT, *MEMBER_ROLES}),
    **{role: frozenset({role}) for role in MEMBER_ROLES},
}


class AudienceError(ValueError):
    """The audience names something unknown (400) or outside the caller's region (403)."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status = status
        self.error = error


def expand_roles(names: Iterable[str]) -> frozenset[str]:
    roles: set[str] = set()
    for name in names:
        if name not in ROLE_ALIASES:
            raise AudienceError(400, "bad_request", f"unknown role {name!r}; use one of {', '.join(ROLE_ALIASES)}")
        roles |= ROLE_ALIASES[name]
    return frozenset(roles)


def month_of(moment: datetime) -> str:
    """The natural month WeChat counts mass sends in (Beijing time)."""
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m")


def resolve_regions(codes: Iterable[str], caller_region: str | None) -> list[RegionNode]:
    """The audience's top nodes: known, inside the caller's subtree, nested ones folded into their ancestor."""
    codes = [str(code) for code in codes]
    if not codes:
        raise AudienceError(400, "bad_request", "audience.regions must name at least one region code")
    nodes = {n.code: n for n in db.session.execute(select(RegionNode).filter(RegionNode.code.in_(codes))).scalars()}
    unknown = [code for code in codes if code not in nodes]
    if unknown:
        raise AudienceError(400, "bad_request", f"unknown region code(s): {', '.join(unknown)}")
    retired = [code for code in codes if nodes[code].retired_at is not None]
    if retired:  # a re-drawn map retired them: they keep their history but take no new notices
        raise AudienceError(400, "bad_request", f"retired region code(s): {', '.join(retired)}")
    caller = db.session.execute(select(RegionNode).filter_by(code=caller_region)).scalar_one_or_none()
    outside = [code for code in codes if caller is None or not nodes[code].path.startswith(caller.path)]
    if outside:
        raise AudienceError(403, "forbidden", f"region(s) outside your area: {', '.join(outside)}")
    kept: list[RegionNode] = []
    for node in sorted(nodes.values(), key=lambda n: n.path):
        if not any(node.path.startswith(parent.path) for parent in kept):
            kept.append(node)
    return kept


def nodes_by_codes(codes: Iterable[str]) -> list[RegionNode]:
    codes = list(codes)
    nodes = db.session.execute(select(RegionNode).filter(RegionNode.code.in_(codes))).scalars().all()
    return sorted(nodes, key=lambda n: n.path)


def subtree_codes_query(paths: Iterable[str]):
    """The codes of every node under these paths, as a subquery (no list of codes in Python)."""
    return select(RegionNode.code).filter(or_(*[RegionNode.path.startswith(path) for path in paths]))


def covers_whole_account(nodes: Iterable[RegionNode], tags: Iterable[str] = ()) -> bool:
    """An audience of the whole county's residents, untagged, is the whole official account: every follower,
    placed or not (the region tree has one root, the county the account serves)."""
    return not tuple(tags) and any(node.parent_id is None for node in nodes)


# The planner's pseudo node for a whole-account audience: every resident, in id order, wherever they live.
EVERYWHERE = "*"


def without_known_place():
    """Residents whose place we do not know (no grid, or one the region tree no longer has)."""
    return or_(Resident.grid_code.is_(None), Resident.grid_code.not_in(select(RegionNode.code)))


@dataclass(frozen=True)
class ResidentAudience:
    """Residents whose grid lies under `paths` (and, with `tags`, who carry one of them); with `whole_account`,
    every resident, those with no known place included."""

    paths: tuple[str, ...]
    tags: tuple[str, ...] = ()
    month: str = ""
    limit: int = 4
    whole_account: bool = False

    def _tagged(self):
        if not self.tags:
            return true()
        return Resident.id.in_(select(ResidentTag.resident_id).filter(ResidentTag.tag.in_(self.tags)))

    def in_area(self):
        if self.whole_account:
            return self._tagged()
        return and_(Resident.grid_code.in_(subtree_codes_query(self.paths)), self._tagged())

    def node_codes(self) -> list[str]:
        """Every node under the audience's paths, in a stable order (the planner's outer keyset)."""
        if self.whole_account:
            return [EVERYWHERE]
        return list(db.session.execute(subtree_codes_query(self.paths).order_by(RegionNode.code)).scalars())

    def sendable_at(self, code: str):
        """Sendable residents placed at exactly this node: one (grid_code, id) index range."""
        return and_(
            true() if code == EVERYWHERE else Resident.grid_code == code,
            self._tagged(),
            Resident.subscribed.is_(True),
            Resident.notices.is_(True),
            ~self.over_limit(),
        )

    def reachable(self):
        """Subscribed and taking notices: the people a mass send may go to."""
        return and_(self.in_area(), Resident.subscribed.is_(True), Resident.notices.is_(True))

    def over_limit(self):
        """Already reached by the month's allowance of mass sends (reserved ones included)."""
        return and_(Resident.mass_month == self.month, Resident.mass_count >= self.limit)

    def sendable(self):
        return and_(self.reachable(), ~self.over_limit())

    def counts(self) -> dict[str, int]:
        subscribed = Resident.subscribed.is_(True)
        notices = Resident.notices.is_(True)
        row = db.session.execute(
            select(
                func.count(),
                func.sum(case((~subscribed, 1), else_=0)),
                func.sum(case((and_(subscribed, ~notices), 1), else_=0)),
                func.sum(case((and_(subscribed, notices, self.over_limit()), 1), else_=0)),
            ).filter(self.in_area())
        ).one()
        in_area, unsubscribed, opted_out, over = (int(value or 0) for value in row)
        # Followers we cannot place: reached by a whole-account notice, by no regional one.
        unplaced = db.session.execute(
            select(func.count()).filter(subscribed, notices, self._tagged(), without_known_place())
        ).scalar()
        return {
            "in_area": in_area,
            "unsubscribed": unsubscribed,
            "opted_out": opted_out,
            "reachable": in_area - unsubscribed - opted_out,
            "over_limit": over,
            "no_known_place": int(unplaced or 0),
        }


@dataclass(frozen=True)
class MemberAudience:
    """Members (officers, grid teams, staff) at nodes under `paths` with one of `roles`."""

    paths: tuple[str, ...]
    roles: tuple[str, ...]

    def _members(self):
        return (
            select(Member)
            .join(RegionNode, Member.node_id == RegionNode.id)
            .filter(or_(*[RegionNode.path.startswith(path) for path in self.paths]), Member.role.in_(self.roles))
        )

    def userid_page_query(self, after: str | None, limit: int):
        """Distinct WeCom userids of active members, in order, after the keyset cursor."""
        query = (
            select(Member.wecom_userid)
            .join(RegionNode, Member.node_id == RegionNode.id)
            .filter(
                or_(*[RegionNode.path.startswith(path) for path in self.paths]),
                Member.role.in_(self.roles),
                Member.active.is_(True),
                RegionNode.retired_at.is_(None),
                Member.wecom_userid.is_not(None),
                Member.wecom_userid != "",
            )
            .distinct()
            .order_by(Member.wecom_userid)
            .limit(limit)
        )
        return query.filter(Member.wecom_userid > after) if after is not None else query

    def counts(self) -> dict[str, int]:
        members = self._members().subquery()
        has_userid = and_(members.c.wecom_userid.is_not(None), members.c.wecom_userid != "")
        active_userids = select(members.c.wecom_userid).filter(members.c.active.is_(True), has_userid)
        recipients = db.session.execute(
            select(func.count(func.distinct(members.c.wecom_userid))).filter(members.c.active.is_(True), has_userid)
        ).scalar()
        no_userid = db.session.execute(
            select(func.count()).select_from(members).filter(members.c.active.is_(True), ~has_userid)
        ).scalar()
        # Inactive here but active at another node of the audience: still reached, so not skipped.
        inactive = db.session.execute(
            select(func.count())
            .select_from(members)
            .filter(members.c.active.is_(False), or_(~has_userid, members.c.wecom_userid.not_in(active_userids)))
        ).scalar()
        return {
            "recipients": int(recipients or 0),
            "inactive": int(inactive or 0),
            "no_wecom_userid": int(no_userid or 0),
        }


def group_nodes(paths: Iterable[str]) -> list[RegionNode]:
    """Nodes under `paths` whose tier group has a robot, top tier first (county → town → … → grid)."""
    nodes = db.session.execute(
        select(RegionNode).filter(
            or_(*[RegionNode.path.startswith(path) for path in paths]), RegionNode.retired_at.is_(None)
        )
    ).scalars()
    with_robot = [node for node in nodes if isinstance(node.group, dict) and node.group.get("robot_key")]
    return sorted(with_robot, key=lambda node: (TIER_RANK.get(node.tier, 9), node.path))
