"""Region helpers for staff pages: the account's home node, the nodes of its area, node names.

Who may see or act on a ticket is not decided here: that is workflow.policy, for every channel.
"""

from __future__ import annotations

from models import RegionNode, User, db, node_by_code


def home_node(user: User) -> RegionNode | None:
    return node_by_code(user.region_code)


def in_scope(user: User, code: str | None) -> bool:
    """True when the node `code` lies in the user's subtree (filters, dashboards: region choices only)."""
    home, node = home_node(user), node_by_code(code)
    return home is not None and node is not None and node.path.startswith(home.path)


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
