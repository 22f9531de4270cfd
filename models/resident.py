"""Residents who write to the official account, keyed by openid."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TimestampMixin, UTCDateTime, db


class Resident(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "residents"
    # Broadcast planning pages through a node's residents in id order (keyset), one node after another.
    __table_args__ = (Index("ix_residents_grid_code_id", "grid_code", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(128), unique=True)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The grid we last knew them in (a ticket's grid or a location message); routes place-less demands.
    grid_code: Mapped[str | None] = mapped_column(String(32), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Clarifying dialog: the ticket waiting for an answer, what we asked, until when.
    # No foreign key: tickets reference residents' openids, and a cycle would complicate migrations.
    pending_ticket_id: Mapped[int | None] = mapped_column(Integer)
    pending_field: Mapped[str | None] = mapped_column(String(32))
    pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Policy notices (broadcasts): "退订通知" turns them off; work-order replies never depend on this.
    notices: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Official-account tag mirror: the grid path whose node tags WeChat holds for them, and whether
    # that differs from what it should be (then a tag mass send cannot be trusted to match).
    mp_tag_path: Mapped[str | None] = mapped_column(String(400))
    mp_tag_dirty: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)
    # Mass sends reserved for them in `mass_month` (Beijing time "2026-11"): a service account may
    # reach each user at most 4 times a natural month.
    mass_month: Mapped[str | None] = mapped_column(String(7))
    mass_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the account's follower list (`user/get`, `flask sync-followers`) last named them (followers who
    # never wrote are known too).
    follower_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def get_or_create_resident(openid: str) -> Resident:
    resident = db.session.execute(db.select(Resident).filter_by(openid=openid)).scalar_one_or_none()
    if resident is None:
        resident = Resident(openid=openid)
        db.session.add(resident)
        db.session.flush()
    return resident
