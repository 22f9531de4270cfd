"""The work order (工单) aggregate: ticket, its reporters and its timeline."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import TimestampMixin, UTCDateTime, db, utcnow


class TicketStatus(enum.StrEnum):
    ASSIGNED = "assigned"  # 派单: routed to an owner, waiting to be signed
    SIGNED = "signed"  # 签收
    PROCESSING = "processing"  # 办理
    WAITING = "waiting"  # waiting on the resident; time limits pause
    RESOLVED = "resolved"  # 办结, waiting for the resident's verdict
    CLOSED = "closed"  # 回访 done
    CANCELLED = "cancelled"


OPEN_STATUSES = frozenset({TicketStatus.ASSIGNED, TicketStatus.SIGNED, TicketStatus.PROCESSING, TicketStatus.WAITING})
DONE_STATUSES = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.CANCELLED})

STATUS_LABELS: dict[str, str] = {
    TicketStatus.ASSIGNED: "已受理，待签收",
    TicketStatus.SIGNED: "已签收",
    TicketStatus.PROCESSING: "办理中",
    TicketStatus.WAITING: "待您补充信息",
    TicketStatus.RESOLVED: "已办结",
    TicketStatus.CLOSED: "已回访",
    TicketStatus.CANCELLED: "已取消",
}


class Ticket(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.ASSIGNED, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32), index=True)
    subcategory: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    urgency: Mapped[str] = mapped_column(String(8), default="normal")
    urgency_reason: Mapped[str | None] = mapped_column(String(200))
    grid_code: Mapped[str | None] = mapped_column(String(32), index=True)
    owner_code: Mapped[str | None] = mapped_column(String(32), index=True)
    location_text: Mapped[str | None] = mapped_column(String(400))
    place: Mapped[str | None] = mapped_column(String(200))
    building: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(32))
    room: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str] = mapped_column(Text, default="")
    missing: Mapped[list] = mapped_column(JSON, default=list)
    fields: Mapped[dict] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sign_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    owner_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    # The tier that may close it (category rules); None: any owner may.
    closable_tier: Mapped[str | None] = mapped_column(String(16))
    # When the current owner received it, and whether they were reminded (催办) on this step.
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    respond_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Time limits pause while waiting on the resident.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[str | None] = mapped_column(String(16))  # satisfied | basic | unsatisfied
    rating_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    reporters: Mapped[list[TicketReporter]] = relationship(back_populates="ticket", order_by="TicketReporter.id")
    events: Mapped[list[TicketEvent]] = relationship(back_populates="ticket", order_by="TicketEvent.id")
    handlers: Mapped[list[TicketHandler]] = relationship(back_populates="ticket", order_by="TicketHandler.id")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class TicketReporter(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    """Who raised it: a resident (openid), an officer (WeCom userid) or an API client."""

    __tablename__ = "ticket_reporters"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    id_card: Mapped[str | None] = mapped_column(String(32))
    # Set when the reporter withdrew (取消 on a ticket others reported too): they hear nothing more of it.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship(back_populates="reporters")


class TicketHandler(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    """A co-handling node summoned by staff (吹哨): 主办 (lead) or 协办 (co), each with its own sign clock."""

    __tablename__ = "ticket_handlers"
    __table_args__ = (UniqueConstraint("ticket_id", "node_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    node_code: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(8))  # lead | co
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | signed | returned | done
    sign_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship(back_populates="handlers")


class TicketEvent(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    """The timeline; every state change of a ticket leaves one (the audit trail)."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class DuplicateLink(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    """Why two reports are, or were thought to be, one job (workflow.duplicates reads and writes these).

    - "suggested": the new `ticket` may duplicate the open `other` (staff see 可能重复; nothing was joined).
    - "joined": a reporter joined `ticket`: automatically (`report` keeps their parsed report, so a split can
      rebuild their own ticket) or by a staff merge of `other` into it. `reporter` is the row the join added,
      None when they were a reporter already.
    - "split": `ticket` was split off `other`; the pair is never suggested or merged again.
    """

    __tablename__ = "duplicate_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # suggested | joined | split
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    other_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_reporters.id"))
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(200))
    report: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def add_event(ticket: Ticket, kind: str, actor: str, note: str | None = None, **data) -> TicketEvent:
    event = TicketEvent(ticket=ticket, kind=kind, actor=actor, note=note, data=data)
    db.session.add(event)
    return event


def ticket_by_number(number: str) -> Ticket | None:
    return db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one_or_none()
