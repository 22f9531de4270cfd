"""Cutting a broadcast's audience into batches, streaming: keyset pages of ids, one committed batch at a time.

Memory stays flat whatever the audience: a step reads one page (≤ one batch of ids), writes one batch
row, commits it together with the cursor in `Broadcast.plan_state`, and lets the page go. A fan-out
killed mid-way re-runs from the committed cursor: no batch is planned twice, no resident is left out.

Residents' monthly mass sends are reserved in the same transaction as the batch that will reach them,
with a conditional UPDATE that never takes anyone past the limit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy import and_, case, func, or_, select, update

from broadcasts.audience import (
    MemberAudience,
    ResidentAudience,
    covers_whole_account,
    group_nodes,
    nodes_by_codes,
    subtree_codes_query,
)
from broadcasts.compose import robot_markdown
from models import (
    BatchKind,
    BatchStatus,
    Broadcast,
    BroadcastBatch,
    BroadcastStatus,
    MpTag,
    Outbox,
    Resident,
    audit,
    db,
    utcnow,
)
from models.region import MEMBER_ROLES

# WeChat's openid-list mass send takes 2–10,000 openids; a batch of 1 would be refused (40130).
MP_BATCH_RANGE = (4, 10_000)
WECOM_BATCH_RANGE = (1, 1_000)


class PlanningConflict(RuntimeError):
    """A page changed under us (another planner reserved the same residents); the step is retried."""


@dataclass(frozen=True)
class PlanSettings:
    mp_batch: int = 10_000
    wecom_batch: int = 1_000
    limit: int = 4
    use_tags: bool = True
    use_to_all: bool = True  # a whole-account notice as one `is_to_all` mass send, when that is exact

    def clamped(self) -> PlanSettings:
        return PlanSettings(
            mp_batch=min(max(self.mp_batch, MP_BATCH_RANGE[0]), MP_BATCH_RANGE[1]),
            wecom_batch=min(max(self.wecom_batch, WECOM_BATCH_RANGE[0]), WECOM_BATCH_RANGE[1]),
            limit=self.limit,
            use_tags=self.use_tags,
            use_to_all=self.use_to_all,
        )


@dataclass(frozen=True)
class PlannedBatch:
    batch_id: int
    outbox_id: int | None = None  # robot batches go out through the outbox


def plan_batches(
    broadcast_id: int, settings: PlanSettings, clock: Callable[[], datetime] = utcnow
) -> Iterator[PlannedBatch]:
    """Plan the broadcast's remaining batches, yielding each once its transaction has committed.

    Stops quietly when the broadcast is not (or no longer) planning, e.g. cancelled mid-way. `clock`
    stamps the batches and the end of planning.
    """
    settings = settings.clamped()
    conflicts = 0
    while True:
        broadcast = _lock(broadcast_id)
        if broadcast is None or broadcast.status != BroadcastStatus.PLANNING:
            db.session.rollback()
            return
        state = copy.deepcopy(broadcast.plan_state or {})
        if not state:
            state = _initial_state(broadcast)
        phases = state["phases"]
        if state["phase"] >= len(phases):
            _finish_planning(broadcast, clock())
            db.session.commit()
            return
        try:
            produced = _STEPS[phases[state["phase"]]](broadcast, state, settings, clock())
        except PlanningConflict:
            db.session.rollback()
            conflicts += 1
            if conflicts > 5:
                raise
            continue
        broadcast.plan_state = state
        db.session.commit()
        yield from produced


def _lock(broadcast_id: int) -> Broadcast | None:
    """Hold the broadcast row for this step. The no-op UPDATE also takes SQLite's write lock up front, so
    the page we read cannot change before we reserve it (PostgreSQL has FOR UPDATE for that)."""
    db.session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .values(status=Broadcast.status)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(select(Broadcast).filter_by(id=broadcast_id).with_for_update()).scalar_one_or_none()


def _initial_state(broadcast: Broadcast) -> dict:
    counts = broadcast.counts or {}
    phases = []
    if "group" in counts:
        phases.append("group")
    if "wecom_app" in counts:
        phases.append("wecom_app")
    if "mp" in counts:
        phases += ["mp_tags", "mp"]
    return {"phases": phases, "phase": 0, "after": None, "seq": {"group": 0, "wecom_app": 0, "mp": 0}}


def _paths(broadcast: Broadcast) -> tuple[str, ...]:
    return tuple(node.path for node in nodes_by_codes(broadcast.audience.get("regions", [])))


def _next_phase(state: dict) -> None:
    state["phase"] += 1
    state["after"] = None


def _new_batch(broadcast: Broadcast, state: dict, channel: str, now: datetime, **fields) -> BroadcastBatch:
    seq = state["seq"][channel]
    state["seq"][channel] = seq + 1
    batch = BroadcastBatch(
        broadcast_id=broadcast.id,
        channel=channel,
        seq=seq,
        status=BatchStatus.PENDING,
        clientmsgid=f"bc{broadcast.id}-{channel}-{seq}",
        created_at=now,
        **fields,
    )
    db.session.add(batch)
    db.session.flush()
    return batch


# --- steps: each plans a little, mutates `state`, returns what it created ---------------------------


def _plan_groups(broadcast: Broadcast, state: dict, settings: PlanSettings, now: datetime) -> list[PlannedBatch]:
    """One outbox message per tier group with a robot, top tier first (the delivery job keeps each robot
    within its per-minute budget)."""
    produced = []
    content = robot_markdown(broadcast)
    for node in group_nodes(_paths(broadcast)):
        message = Outbox(
            dedup_key=f"broadcast:{broadcast.id}:group:{node.code}",
            channel="wecom_robot",
            recipient=node.group["robot_key"],
            kind="broadcast",
            payload={"msgtype": "markdown", "content": content},
            created_at=now,
        )
        db.session.add(message)
        db.session.flush()
        batch = _new_batch(
            broadcast,
            state,
            "group",
            now,
            kind=BatchKind.ROBOT,
            target=node.code,
            recipients=[],
            size=1,
            outbox_id=message.id,
        )
        produced.append(PlannedBatch(batch.id, message.id))
    _next_phase(state)
    return produced


def _plan_wecom_page(broadcast: Broadcast, state: dict, settings: PlanSettings, now: datetime) -> list[PlannedBatch]:
    roles = tuple(sorted(set(broadcast.audience.get("roles", [])) & set(MEMBER_ROLES)))
    members = MemberAudience(_paths(broadcast), roles)
    userids = list(db.session.execute(members.userid_page_query(state["after"], settings.wecom_batch)).scalars())
    produced = []
    if userids:
        batch = _new_batch(
            broadcast, state, "wecom_app", now, kind=BatchKind.USERIDS, recipients=userids, size=len(userids)
        )
        produced.append(PlannedBatch(batch.id))
        state["after"] = userids[-1]
    if len(userids) < settings.wecom_batch:
        _next_phase(state)
    return produced


def _reserve(clause, month: str) -> int:
    """Count one mass send this month for every resident matching `clause`; returns how many."""
    return db.session.execute(
        update(Resident)
        .where(clause)
        .values(
            mass_count=case((Resident.mass_month == month, Resident.mass_count + 1), else_=1),
            mass_month=month,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult


def _plan_tag_sends(broadcast: Broadcast, state: dict, settings: PlanSettings, now: datetime) -> list[PlannedBatch]:
    """A region whose official-account tag matches its audience exactly gets one tag mass send; the
    rest (no tag yet, mirror out of date, resident tags asked for, someone over the limit) get openid lists."""
    produced = []
    openid_paths = []
    tags_asked = tuple(broadcast.audience.get("tags", []))
    regions = nodes_by_codes(broadcast.audience.get("regions", []))
    if covers_whole_account(regions, tags_asked):
        return _plan_whole_account(broadcast, state, settings, now)
    for node in regions:
        audience = ResidentAudience((node.path,), tags_asked, broadcast.month, settings.limit)
        tag_id = None if tags_asked or not settings.use_tags else _clean_tag(node.code, node.path, audience)
        if tag_id is None:
            openid_paths.append(node.path)
            continue
        size = _reserve(audience.sendable(), broadcast.month)
        if size:
            batch = _new_batch(
                broadcast,
                state,
                "mp",
                now,
                kind=BatchKind.TAG,
                target=f"{node.code}/{tag_id}",
                recipients=[],
                size=size,
                reserved=True,
            )
            produced.append(PlannedBatch(batch.id))
    _next_phase(state)
    state["openid_paths"] = openid_paths
    return produced


def _plan_whole_account(broadcast: Broadcast, state: dict, settings: PlanSettings, now: datetime) -> list[PlannedBatch]:
    """The county's whole audience is every follower, placed or not. One `is_to_all` mass send reaches
    exactly them (followers we have never heard of too) unless someone must be left out: a follower who
    opted out of notices, or one at the month's limit. Then openid lists over every known resident."""
    audience = ResidentAudience((), (), broadcast.month, settings.limit, whole_account=True)
    produced = []
    if settings.use_to_all and not _anyone_to_leave_out(audience):
        size = _reserve(audience.sendable(), broadcast.month)
        batch = _new_batch(
            broadcast, state, "mp", now, kind=BatchKind.ALL, target="all", recipients=[], size=size, reserved=True
        )
        produced.append(PlannedBatch(batch.id))
        state["openid_paths"] = []  # nobody is left for openid lists
    else:
        state["whole_account"] = True
    _next_phase(state)
    return produced


