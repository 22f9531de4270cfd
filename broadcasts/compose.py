"""Policy broadcasts: accepting a notice (validation, audience counts, the monthly limit), cancelling it,
its progress, WeChat's mass-send reports, and residents opting in or out of notices.

Writes Broadcast/BroadcastBatch/Outbox/audit rows; never calls a platform API (jobs/broadcasts.py sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

from sqlalchemy import func, select, update

from broadcasts.audience import (
    RESIDENT,
    AudienceError,
    MemberAudience,
    ResidentAudience,
    covers_whole_account,
    expand_roles,
    group_nodes,
    month_of,
    nodes_by_codes,
    resolve_regions,
)
from models import (
    BatchKind,
    BatchStatus,
    Broadcast,
    BroadcastBatch,
    BroadcastStatus,
    Outbox,
    OutboxStatus,
    RegionNode,
    Resident,
    audit,
    db,
)
from models.broadcast import FINAL_BROADCAST_STATUSES
from models.region import MEMBER_ROLES
from workflow.policy import PUBLISHER_ROLES  # the one policy says who may publish (and where: may_broadcast_to)

CHANNELS = ("mp", "wecom_app", "group")
CHANNEL_LABELS = {"mp": "公众号群发", "wecom_app": "企业微信应用消息", "group": "分级工作群"}
TITLE_MAX = 64
BODY_MAX = 1500


class BroadcastError(Exception):
    """Refused: `status` is the HTTP answer (400 invalid, 403 not yours, 409 over the limit / too late)."""

    def __init__(self, status: int, error: str, message: str, **details):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details

    def as_dict(self) -> dict:
        return {"error": self.error, "message": self.message, **self.details}


@dataclass(frozen=True)
class BroadcastRequest:
    title: str
    body: str
    link: str | None
    regions: tuple[str, ...]
    roles: frozenset[str]
    tags: tuple[str, ...]
    channels: tuple[str, ...]
    dry_run: bool = False
    skip_over_limit: bool = False

    @property
    def member_roles(self) -> tuple[str, ...]:
        return tuple(sorted(self.roles & set(MEMBER_ROLES)))


def parse_request(data) -> BroadcastRequest:
    """Validate a POST /api/broadcasts body; raises BroadcastError(400) naming the problem."""
    if not isinstance(data, dict):
        raise BroadcastError(400, "bad_request", "expected a JSON object")
    title = str(data.get("title") or "").strip()
    body = str(data.get("body") or "").strip()
    link = str(data.get("link") or "").strip() or None
    if not title or len(title) > TITLE_MAX:
        raise BroadcastError(400, "bad_request", f"title is required, at most {TITLE_MAX} characters")
    if not body or len(body) > BODY_MAX:
        raise BroadcastError(400, "bad_request", f"body is required, at most {BODY_MAX} characters")
    if link and (urlparse(link).scheme not in ("http", "https") or not urlparse(link).netloc or len(link) > 500):
        raise BroadcastError(400, "bad_request", "link must be an http(s) URL")
    audience = data.get("audience")
    if not isinstance(audience, dict):
        raise BroadcastError(400, "bad_request", "audience {regions, roles, tags?} is required")
    regions, roles, tags = (audience.get(key) or [] for key in ("regions", "roles", "tags"))
    for key, value in (("regions", regions), ("roles", roles), ("tags", tags)):
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) and str(v).strip() for v in value):
            raise BroadcastError(400, "bad_request", f"audience.{key} must be a list of names")
    if not roles:
        raise BroadcastError(400, "bad_request", "audience.roles must name at least one role")
    try:
        expanded = expand_roles(str(role) for role in roles)
    except AudienceError as exc:
        raise BroadcastError(exc.status, exc.error, str(exc)) from None
    channels = data.get("channels")
    if channels is None:  # by default every channel that reaches the roles named
        channels = (["mp"] if RESIDENT in expanded else []) + (["wecom_app", "group"] if expanded - {RESIDENT} else [])
    if not isinstance(channels, list) or not channels or any(c not in CHANNELS for c in channels):
        raise BroadcastError(400, "bad_request", f"channels must be a non-empty list of {', '.join(CHANNELS)}")
    for flag in ("dry_run", "skip_over_limit"):
        if not isinstance(data.get(flag, False), bool):
            raise BroadcastError(400, "bad_request", f"{flag} must be true or false")
    return BroadcastRequest(
        title=title,
        body=body,
        link=link,
        regions=tuple(dict.fromkeys(str(r).strip() for r in regions)),
        roles=expanded,
        tags=tuple(sorted({str(t).strip() for t in tags})),
        channels=tuple(c for c in CHANNELS if c in channels),
        dry_run=data.get("dry_run", False),
        skip_over_limit=data.get("skip_over_limit", False),
    )


def audience_counts(
    paths: tuple[str, ...],
    roles,
    tags: tuple[str, ...],
    channels,
    month: str,
    limit: int,
    skip_over_limit: bool,
    whole_account: bool = False,
) -> dict:
    """Per channel: how many will receive it (`total`) and how many are skipped, by reason. For the official
    account also how many followers have no known place (`no_known_place`): a whole-account notice reaches
    them, a regional one cannot."""
    counts: dict[str, dict] = {}
    member_roles = tuple(sorted(set(roles) & set(MEMBER_ROLES)))
    if "mp" in channels and RESIDENT in roles:
        residents = ResidentAudience(paths, tags, month, limit, whole_account).counts()
        over = residents["over_limit"]
        counts["mp"] = {
            "total": residents["reachable"] - (over if skip_over_limit else 0),
            "skipped": {
                "unsubscribed": residents["unsubscribed"],
                "opted_out": residents["opted_out"],
                "over_limit": over if skip_over_limit else 0,
            },
            "over_limit": over,
            "no_known_place": residents["no_known_place"],
            "whole_account": whole_account,
        }
    if "wecom_app" in channels and member_roles:
        members = MemberAudience(paths, member_roles).counts()
        counts["wecom_app"] = {
            "total": members["recipients"],
            "skipped": {"inactive": members["inactive"], "no_wecom_userid": members["no_wecom_userid"]},
        }
    if "group" in channels and member_roles:
        counts["group"] = {"total": len(group_nodes(paths)), "skipped": {}}
    return counts


def create_broadcast(
    request: BroadcastRequest, *, actor: str, caller_role: str, caller_region: str, now: datetime, limit: int
):
    """Check and count the audience; unless it is a dry run, record the broadcast (status planning).

    Returns (broadcast or None for a dry run, counts). Refuses with BroadcastError: 403 for a role that
    may not publish or a region outside the caller's, 400 for nobody to reach, 409 when the notice would
    take someone past the month's mass sends and `skip_over_limit` was not chosen.
    """
    if caller_role not in PUBLISHER_ROLES:
        raise BroadcastError(403, "forbidden", "only admin and staff accounts may publish notices")
    try:
        # Every audience region inside the caller's area: workflow.policy.may_broadcast_to, as one query.
        nodes = resolve_regions(request.regions, caller_region)
    except AudienceError as exc:
        raise BroadcastError(exc.status, exc.error, str(exc)) from None
    month = month_of(now)
    paths = tuple(node.path for node in nodes)
    counts = audience_counts(
        paths,
        request.roles,
        request.tags,
        request.channels,
        month,
        limit,
        request.skip_over_limit,
        whole_account=covers_whole_account(nodes, request.tags),
    )
    over = counts.get("mp", {}).get("over_limit", 0)
    if request.dry_run:
        return None, counts
    if over and not request.skip_over_limit:
        raise BroadcastError(
            409,
            "over_monthly_limit",
            f"{over}位居民本月（{month}）已收到{limit}次群发，公众号服务号每人每月最多{limit}次；"
            "可选择跳过这些居民（skip_over_limit: true）后发送。",
            over_limit=over,
            limit=limit,
            month=month,
            counts=counts,
        )
    if not sum(channel["total"] for channel in counts.values()):
        raise BroadcastError(400, "empty_audience", "nobody in this audience can be reached", counts=counts)
    broadcast = Broadcast(
        title=request.title,
        body=request.body,
        link=request.link,
        audience={"regions": [n.code for n in nodes], "roles": sorted(request.roles), "tags": list(request.tags)},
        channels=list(request.channels),
        status=BroadcastStatus.PLANNING,
        skip_over_limit=request.skip_over_limit,
        created_by=actor,
        month=month,
        counts=counts,
        plan_state={},
        report={},
        created_at=now,
    )
    db.session.add(broadcast)
    db.session.flush()
    audit(
        actor,
        "broadcast.created",
        f"broadcast:{broadcast.id}",
        title=broadcast.title,
        audience=broadcast.audience,
        channels=broadcast.channels,
        totals={channel: c["total"] for channel, c in counts.items()},
        skip_over_limit=request.skip_over_limit,
    )
    return broadcast, counts


def broadcast_paths(broadcast: Broadcast) -> tuple[str, ...]:
    return tuple(node.path for node in nodes_by_codes(broadcast.audience.get("regions", [])))


def visible_to(broadcast: Broadcast, caller_region: str) -> bool:
    """A broadcast is visible to callers whose area holds its whole audience."""
    try:
        resolve_regions(broadcast.audience.get("regions", []), caller_region)
    except AudienceError:
        return False
    return True


def notice_text(broadcast: Broadcast) -> str:
    text = f"【{broadcast.title}】\n{broadcast.body}"
    return text + (f"\n详情：{broadcast.link}" if broadcast.link else "")


def robot_markdown(broadcast: Broadcast) -> str:
    text = f"**【政策通知】{broadcast.title}**\n{broadcast.body}"
    return text + (f"\n[查看详情]({broadcast.link})" if broadcast.link else "")


# --- progress ---------------------------------------------------------------------------------------


def progress(broadcast: Broadcast) -> dict:
    """Per channel total/sent/failed/skipped/pending (+cancelled), from aggregate queries over batches."""
    rows = db.session.execute(
        select(
            BroadcastBatch.channel,
            BroadcastBatch.status,
            func.coalesce(func.sum(BroadcastBatch.size), 0),
            func.coalesce(func.sum(BroadcastBatch.failed_count), 0),
        )
        .filter(BroadcastBatch.broadcast_id == broadcast.id, BroadcastBatch.kind != BatchKind.ROBOT)
        .group_by(BroadcastBatch.channel, BroadcastBatch.status)
    ).all()
    robots = db.session.execute(
        select(BroadcastBatch.status, Outbox.status, func.count())
        .join(Outbox, Outbox.id == BroadcastBatch.outbox_id)
        .filter(BroadcastBatch.broadcast_id == broadcast.id, BroadcastBatch.kind == BatchKind.ROBOT)
        .group_by(BroadcastBatch.status, Outbox.status)
    ).all()
    done: dict[str, dict[str, int]] = {}
    for channel, status, size, rejected in rows:
        slot = done.setdefault(channel, {"sent": 0, "failed": 0, "cancelled": 0})
        if status == BatchStatus.SENT:
            slot["sent"] += int(size) - int(rejected)
            slot["failed"] += int(rejected)
        elif status == BatchStatus.FAILED:
            slot["failed"] += int(size)
        elif status == BatchStatus.CANCELLED:
            slot["cancelled"] += int(size)
    for batch_status, outbox_status, count in robots:
        slot = done.setdefault("group", {"sent": 0, "failed": 0, "cancelled": 0})
        if batch_status == BatchStatus.CANCELLED:
            slot["cancelled"] += count
        elif outbox_status == OutboxStatus.SENT:
            slot["sent"] += count
        elif outbox_status == OutboxStatus.FAILED:
            slot["failed"] += count
    channels = {}
    for channel in broadcast.channels:
        counted = (broadcast.counts or {}).get(channel)
        if counted is None:
            continue
        slot = dict(done.get(channel, {"sent": 0, "failed": 0, "cancelled": 0}))
        total = int(counted["total"])
        remaining = max(0, total - slot["sent"] - slot["failed"] - slot["cancelled"])
        if broadcast.status == BroadcastStatus.CANCELLED:
            slot["cancelled"] += remaining  # including those never planned when planning was stopped
        pending = 0 if broadcast.status in FINAL_BROADCAST_STATUSES else remaining
        channels[channel] = {
            "total": total,
            **slot,
            "skipped": sum(counted.get("skipped", {}).values()),
            "skipped_by_reason": counted.get("skipped", {}),
            "pending": pending,
        }
    overall = {
        key: sum(c[key] for c in channels.values())
        for key in ("total", "sent", "failed", "cancelled", "skipped", "pending")
    }
    overall["percent"] = (
        round(100.0 * (overall["total"] - overall["pending"]) / overall["total"], 1) if overall["total"] else 100.0
    )
    return {"channels": channels, **overall}


def failures(broadcast: Broadcast, limit: int = 20) -> list[dict]:
    """Failed batches with the platform's error code (robot failures come from their outbox rows)."""
    batches = db.session.execute(
        select(
            BroadcastBatch.id,
            BroadcastBatch.channel,
            BroadcastBatch.seq,
            BroadcastBatch.size,
            BroadcastBatch.errcode,
            BroadcastBatch.error,
        )
        .filter(BroadcastBatch.broadcast_id == broadcast.id, BroadcastBatch.status == BatchStatus.FAILED)
        .order_by(BroadcastBatch.id)
        .limit(limit)
    ).all()
    return [
        {"batch": bid, "channel": channel, "seq": seq, "recipients": size, "errcode": errcode, "error": error}
        for bid, channel, seq, size, errcode, error in batches
    ]


