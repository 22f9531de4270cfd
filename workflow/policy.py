"""The one authorization policy: who may see and do what to a work order, on every channel.

Every channel (the staff API, the console, Open311, WeCom officer commands, resident commands) asks this
module; none decides on its own. Authority comes from the ticket itself — its owner node, its grid, its
summoned co-handlers, its category — and from the actor's role and region, never from a parameter the
caller sends.

1. The actor's *relation* to the ticket is computed (`relation`): one of RELATIONS below.
2. `PERMISSIONS[(role, relation, action, channel)]` says allow or deny. That table is the single source:
   `may()` reads it, the permission-matrix test walks it, and docs/security.md prints it
   (`flask --app app security-table`, or `python -m scripts.security_table`).
3. Rules that depend on the action's arguments come after the table (`check`): an assign target inside
   the actor's area and able to see the ticket, a merge target that is the actor's too, the closable tier.

A refusal is 404 when the actor may not see the ticket (no hint that it exists), 403 when they may see it
but not do this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product

from sqlalchemy import ColumnElement

from models import RegionNode, Ticket, TicketHandler, TicketReporter, User, db, node_by_code
from models.staff import UNMASKED_ROLES
from workflow.rules.routing import TIER_RANK, RoutingRule
from workflow.tickets import routing_config


class ActionRefused(Exception):
    """The action is not allowed: `status` is 400 (bad request), 403 (not yours), 404 (not visible) or 409
    (state)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- the table -------------------------------------------------------------------------------------------

STAFF_ROLES = ("admin", "staff", "officer", "department", "viewer")  # console / API / Open311 accounts
MEMBER_ROLE = "member"  # a region member (信息员, 网格员…) writing to the WeCom app or bot
RESIDENT_ROLE = "resident"  # a resident on the official account
READ_ONLY_ROLES = frozenset({"viewer"})
# Roles that may publish policy notices (broadcasts.compose refuses the others).
PUBLISHER_ROLES = frozenset({"admin", "staff"})

# How a staff account or member stands to a ticket (first match wins, in this order).
SENSITIVE = "sensitive"  # a complaint about officials, and the actor sits below the office that handles it
OWN = "own"  # the ticket's owner is the actor's own node (e.g. their grid)
PARENT = "parent"  # the owner lies below the actor's node (a town over its grids)
CO_HANDLER = "co_handler"  # a summoned co-handler (吹哨) lies in the actor's area, the owner does not
ESCALATED = "escalated_away"  # only the ticket's grid lies in the area: it was escalated or re-assigned away
OTHER = "other_town"  # nothing of the ticket lies in the actor's area
STAFF_RELATIONS = (OWN, PARENT, CO_HANDLER, ESCALATED, OTHER, SENSITIVE)
# How a resident stands to a ticket.
SOLE_REPORTER = "sole_reporter"
JOINED_REPORTER = "joined_reporter"  # one of several reporters (their report was joined to it)
STRANGER = "stranger"
RESIDENT_RELATIONS = (SOLE_REPORTER, JOINED_REPORTER, STRANGER)
RELATION_LABELS = {
    OWN: "own node/grid",
    PARENT: "parent tier",
    CO_HANDLER: "co-handler",
    ESCALATED: "grid only (escalated away)",
    OTHER: "other town",
    SENSITIVE: "sensitive, below its office",
    SOLE_REPORTER: "sole reporter",
    JOINED_REPORTER: "joined reporter",
    STRANGER: "not a reporter",
}

WORKFLOW_ACTIONS = (
    "sign",
    "start",
    "resolve",
    "request_info",
    "return",
    "escalate",
    "assign",
    "summon",
    "merge",
    "reopen",
    "close",
)
STAFF_ACTIONS = ("view", *WORKFLOW_ACTIONS, "correct")

# Which actions each channel offers, and to whom.
CHANNELS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # channel: (roles that use it, actions it offers)
    "api": (STAFF_ROLES, ("view", *WORKFLOW_ACTIONS)),
    "console": (STAFF_ROLES, STAFF_ACTIONS),
    "open311": (STAFF_ROLES, ("view",)),
    "wecom": ((MEMBER_ROLE,), ("view", "sign", "resolve")),
    "resident": ((RESIDENT_ROLE,), ("view", "cancel")),
}

