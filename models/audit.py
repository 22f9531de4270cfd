"""State changes outside a ticket's timeline (accounts, tokens, region imports)."""

from __future__ import annotations

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TimestampMixin, db


class AuditEvent(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict] = mapped_column(JSON, default=dict)


def audit(actor: str, action: str, subject: str, **data) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, subject=subject, data=data)
    db.session.add(event)
    return event