def open_batch_count(broadcast_id: int) -> int:
    """Batches still to be sent (robot batches count until their outbox row is delivered or failed)."""
    mine = db.session.execute(
        select(func.count()).filter(
            BroadcastBatch.broadcast_id == broadcast_id,
            BroadcastBatch.kind != BatchKind.ROBOT,
            BroadcastBatch.status.in_([BatchStatus.PENDING, BatchStatus.SENDING]),
        )
    ).scalar()
    robots = db.session.execute(
        select(func.count())
        .select_from(BroadcastBatch)
        .join(Outbox, Outbox.id == BroadcastBatch.outbox_id)
        .filter(
            BroadcastBatch.broadcast_id == broadcast_id,
            BroadcastBatch.kind == BatchKind.ROBOT,
            BroadcastBatch.status == BatchStatus.PENDING,
            Outbox.status == OutboxStatus.PENDING,
        )
    ).scalar()
    return int(mine or 0) + int(robots or 0)


def finish_if_complete(broadcast_id: int, now: datetime) -> bool:
    """Mark a sending broadcast done once nothing is pending; True when this call did it (audited once)."""
    if open_batch_count(broadcast_id):
        return False
    _settle_robot_batches(broadcast_id)
    result = db.session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.SENDING)
        .values(status=BroadcastStatus.DONE, finished_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
        db.session.commit()
        return False
    broadcast = db.session.get(Broadcast, broadcast_id)
    db.session.refresh(broadcast)
    summary = progress(broadcast)
    audit(
        "system",
        "broadcast.finished",
        f"broadcast:{broadcast_id}",
        **{key: summary[key] for key in ("total", "sent", "failed", "skipped", "cancelled")},
    )
    db.session.commit()
    return True


def _settle_robot_batches(broadcast_id: int) -> None:
    """Copy each tier-group message's delivery outcome from its outbox row onto its batch."""
    for outcome in (OutboxStatus.SENT, OutboxStatus.FAILED):
        delivered = select(Outbox.id).filter(Outbox.status == outcome)
        db.session.execute(
            update(BroadcastBatch)
            .where(
                BroadcastBatch.broadcast_id == broadcast_id,
                BroadcastBatch.kind == BatchKind.ROBOT,
                BroadcastBatch.status == BatchStatus.PENDING,
                BroadcastBatch.outbox_id.in_(delivered),
            )
            .values(status=BatchStatus.SENT if outcome == OutboxStatus.SENT else BatchStatus.FAILED)
        )


# --- cancelling ------------------------------------------------------------------------------------


def cancel_broadcast(broadcast_id: int, *, actor: str, now: datetime) -> Broadcast:
    """Stop what has not gone out yet. Batches already sending finish and are recorded as they end."""
    broadcast = db.session.execute(select(Broadcast).filter_by(id=broadcast_id).with_for_update()).scalar_one_or_none()
    if broadcast is None:
        raise BroadcastError(404, "not_found", "no such broadcast")
    if broadcast.status in FINAL_BROADCAST_STATUSES:
        raise BroadcastError(409, "not_cancellable", f"broadcast is already {broadcast.status}")
    broadcast.status = BroadcastStatus.CANCELLED
    broadcast.cancelled_at = now
    broadcast.cancelled_by = actor
    # One row per tier group (a few hundred at most). The outbox row first: a delivery in flight holds
    # it, and a message that went out stays sent.
    robots = 0
    pending_robots = db.session.execute(
        select(BroadcastBatch.id, BroadcastBatch.outbox_id).filter(
            BroadcastBatch.broadcast_id == broadcast_id,
            BroadcastBatch.kind == BatchKind.ROBOT,
            BroadcastBatch.status == BatchStatus.PENDING,
        )
    ).all()
    for batch_id, outbox_id in pending_robots:
        stopped = db.session.execute(
            update(Outbox)
            .where(Outbox.id == outbox_id, Outbox.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.FAILED, last_error=f"broadcast {broadcast_id} cancelled")
        ).rowcount  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
        if stopped:
            db.session.execute(
                update(BroadcastBatch).where(BroadcastBatch.id == batch_id).values(status=BatchStatus.CANCELLED)
            )
            robots += 1
    others = db.session.execute(
        update(BroadcastBatch)
        .where(
            BroadcastBatch.broadcast_id == broadcast_id,
            BroadcastBatch.kind != BatchKind.ROBOT,
            BroadcastBatch.status == BatchStatus.PENDING,
        )
        .values(status=BatchStatus.CANCELLED)
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
    audit(actor, "broadcast.cancelled", f"broadcast:{broadcast_id}", batches_cancelled=robots + others)
    return broadcast


# --- WeChat's reports -------------------------------------------------------------------------------


def record_mass_report(payload: dict) -> BroadcastBatch | None:
    """Store a MASSSENDJOBFINISH event (sent/filtered/error counts) against the batch with its msg_id."""
    msg_id = str(payload.get("MsgID") or payload.get("MsgId") or "").strip()
    if not msg_id:
        return None
    batch = db.session.execute(
        select(BroadcastBatch).filter(BroadcastBatch.msg_id == msg_id).order_by(BroadcastBatch.id).limit(1)
    ).scalar_one_or_none()
    if batch is None:
        return None

    def number(key: str) -> int:
        try:
            return int(payload.get(key) or 0)
        except (TypeError, ValueError):
            return 0

    batch.report = {
        "status": str(payload.get("Status") or ""),
        "total": number("TotalCount"),
        "filtered": number("FilterCount"),
        "sent": number("SentCount"),
        "errors": number("ErrorCount"),
    }
    db.session.flush()
    broadcast = db.session.get(Broadcast, batch.broadcast_id)
    reports = db.session.execute(
        select(BroadcastBatch.report).filter(
            BroadcastBatch.broadcast_id == broadcast.id, BroadcastBatch.report.is_not(None)
        )
    ).scalars()
    totals = {"jobs": 0, "total": 0, "filtered": 0, "sent": 0, "errors": 0}
    for report in reports:
        totals["jobs"] += 1
        for key in ("total", "filtered", "sent", "errors"):
            totals[key] += int(report.get(key, 0))
    broadcast.report = totals
    audit("wechat", "broadcast.mass_report", f"broadcast:{broadcast.id}", batch=batch.id, msg_id=msg_id, **batch.report)
    return batch


# --- residents' choice -------------------------------------------------------------------------------


def recent_notices(resident: Resident, limit: int = 3, scan: int = 50) -> list[Broadcast]:
    """The latest notices sent on the official account to an area holding the resident's grid."""
    grid = db.session.execute(select(RegionNode.path).filter_by(code=resident.grid_code)).scalar_one_or_none()
    if grid is None:
        return []
    recent = db.session.execute(
        select(Broadcast)
        .filter(Broadcast.status.in_([BroadcastStatus.SENDING, BroadcastStatus.DONE]))
        .order_by(Broadcast.id.desc())
        .limit(scan)
    ).scalars()
    found = []
    for broadcast in recent:
        if "mp" not in broadcast.channels or RESIDENT not in broadcast.audience.get("roles", []):
            continue
        if broadcast.audience.get("tags"):
            continue  # aimed at some residents only
        if any(grid.startswith(path) for path in broadcast_paths(broadcast)):
            found.append(broadcast)
            if len(found) == limit:
                break
    return found


def set_notices(resident: Resident, on: bool) -> bool:
    """Opt a resident in or out of policy notices; True when it changed. Work-order replies are unaffected."""
    if bool(resident.notices) == on:
        return False
    resident.notices = on
    audit(f"resident:{resident.openid}", "notices.opted_in" if on else "notices.opted_out", f"resident:{resident.id}")
    return True
