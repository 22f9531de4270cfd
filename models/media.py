"""Media a resident sent (image, voice, video), kept beyond WeChat's three days in our own storage."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TimestampMixin, UTCDateTime, db


class MediaStatus(enum.StrEnum):
    PENDING = "pending"  # known by its MediaId; the fetch job has not stored it yet
    STORED = "stored"
    REJECTED = "rejected"  # too large or of a type we do not keep
    FAILED = "failed"  # WeChat no longer has it, or every attempt failed


class MediaFile(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    """One inbound media message's file; unique per inbound row so a re-processed push fetches once."""

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    msg_type: Mapped[str] = mapped_column(String(16))  # image | voice | video | shortvideo
    media_id: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default=MediaStatus.PENDING, index=True)
    content_type: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage: Mapped[str | None] = mapped_column(String(8))  # local | s3
    storage_key: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # WeChat deletes temporary media three days after the message: no use fetching after this.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
