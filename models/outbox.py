"""Messages to send, written in the same transaction as the change that causes them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TimestampMixin, UTCDateTime, db


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # not sent on purpose: the resident no longer follows the account


class Outbox(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique so a re-run of the same step never queues the same message twice.
    dedup_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # mp | wecom_app | wecom_robot
    recipient: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
