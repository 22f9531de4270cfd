"""Policy broadcasts (政策宣传): the notice, its recipient batches, and the official-account tag mirror.

A broadcast is planned into batches (one mass send, one WeCom app call or one tier-group robot message
each). A batch's recipients are frozen when it is planned, and the batch records what it sent (its
status, the platform's msg_id, rejected recipients) before its job reports done, so a worker killed
mid-broadcast resumes without a second copy to anyone and without skipping anyone.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TimestampMixin, UTCDateTime, db
from models.resident import Resident


class BroadcastStatus(enum.StrEnum):
    PLANNING = "planning"  # accepted; the fan-out job is cutting the audience into batches
    SENDING = "sending"  # every batch planned; batches going out
    DONE = "done"  # nothing left pending (some batches may have failed: see progress)
    CANCELLED = "cancelled"  # stopped by staff; what was delivered stays recorded


FINAL_BROADCAST_STATUSES = frozenset({BroadcastStatus.DONE, BroadcastStatus.CANCELLED})


class BatchStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # the call may have gone out: a re-run repeats it with the same clientmsgid
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_BATCH_STATUSES = frozenset({BatchStatus.PENDING, BatchStatus.SENDING})


class BatchKind(enum.StrEnum):
    OPENIDS = "openids"  # message/mass/send to 2–10,000 openids
    TAG = "tag"  # message/mass/sendall to one official-account tag
    ALL = "all"  # message/mass/sendall with is_to_all: every follower of the account
    USERIDS = "userids"  # WeCom app message/send to ≤1,000 userids
    ROBOT = "robot"  # one tier group's robot, through an Outbox row


class Broadcast(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    # {"regions": [codes], "roles": [resident | member roles], "tags": [resident tags]}
    audience: Mapped[dict] = mapped_column(JSON, default=dict)
    channels: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.PLANNING, index=True)
    skip_over_limit: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(128))
    # The natural month (Beijing time, "2026-11") whose mass-send quota this broadcast uses.
    month: Mapped[str] = mapped_column(String(7))
    # Per channel {"total": n, "skipped": {reason: n}}: counted when accepted, exact once planned.
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    # The fan-out's cursor, committed with each planned batch so a re-run continues where it stopped.
    plan_state: Mapped[dict] = mapped_column(JSON, default=dict)
    # Sums of the MASSSENDJOBFINISH events WeChat pushed for this broadcast's mass sends.
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(128))


class BroadcastBatch(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    __tablename__ = "broadcast_batches"
    __table_args__ = (UniqueConstraint("broadcast_id", "channel", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # mp | wecom_app | group
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    # Tag id (kind tag) or node code (kind robot).
    target: Mapped[str | None] = mapped_column(String(64))
    # Openids or WeCom userids, frozen at planning. Empty for tag and robot batches.
    recipients: Mapped[list] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Deterministic per batch: WeChat answers 45065 instead of sending a second time.
    clientmsgid: Mapped[str | None] = mapped_column(String(64))
    msg_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Recipients the platform refused inside a batch it otherwise accepted (WeCom `invaliduser`).
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    errcode: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # True while this batch holds one of each recipient's monthly mass sends (mp batches only).
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    # The MASSSENDJOBFINISH event for this batch's msg_id.
    report: Mapped[dict | None] = mapped_column(JSON)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MpTag(TimestampMixin, db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    """The official-account user tag mirroring one region node (residents of its subtree carry it)."""

    __tablename__ = "mp_tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(30))
    tag_id: Mapped[int | None] = mapped_column(Integer)
    # Why the tag could not be created (e.g. the account's 100-tag limit); the node then uses openid lists.
    error: Mapped[str | None] = mapped_column(Text)


class ResidentTag(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy builds db.Model at run time
    """Labels staff target notices by (e.g. 老年人, 党员); a resident may carry several."""

    __tablename__ = "resident_tags"
    __table_args__ = (UniqueConstraint("resident_id", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    tag: Mapped[str] = mapped_column(String(32), index=True)


def _mark_tags_dirty(target: Resident, value, oldvalue, _initiator) -> None:
    """Where a resident lives and whether they take notices decide their official-account tags: a change
    means the mirror must be re-synced before a tag mass send may rely on it."""
    if value != oldvalue:
        target.mp_tag_dirty = True


for _attribute in (Resident.grid_code, Resident.subscribed, Resident.notices):
    event.listen(_attribute, "set", _mark_tags_dirty, active_history=True)