def _anyone_to_leave_out(audience: ResidentAudience) -> bool:
    opted_out = db.session.execute(
        select(func.count()).filter(Resident.subscribed.is_(True), Resident.notices.is_(False))
    ).scalar()
    over = db.session.execute(select(func.count()).filter(and_(audience.reachable(), audience.over_limit()))).scalar()
    return bool(opted_out or over)


def _clean_tag(code: str, path: str, audience: ResidentAudience) -> int | None:
    """The node's tag id when WeChat's tag members are exactly the residents we would send to."""
    tag_id = db.session.execute(
        select(MpTag.tag_id).filter(MpTag.node_code == code, MpTag.tag_id.is_not(None))
    ).scalar_one_or_none()
    if tag_id is None:
        return None
    stale = db.session.execute(
        select(func.count()).filter(
            Resident.mp_tag_dirty.is_(True),
            or_(Resident.grid_code.in_(subtree_codes_query((path,))), Resident.mp_tag_path.startswith(path)),
        )
    ).scalar()
    if stale:
        return None
    over = db.session.execute(select(func.count()).filter(and_(audience.reachable(), audience.over_limit()))).scalar()
    return None if over else int(tag_id)


def _plan_openid_page(broadcast: Broadcast, state: dict, settings: PlanSettings, now: datetime) -> list[PlannedBatch]:
    """One openid-list batch: the next residents in (node, id) order, read through the (grid_code, id) index
    node by node, so every page costs the same however far into a million subscribers it is."""
    audience = ResidentAudience(
        tuple(state.get("openid_paths") or ()),
        tuple(broadcast.audience.get("tags", [])),
        broadcast.month,
        settings.limit,
        whole_account=bool(state.get("whole_account")),
    )
    if "openid_codes" not in state:
        state["openid_codes"] = audience.node_codes() if audience.paths or audience.whole_account else []
        state["node"] = 0
    codes = state["openid_codes"]
    size = settings.mp_batch
    # Two extra rows tell us whether exactly one resident would be left for a last batch of one.
    wanted = size + 2
    rows: list[tuple[int, int, str]] = []  # (node index, resident id, openid)
    node, after = state["node"], state["after"]
    while node < len(codes) and len(rows) < wanted:
        query = select(Resident.id, Resident.openid).filter(audience.sendable_at(codes[node]))
        if after is not None:
            query = query.filter(Resident.id > after)
        found = db.session.execute(
            query.order_by(Resident.id).limit(wanted - len(rows)).with_for_update(of=Resident)
        ).all()
        rows += [(node, row_id, openid) for row_id, openid in found]
        if len(rows) < wanted:  # this node has no more: on to the next
            node, after = node + 1, None
    last_page = len(rows) <= size
    take = size if len(rows) >= size + 2 else size - 1 if len(rows) == size + 1 else len(rows)
    rows = rows[:take]
    produced = []
    if rows:
        # Per node, the page holds every sendable resident from its first id to its last, so the same
        # filter over that id range reserves exactly the page (no list of 10,000 parameters). Another count
        # means someone changed in between (another planner, a new subscriber): the step is redone.
        reserved = 0
        for index, segment in groupby(rows, key=lambda row: row[0]):
            ids = [row[1] for row in segment]
            in_page = and_(audience.sendable_at(codes[index]), Resident.id >= ids[0], Resident.id <= ids[-1])
            reserved += _reserve(in_page, broadcast.month)
        if reserved != len(rows):
            raise PlanningConflict(f"broadcast {broadcast.id}: page after {state['node']}/{state['after']} changed")
        batch = _new_batch(
            broadcast,
            state,
            "mp",
            now,
            kind=BatchKind.OPENIDS,
            recipients=[row[2] for row in rows],
            size=len(rows),
            reserved=True,
        )
        produced.append(PlannedBatch(batch.id))
        state["node"], state["after"] = rows[-1][0], rows[-1][1]
    if last_page:
        _next_phase(state)
    return produced