_ALL = frozenset(STAFF_ACTIONS)
# What an account that may act (every role but viewer) may do, by relation.
_ACTING = {
    OWN: _ALL,
    PARENT: _ALL,
    CO_HANDLER: frozenset({"view", "sign", "return"}),  # its own part: sign it, or hand it back
    ESCALATED: frozenset({"view"}),
    OTHER: frozenset(),
    SENSITIVE: frozenset(),
}
_VIEWER = {relation: frozenset({"view"}) & actions for relation, actions in _ACTING.items()}
_MEMBER = {
    OWN: frozenset({"view", "sign", "resolve"}),
    PARENT: frozenset({"view", "sign", "resolve"}),
    CO_HANDLER: frozenset({"view", "sign"}),
    ESCALATED: frozenset({"view"}),
    OTHER: frozenset(),
    SENSITIVE: frozenset(),
}
_RESIDENT = {
    SOLE_REPORTER: frozenset({"view", "cancel"}),
    JOINED_REPORTER: frozenset({"view", "cancel"}),  # 取消 withdraws only this resident
    STRANGER: frozenset(),
}


def _build() -> dict[tuple[str, str, str, str], bool]:
    table: dict[tuple[str, str, str, str], bool] = {}
    for channel, (roles, actions) in CHANNELS.items():
        for role in roles:
            relations: tuple[str, ...]
            if role == RESIDENT_ROLE:
                by_relation, relations = _RESIDENT, RESIDENT_RELATIONS
            elif role == MEMBER_ROLE:
                by_relation, relations = _MEMBER, STAFF_RELATIONS
            else:
                by_relation = _VIEWER if role in READ_ONLY_ROLES else _ACTING
                relations = STAFF_RELATIONS
            for relation, action in product(relations, actions):
                table[(role, relation, action, channel)] = action in by_relation[relation]
    return table


# (role, relation, action, channel) → allowed. Everything not listed is denied.
PERMISSIONS: dict[tuple[str, str, str, str], bool] = _build()


def allowed(role: str, relation: str, action: str, channel: str) -> bool:
    return PERMISSIONS.get((role, relation, action, channel), False)


# --- actors ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    code: str
    path: str
    tier: str


@dataclass(frozen=True)
class Actor:
    """Who is acting, through which channel. `label` is what the timeline and audit trail record:
    `staff:<username>` for every staff account whatever the channel (the channel is recorded beside it),
    `officer:<wecom userid>`, `resident:<openid>`, `system:<job>`."""

    kind: str  # staff | officer | resident | system
    name: str
    role: str
    channel: str
    homes: tuple[Home, ...] = ()
    user_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def rank(self) -> int:
        """The highest tier the actor sits at (0 = county); 9 when they have no node."""
        return min((TIER_RANK.get(h.tier, 9) for h in self.homes), default=9)

    def covers(self, code: str | None) -> bool:
        """True when node `code` lies in one of the actor's subtrees."""
        if not code or not self.homes:
            return False
        node = node_by_code(code)
        return node is not None and any(node.path.startswith(h.path) for h in self.homes)


def _home(node: RegionNode | None) -> tuple[Home, ...]:
    return (Home(node.code, node.path, node.tier),) if node is not None else ()


def staff_actor(user: User, channel: str) -> Actor:
    return Actor("staff", user.username, user.role, channel, _home(node_by_code(user.region_code)), user.id)


def officer_actor(userid: str, nodes: Iterable[RegionNode], channel: str = "wecom") -> Actor:
    homes = tuple(Home(n.code, n.path, n.tier) for n in nodes)
    return Actor("officer", userid, MEMBER_ROLE, "wecom" if channel.startswith("wecom") else channel, homes)


def resident_actor(openid: str) -> Actor:
    return Actor("resident", openid, RESIDENT_ROLE, "resident")


def system_actor(name: str) -> Actor:
    return Actor("system", name, "system", "system")


# --- sensitive categories --------------------------------------------------------------------------------


def sensitive_rules() -> tuple[RoutingRule, ...]:
    return tuple(rule for rule in routing_config().rules if rule.sensitive)


def _office_rank(rule: RoutingRule) -> int:
    if rule.office:
        node = node_by_code(rule.office)
        if node is not None:
            return TIER_RANK.get(node.tier, 0)
    return TIER_RANK.get(rule.tier or "county", 0)


def sensitive_rule(ticket: Ticket) -> RoutingRule | None:
    return next((r for r in sensitive_rules() if r.matches(ticket.category, ticket.subcategory)), None)


def hidden_from_rank(ticket: Ticket, rank: int) -> bool:
    """A sensitive ticket is hidden from everyone whose highest node sits below its office's tier."""
    rule = sensitive_rule(ticket)
    return rule is not None and rank > _office_rank(rule)


