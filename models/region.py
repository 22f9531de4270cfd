"""The region tree (county → town → community/village → grid) and its members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import TimestampMixin, UTCDateTime, db

TIERS = ("county", "town", "community", "village", "grid")
# Depth of each tier on the escalation ladder; community and village are the same rung.
TIER_RANK = {"county": 0, "town": 1, "community": 2, "village": 2, "grid": 3}
MEMBER_ROLES = ("info_officer", "grid_officer", "party_leader", "cadre", "police", "staff", "department")


class RegionNode(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "region_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    tier: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("region_nodes.id"), index=True)
    # Materialised path of codes ("/990100/990101/") so a subtree is one indexed prefix query.
    path: Mapped[str] = mapped_column(String(400), index=True)
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    places: Mapped[list] = mapped_column(JSON, default=list)
    boundary: Mapped[dict | None] = mapped_column(JSON)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    group: Mapped[dict | None] = mapped_column(JSON)
    # Set when a re-imported region file no longer lists the node: kept for history, given no new work.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    parent: Mapped[RegionNode | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[RegionNode]] = relationship(back_populates="parent", order_by="RegionNode.code")
    members: Mapped[list[Member]] = relationship(back_populates="node", order_by="Member.id")

    @property
    def active(self) -> bool:
        return self.retired_at is None

    def ancestors_codes(self) -> list[str]:
        """Codes from the root down to this node, inclusive."""
        return [code for code in self.path.strip("/").split("/") if code]


class Member(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("region_nodes.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    wecom_userid: Mapped[str | None] = mapped_column(String(64), index=True)
    mobile: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    node: Mapped[RegionNode] = relationship(back_populates="members")


def node_by_code(code: str | None) -> RegionNode | None:
    if not code:
        return None
    return db.session.execute(db.select(RegionNode).filter_by(code=code)).scalar_one_or_none()


def root_node() -> RegionNode | None:
    return db.session.execute(
        db.select(RegionNode)
        .filter(RegionNode.parent_id.is_(None), RegionNode.retired_at.is_(None))
        .order_by(RegionNode.id)
        .limit(1)
    ).scalar_one_or_none()


def subtree_codes(code: str) -> list[str]:
    """Codes of the node and everything below it."""
    node = node_by_code(code)
    if node is None:
        return []
    return list(db.session.execute(db.select(RegionNode.code).filter(RegionNode.path.startswith(node.path))).scalars())


def region_tree() -> dict | None:
    """The active region as the nested dict shape of the region file (members and retired nodes left out);
    None when no region is imported (or the database is not migrated yet: the parser then works without places)."""
    if not db.inspect(db.engine).has_table(RegionNode.__tablename__):
        return None
    nodes = (
        db.session.execute(db.select(RegionNode).filter(RegionNode.retired_at.is_(None)).order_by(RegionNode.path))
        .scalars()
        .all()
    )
    if not nodes:
        return None
    by_id = {
        node.id: {
            "code": node.code,
            "name": node.name,
            "tier": node.tier,
            "aliases": list(node.aliases or []),
            "places": list(node.places or []),
            "boundary": node.boundary,
            "lat": node.lat,
            "lng": node.lng,
            "children": [],
        }
        for node in nodes
    }
    roots: list[dict] = []
    for node in nodes:
        (by_id[node.parent_id]["children"] if node.parent_id in by_id else roots).append(by_id[node.id])
    return roots[0] if len(roots) == 1 else {"code": "", "name": "", "tier": "county", "children": roots}
