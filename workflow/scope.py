"""Who may see and act on what: every staff account is limited to its region subtree.

A ticket is *visible* to a user when its owner, its grid or one of its summoned co-handlers lies in the
user's subtree (a co-handler must see the ticket to sign it). Acting on it is decided by
workflow.transitions.apply_action, which checks the owner (or the co-handler node) again.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from models import RegionNode, Ticket, TicketHandler, User, db, node_by_code, subtree_codes

READ_ONLY_ROLES = frozenset({"viewer"})


def home_node(user: User) -> RegionNode | None:
    return node_by_code(user.region_code)


def scope_codes(user: User) -> list[str]:
    """Codes of the user's node and everything below it (empty when the node is gone)."""
    return subtree_codes(user.region_code)


def in_scope(user: User, code: str | None) -> bool:
    """True when the node `code` lies in the user's subtree."""
    home, node = home_node(user), node_by_code(code)
    return home is not None and node is not None and node.path.startswith(home.path)


def visible_filter(user: User, codes: list[str] | None = None) -> ColumnElement[bool]:
    """SQL condition: tickets the user may see."""
    codes = scope_codes(user) if codes is None else codes
    if not codes:
        return db.false()
    return db.or_(
        Ticket.owner_code.in_(codes),
        Ticket.grid_code.in_(codes),
        Ticket.handlers.any(TicketHandler.node_code.in_(codes)),
    )


def visible_ticket(user: User, ticket_id: int, for_update: bool = False) -> Ticket | None:
    """The ticket when the user may see it, else None (callers answer 404: no hint that it exists)."""
    query = db.select(Ticket).filter(Ticket.id == ticket_id, visible_filter(user))
    if for_update:
        query = query.with_for_update(of=Ticket)
    return db.session.execute(query).scalar_one_or_none()


def may_change(user: User, ticket: Ticket) -> bool:
    """Editing a ticket's own fields (corrections): the owner or the grid is in the user's subtree."""
    if user.role in READ_ONLY_ROLES:
        return False
    return in_scope(user, ticket.owner_code) or in_scope(user, ticket.grid_code)


def region_choices(user: User, tiers: tuple[str, ...] | None = None) -> list[RegionNode]:
    """The active nodes of the user's subtree (optionally of some tiers), in tree order; retired ones are
    history and are offered for nothing new."""
    home = home_node(user)
    if home is None:
        return []
    query = db.select(RegionNode).filter(RegionNode.path.startswith(home.path), RegionNode.retired_at.is_(None))
    if tiers:
        query = query.filter(RegionNode.tier.in_(tiers))
    return list(db.session.execute(query.order_by(RegionNode.path)).scalars())


def node_names(codes) -> dict[str, str]:
    """code → name for the given codes (one query)."""
    codes = sorted({c for c in codes if c})
    if not codes:
        return {}
    return dict(
        db.session.execute(db.select(RegionNode.code, RegionNode.name).filter(RegionNode.code.in_(codes))).all()
    )
