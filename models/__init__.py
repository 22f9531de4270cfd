"""SQLAlchemy models, one aggregate per module; this package re-exports them."""

from models.audit import AuditEvent, audit
from models.base import UTCDateTime, db, utcnow
from models.broadcast import (
    BatchKind,
    BatchStatus,
    Broadcast,
    BroadcastBatch,
    BroadcastStatus,
    MpTag,
    ResidentTag,
)
from models.inbound import InboundMessage, InboundStatus
from models.media import MediaFile, MediaStatus
from models.outbox import Outbox, OutboxStatus
from models.region import Member, RegionNode, node_by_code, region_tree, root_node, subtree_codes
from models.resident import Resident, get_or_create_resident
from models.staff import ApiToken, StaffSession, User, hash_token
from models.ticket import (
    DONE_STATUSES,
    OPEN_STATUSES,
    STATUS_LABELS,
    DuplicateLink,
    Ticket,
    TicketEvent,
    TicketHandler,
    TicketReporter,
    TicketStatus,
    add_event,
    ticket_by_number,
)

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BatchKind",
    "BatchStatus",
    "Broadcast",
    "BroadcastBatch",
    "BroadcastStatus",
    "DONE_STATUSES",
    "DuplicateLink",
    "InboundMessage",
    "InboundStatus",
    "MediaFile",
    "MediaStatus",
    "Member",
    "MpTag",
    "OPEN_STATUSES",
    "Outbox",
    "OutboxStatus",
    "RegionNode",
    "Resident",
    "ResidentTag",
    "STATUS_LABELS",
    "StaffSession",
    "Ticket",
    "TicketEvent",
    "TicketHandler",
    "TicketReporter",
    "TicketStatus",
    "UTCDateTime",
    "User",
    "add_event",
    "audit",
    "db",
    "get_or_create_resident",
    "hash_token",
    "node_by_code",
    "region_tree",
    "root_node",
    "subtree_codes",
    "ticket_by_number",
    "utcnow",
]
