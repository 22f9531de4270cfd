"""The daily digest (简报) each tier group gets at its configured time (config/groups.yaml): tickets new and
resolved in the last 24 hours, open tickets now overdue, and the last 7 days' 响应率 / 解决率 / 满意率 for the
node's subtree (reports.stats.region_stats). Writes Outbox rows, one per group per local day (the dedup key
says which day), so a digest is never sent twice however often the periodic job runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import yaml

from config import CONFIG_DIR
from models import OPEN_STATUSES, Outbox, RegionNode, Ticket, db
from reports.stats import region_stats
from workflow.group_notices import group_destination
from workflow.policy import node_visible_filter
from workflow.replies import LOCAL_TZ

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
TOP_OVERDUE = 5


@dataclass(frozen=True)
class DigestSchedule:
    enabled: bool = True
    at: time = time(17, 30)
    nodes: dict[str, dict] = field(default_factory=dict)

    def time_for(self, code: str) -> time | None:
        """The local time of this node's digest, or None when it gets none."""
        override = self.nodes.get(code) or {}
        if not override.get("enabled", self.enabled):
            return None
        return override.get("at", self.at)


def _parse_time(value, where: str) -> time:
    try:
        hours, minutes = str(value).strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{where}: digest time {value!r} is not HH:MM") from None


def load_digest_schedule(path: str | Path = CONFIG_DIR / "groups.yaml") -> DigestSchedule:
    path = Path(path)
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}
    digest = data.get("digest") or {}
    nodes = {}
    for code, spec in (digest.get("nodes") or {}).items():
        spec = dict(spec or {})
        if "time" in spec:
            spec["at"] = _parse_time(spec.pop("time"), f"digest.nodes.{code}")
        nodes[str(code)] = spec
    return DigestSchedule(
        enabled=bool(digest.get("enabled", True)),
        at=_parse_time(digest.get("time", "17:30"), "digest.time"),
        nodes=nodes,
    )


def queue_due_digests(now: datetime, schedule: DigestSchedule) -> list[Outbox]:
    """Queue today's digest for every group whose time has come and which has not had it today."""
    local = now.astimezone(LOCAL_TZ)
    queued = []
    groups = db.select(RegionNode).filter(RegionNode.group.is_not(None), RegionNode.retired_at.is_(None))
    for node in db.session.execute(groups).scalars().all():  # a retired node's group gets no more digests
        destination = group_destination(node)
        at = schedule.time_for(node.code)
        if destination is None or at is None or local.time() < at:
            continue
        dedup_key = f"digest:{node.code}:{local.date().isoformat()}"
        if db.session.execute(db.select(Outbox.id).filter_by(dedup_key=dedup_key)).first() is not None:
            continue
        channel, recipient = destination
        message = Outbox(
            channel=channel,
            recipient=recipient,
            kind="group_digest",
            payload={"msgtype": "markdown", "content": digest_markdown(node, now), "node": node.code},
            dedup_key=dedup_key,
        )
        db.session.add(message)
        queued.append(message)
    return queued


def digest_counts(node: RegionNode, now: datetime) -> dict:
    """New and resolved in the last 24 hours, and open tickets now past their deadline, in the subtree."""
    codes = list(db.session.execute(db.select(RegionNode.code).filter(RegionNode.path.startswith(node.path))).scalars())
    # What this node's team may see (workflow.policy): no complaint about officials below its office.
    in_subtree = node_visible_filter(node, codes)
    live = Ticket.merged_into_id.is_(None)
    since = now - DAY

    def count(*conditions) -> int:
        return db.session.execute(db.select(db.func.count(Ticket.id)).filter(live, *conditions)).scalar_one()

    overdue = (
        db.session.execute(
            db.select(Ticket)
            .filter(
                live,
                in_subtree,
                Ticket.owner_code.in_(codes),
                Ticket.status.in_(list(OPEN_STATUSES)),
                Ticket.due_at < now,
            )
            .order_by(Ticket.due_at)
        )
        .scalars()
        .all()
    )
    return {
        "new": count(in_subtree, Ticket.created_at >= since, Ticket.created_at < now),
        "resolved": count(in_subtree, Ticket.resolved_at >= since, Ticket.resolved_at < now),
        "overdue": len(overdue),
        "overdue_tickets": overdue[:TOP_OVERDUE],
    }


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def digest_markdown(node: RegionNode, now: datetime) -> str:
    counts = digest_counts(node, now)
    week = (region_stats(node.code, now - WEEK, now, now) or {}).get("total") or {}
    local_day: date = now.astimezone(LOCAL_TZ).date()
    lines = [
        f"**【每日简报】{node.name} {local_day.month}月{local_day.day}日**",
        f'> 近24小时新增：<font color="info">{counts["new"]}</font> 件',
        f"> 近24小时办结：{counts['resolved']} 件",
        f'> 当前超期未办结：<font color="warning">{counts["overdue"]}</font> 件',
        f"> 近7日受理 {week.get('received', 0)} 件：响应率 {_percent(week.get('response_rate'))}"
        f"，解决率 {_percent(week.get('resolution_rate'))}，满意率 {_percent(week.get('satisfaction_rate'))}",
    ]
    if counts["overdue_tickets"]:
        owners = {
            n.code: n.name
            for n in db.session.execute(
                db.select(RegionNode).filter(RegionNode.code.in_({t.owner_code for t in counts["overdue_tickets"]}))
            ).scalars()
        }
        lines.append("超期工单：")
        for ticket in counts["overdue_tickets"]:
            hours = (now - ticket.due_at).total_seconds() / 3600
            owner = owners.get(ticket.owner_code, "")
            lines.append(f"- {ticket.number} {ticket.category or '待分类'}，{owner}，超时{hours:.0f}小时")
    return "\n".join(lines)