def _hidden_condition(rank: int) -> ColumnElement[bool] | None:
    """SQL: tickets of a sensitive category hidden from an actor of this rank (None: nothing hidden)."""
    conditions = []
    for rule in sensitive_rules():
        if rank > _office_rank(rule):
            match = Ticket.category == rule.category
            if rule.subcategory:
                match = db.and_(match, Ticket.subcategory == rule.subcategory)
            conditions.append(match)
    return db.or_(*conditions) if conditions else None


def node_may_see(code: str | None, ticket: Ticket) -> bool:
    """Whether the team of node `code` may see the ticket at all (assign targets, summoned handlers)."""
    node = node_by_code(code)
    return node is not None and not hidden_from_rank(ticket, TIER_RANK.get(node.tier, 9))


# --- relations -------------------------------------------------------------------------------------------


def relation(actor: Actor, ticket: Ticket) -> str:
    if actor.role == RESIDENT_ROLE:
        return resident_relation(actor.name, ticket)
    if hidden_from_rank(ticket, actor.rank):
        return SENSITIVE
    owner = node_by_code(ticket.owner_code)
    if owner is not None:
        for home in actor.homes:
            if owner.code == home.code:
                return OWN
        if any(owner.path.startswith(h.path) for h in actor.homes):
            return PARENT
    if co_handler_nodes(actor, ticket):
        return CO_HANDLER
    if actor.covers(ticket.grid_code):
        return ESCALATED
    return OTHER


def co_handler_nodes(actor: Actor, ticket: Ticket) -> list[str]:
    return [h.node_code for h in ticket.handlers if actor.covers(h.node_code)]


def active_reporters(ticket: Ticket):
    return [r for r in ticket.reporters if r.withdrawn_at is None]


def resident_relation(openid: str, ticket: Ticket) -> str:
    mine = [r for r in active_reporters(ticket) if r.channel == "mp" and r.external_id == openid]
    if not mine:
        return STRANGER
    others = {(r.channel, r.external_id) for r in active_reporters(ticket)} - {("mp", openid)}
    return JOINED_REPORTER if others else SOLE_REPORTER


# --- decisions -------------------------------------------------------------------------------------------


def may(actor: Actor, action: str, ticket: Ticket) -> bool:
    return allowed(actor.role, relation(actor, ticket), action, actor.channel)


def may_see(actor: Actor, ticket: Ticket) -> bool:
    return may(actor, "view", ticket)


def check(actor: str | Actor, action: str, ticket: Ticket, params: dict | None = None) -> None:
    """Raise ActionRefused unless the actor may take `action` on the ticket (with these arguments).

    A plain string actor is the system itself (the sweep); nothing else may act without an Actor."""
    if not isinstance(actor, Actor):
        if not str(actor).startswith("system"):
            raise ActionRefused(403, "只有系统任务可以不经授权执行工单操作")
        return
    if actor.kind == "system":
        return
    rel = relation(actor, ticket)
    if not allowed(actor.role, rel, "view", actor.channel):
        raise ActionRefused(404, "工单不存在或不在您的管辖范围内")
    if not allowed(actor.role, rel, action, actor.channel):
        if actor.role in READ_ONLY_ROLES:
            raise ActionRefused(403, "只读账号只能查看")
        raise ActionRefused(
            403, "该工单不在您的管辖范围内" if rel != CO_HANDLER else "协办单位只能签收或退回本单位的部分"
        )
    params = params if params is not None else {}
    if action in ("sign", "return"):
        _check_handler_part(actor, rel, ticket, params)
    elif action == "assign":
        target = node_by_code(params.get("node") if isinstance(params.get("node"), str) else None)
        if target is None:
            raise ActionRefused(400, "assign 需要有效的 node（区域编码）")
        if not actor.covers(target.code):
            raise ActionRefused(403, "不能派单到管辖范围以外的单位")
        if not node_may_see(target.code, ticket):
            raise ActionRefused(403, "此类事项只能由受理它的机关办理，不能派给下级")
    elif action == "summon":
        for spec in params.get("handlers") or []:
            code = spec.get("node") if isinstance(spec, dict) else None
            if isinstance(code, str) and node_by_code(code) is not None and not node_may_see(code, ticket):
                raise ActionRefused(403, "此类事项不能请下级单位协办")