_STEPS = {
    "group": _plan_groups,
    "wecom_app": _plan_wecom_page,
    "mp_tags": _plan_tag_sends,
    "mp": _plan_openid_page,
}


def _finish_planning(broadcast: Broadcast, now: datetime) -> None:
    """Every batch exists: totals become exact, and the broadcast is sending."""
    planned = dict(
        db.session.execute(
            select(BroadcastBatch.channel, func.sum(BroadcastBatch.size))
            .filter(BroadcastBatch.broadcast_id == broadcast.id)
            .group_by(BroadcastBatch.channel)
        ).all()
    )
    counts = copy.deepcopy(broadcast.counts or {})
    for channel, counted in counts.items():
        exact = int(planned.get(channel) or 0)
        if exact != counted["total"]:
            # Residents subscribed, left or hit the limit between the request and the planning.
            counted["changed_during_planning"] = exact - counted["total"]
        counted["total"] = exact
    broadcast.counts = counts
    broadcast.status = BroadcastStatus.SENDING
    broadcast.planned_at = now
    audit(
        "system",
        "broadcast.planned",
        f"broadcast:{broadcast.id}",
        totals={channel: c["total"] for channel, c in counts.items()},
        batches={channel: seq for channel, seq in broadcast.plan_state.get("seq", {}).items()},
    )


# --- releasing reservations -------------------------------------------------------------------------


def release_reservation(batch: BroadcastBatch, month: str, limit: int) -> int:
    """Give back the month's mass send a batch reserved but will never make (cancelled or refused)."""
    if not batch.reserved:
        return 0
    if batch.kind == BatchKind.OPENIDS:
        clause = Resident.openid.in_(list(batch.recipients))
    elif batch.kind == BatchKind.TAG:
        # A tag batch reserved for the node's reachable residents; its target is "<node code>/<tag id>".
        nodes = nodes_by_codes([(batch.target or "").split("/", 1)[0]])
        if not nodes:
            batch.reserved = False
            return 0
        clause = ResidentAudience((nodes[0].path,), (), month, limit).reachable()
    elif batch.kind == BatchKind.ALL:
        clause = ResidentAudience((), (), month, limit, whole_account=True).reachable()
    else:
        batch.reserved = False
        return 0
    released = db.session.execute(
        update(Resident)
        .where(clause, Resident.mass_month == month, Resident.mass_count > 0)
        .values(mass_count=Resident.mass_count - 1)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
    batch.reserved = False
    return released
