"""The broadcast use cases as the API and the console both call them: submit (or count), look up, cancel.

Each checks who may do it, commits, and only then enqueues the work, so a job never runs before the row it
needs is visible. The web layers only translate requests and answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broadcasts.compose import (
    PUBLISHER_ROLES,
    BroadcastError,
    BroadcastRequest,
    cancel_broadcast,
    create_broadcast,
    finish_if_complete,
    parse_request,
    visible_to,
)
from broadcasts.sending import enqueue_fan_out, enqueue_release
from models import Broadcast, User, db


@dataclass
class Submission:
    request: BroadcastRequest
    broadcast: Broadcast | None  # None: a dry run (the audience was only counted)
    counts: dict

    def summary(self) -> dict:
        """What a dry run answers: counts per channel, whether the monthly limit would refuse it, and how many
        followers have no known place (a county-wide notice reaches them; a regional one does not)."""
        over = self.counts.get("mp", {}).get("over_limit", 0)
        return {
            "counts": self.counts,
            "total": sum(c["total"] for c in self.counts.values()),
            "over_limit": over,
            "would_be_refused": bool(over and not self.request.skip_over_limit),
            "no_known_place": self.counts.get("mp", {}).get("no_known_place", 0),
        }


def submit(data: object, user: User, now: datetime, monthly_limit: int) -> Submission:
    """Create and start a broadcast (or only count its audience when data asks for a dry run).

    Raises BroadcastError, after rolling back, when the request or the caller's authority is wrong."""
    try:
        wanted = parse_request(data)
        broadcast, counts = create_broadcast(
            wanted,
            actor=user.actor,
            caller_role=user.role,
            caller_region=user.region_code,
            now=now,
            limit=monthly_limit,
        )
    except BroadcastError:
        db.session.rollback()
        raise
    if broadcast is not None:
        db.session.commit()
        enqueue_fan_out(broadcast.id)
    return Submission(wanted, broadcast, counts)


def visible_broadcast(broadcast_id: int, user: User, now: datetime) -> Broadcast | None:
    """The broadcast if it is within the caller's region, its status brought up to date; else None."""
    broadcast = db.session.get(Broadcast, broadcast_id)
    if broadcast is None or not visible_to(broadcast, user.region_code):
        return None
    if finish_if_complete(broadcast.id, now):  # the last tier-group message may have just gone out
        db.session.refresh(broadcast)
    return broadcast


def cancel(broadcast_id: int, user: User, now: datetime) -> Broadcast:
    """Stop what has not been sent yet. Raises BroadcastError (404 unseen, 403 not a publisher, 409 …)."""
    if visible_broadcast(broadcast_id, user, now) is None:
        raise BroadcastError(404, "not_found", "没有这条通知")
    if user.role not in PUBLISHER_ROLES:
        raise BroadcastError(403, "forbidden", "只有管理员和工作人员可以撤回通知")
    try:
        broadcast = cancel_broadcast(broadcast_id, actor=user.actor, now=now)
    except BroadcastError:
        db.session.rollback()
        raise
    db.session.commit()
    enqueue_release(broadcast_id)
    return broadcast