def _check_handler_part(actor: Actor, rel: str, ticket: Ticket, params: dict) -> None:
    """Signing or returning a co-handler's part: the part is the actor's own, whatever `node` says.

    A co-handler acts on its part only (its node is filled in when the caller did not name it); the owner's
    side may name a summoned node of its own area (a town signing for its community's part)."""
    named = params.get("node")
    if named is not None and not isinstance(named, str):
        raise ActionRefused(400, "node 应为区域编码")
    mine = co_handler_nodes(actor, ticket)
    if rel == CO_HANDLER:
        if named and named not in mine:
            raise ActionRefused(403, "只能办理本单位的协办部分")
        if not named:
            pending = [h.node_code for h in ticket.handlers if h.node_code in mine and h.status == "pending"]
            params["node"] = (pending or mine)[0]
        return
    if named and named != ticket.owner_code and named not in mine:
        raise ActionRefused(403, "只能办理本单位的协办部分")


def check_merge_target(actor: str | Actor, target: Ticket) -> None:
    if isinstance(actor, Actor) and actor.kind != "system":
        rel = relation(actor, target)
        if not allowed(actor.role, rel, "view", actor.channel):
            raise ActionRefused(400, "merge 需要另一张工单（into: 工单号或 id）")
        if not allowed(actor.role, rel, "merge", actor.channel):
            raise ActionRefused(403, "目标工单不在您的管辖范围内")


# --- lists and areas -------------------------------------------------------------------------------------


def area_codes(actor: Actor) -> list[str]:
    if not actor.homes:
        return []
    return list(
        db.session.execute(
            db.select(RegionNode.code).filter(db.or_(*(RegionNode.path.startswith(h.path) for h in actor.homes)))
        ).scalars()
    )


def visible_filter(actor: Actor, codes: list[str] | None = None) -> ColumnElement[bool]:
    """SQL condition: the tickets `may_see` allows (owner, grid or a co-handler in the area; sensitive
    categories only at or above their office)."""
    if actor.role == RESIDENT_ROLE:
        return Ticket.reporters.any(
            db.and_(
                TicketReporter.channel == "mp",
                TicketReporter.external_id == actor.name,
                TicketReporter.withdrawn_at.is_(None),
            )
        )
    codes = area_codes(actor) if codes is None else codes
    if not codes:
        return db.false()
    condition = db.or_(
        Ticket.owner_code.in_(codes),
        Ticket.grid_code.in_(codes),
        Ticket.handlers.any(TicketHandler.node_code.in_(codes)),
    )
    return _not_hidden(condition, actor.rank)


def _not_hidden(condition, rank: int):
    hidden = _hidden_condition(rank)
    if hidden is None:
        return condition
    # category is NULL for unclassified tickets: NOT (NULL = x) is NULL, so say it explicitly.
    return db.and_(condition, db.or_(Ticket.category.is_(None), db.not_(hidden)))


def node_visible_filter(node: RegionNode, codes: list[str]) -> ColumnElement[bool]:
    """SQL: what the team of `node` sees of the tickets of its subtree (`codes`): digests and summaries."""
    condition = db.or_(Ticket.grid_code.in_(codes), Ticket.owner_code.in_(codes))
    return _not_hidden(condition, TIER_RANK.get(node.tier, 9))


def node_sees(node: RegionNode, ticket: Ticket) -> bool:
    return not hidden_from_rank(ticket, TIER_RANK.get(node.tier, 9))


def sees_personal_data(actor: Actor) -> bool:
    """Roles that call residents back see names and numbers unmasked; everyone else sees masks."""
    return actor.kind == "officer" or actor.role in UNMASKED_ROLES


def may_export(actor: Actor, region_code: str | None) -> bool:
    """Exports and the dashboard of a region: any staff account, for a region inside its area."""
    return actor.kind == "staff" and actor.role in STAFF_ROLES and actor.covers(region_code)


def export_filter(actor: Actor) -> ColumnElement[bool] | None:
    """What an export may contain besides its region filter: no sensitive tickets below their office."""
    return _hidden_condition(actor.rank)


def may_broadcast_to(actor: Actor, region_code: str | None) -> bool:
    return actor.kind == "staff" and actor.role in PUBLISHER_ROLES and actor.covers(region_code)


def may_manage_user(actor: Actor, user: User) -> bool:
    """The console's admin page: admins manage the accounts of their own area (never themselves out)."""
    return actor.kind == "staff" and actor.role == "admin" and actor.covers(user.region_code)


def may_create_in(actor: Actor, region_code: str | None) -> bool:
    """Filing a new report for a place (Open311): any acting staff account, inside its area."""
    return actor.kind == "staff" and actor.role not in READ_ONLY_ROLES and actor.covers(region_code)
