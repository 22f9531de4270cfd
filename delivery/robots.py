"""Group-robot delivery: one sender per robot key drains that robot's pending Outbox rows, oldest first, within
the robot's budget of 20 messages a minute shared by every worker (bot.clients.wecom_robot.RobotBudget).

- Budget left for the whole queue: each row goes as its own message; a row over the robot's size limit goes
  in several parts (split at line breaks, never cut), its progress kept in the row.
- More rows queued than sends left this minute: rows are coalesced into digest messages (as many whole rows as
  fit in 4,096 bytes of markdown), so a burst of 100 notices costs a handful of calls and nothing is dropped.
- Budget used up: a flush is scheduled (RQ enqueue_in) for when the oldest send leaves the window.
- A key WeCom rejects (93000 family): the channel is marked broken and its rows stay PENDING. The sweep
  probes a broken robot every PROBE_EVERY seconds with its oldest row, and moves the rows of a key no node
  uses any more onto the node's current key (the key was fixed by re-importing the region).
Only one flush per robot runs at a time (a Redis lock), so the order holds and the budget is never raced.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import LockError

from bot.clients import PermanentSendError, RetryableSendError, get_client
from bot.clients.wecom import split_utf8
from bot.clients.wecom_robot import (
    ROBOT_MARKDOWN_LIMIT,
    RobotBudgetExhausted,
    RobotChannelBroken,
    WeComRobotClient,
    broken_info,
    broken_robots,
    clear_broken,
    content_limit,
    note_probe,
    robot_id,
)
from config.queues import QueueNames
from models import Outbox, OutboxStatus, RegionNode, Ticket, add_event, db, utcnow
from ops.queue import enqueue, get_queue, redis_connection

log = logging.getLogger(__name__)

ROBOT_CHANNEL = "wecom_robot"
# The budget's clock (seconds). Tests replace it to run minutes of traffic without sleeping.
clock = time.time

FLUSH_LOCK_TIMEOUT = 300
# Long enough for a flush that is finishing; never long enough to hold up a worker behind a busy robot.
FLUSH_LOCK_WAIT = 0.5
BUSY_RETRY = 2.0
RETRY_DELAY = 30.0
MIN_WAKE = 0.5
PROBE_EVERY = 15 * 60
MAX_ROWS = 500


@dataclass
class FlushResult:
    calls: int = 0
    rows_sent: int = 0
    digests: int = 0
    pending: int = 0
    wake_in: float | None = None
    broken: bool = False
    busy: bool = False


@dataclass
class _Message:
    rows: list[Outbox]
    payload: dict
    part: tuple[int, int] | None = None  # (index, count) of a long row's part
    digest: bool = False


def flush_robot(robot_key: str, now: float | None = None, probe: bool = False) -> dict:
    """Send what this robot's budget allows now, oldest first; schedule the rest. Returns the FlushResult.

    `probe=True` tries one message on a channel marked broken: success clears the mark and the flush goes on.
    """
    redis = redis_connection()
    lock = redis.lock(f"wecom:robot:{robot_id(robot_key)}:flush", timeout=FLUSH_LOCK_TIMEOUT)
    if not lock.acquire(blocking=True, blocking_timeout=FLUSH_LOCK_WAIT):
        # Another worker is draining this robot; it may have read the queue before our row was committed.
        schedule_flush(robot_key, BUSY_RETRY)
        return asdict(FlushResult(busy=True))
    redis.delete(_requested_key(robot_key))  # rows committed from now on need (and get) a new request
    try:
        result = _drain(robot_key, now, probe)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("robot %s flush outlived its lock", robot_id(robot_key))
    if result.wake_in is not None:
        schedule_flush(robot_key, result.wake_in)
    return asdict(result)


def _requested_key(robot_key: str) -> str:
    return f"wecom:robot:{robot_id(robot_key)}:requested"


def request_flush(robot_key: str) -> bool:
    """Ask for a flush job now, unless one is already queued and has not started reading the queue."""
    if not redis_connection().set(_requested_key(robot_key), "1", nx=True, ex=FLUSH_LOCK_TIMEOUT):
        return False
    rid = robot_id(robot_key)
    return enqueue(flush_robot, robot_key, queue=QueueNames.DELIVERY, job_id=f"robot-{rid}-{int(time.time() * 1e6)}")


def schedule_flush(robot_key: str, delay: float) -> bool:
    """One delayed flush per robot at a time (a Redis marker that lives until it is due)."""
    delay = max(delay, MIN_WAKE)
    redis = redis_connection()
    rid = robot_id(robot_key)
    if not redis.set(f"wecom:robot:{rid}:wake", "1", nx=True, px=int(delay * 1000)):
        return False
    get_queue(QueueNames.DELIVERY).enqueue_in(
        timedelta(seconds=delay), flush_robot, robot_key, job_id=f"robot-{rid}-{int(time.time() * 1000)}"
    )
    return True


def wake_scheduled(robot_key: str) -> bool:
    return bool(redis_connection().exists(f"wecom:robot:{robot_id(robot_key)}:wake"))


def _pending(robot_key: str) -> list[Outbox]:
    return list(
        db.session.execute(
            db.select(Outbox)
            .filter_by(channel=ROBOT_CHANNEL, recipient=robot_key, status=OutboxStatus.PENDING)
            .order_by(Outbox.id)
            .limit(MAX_ROWS)
        ).scalars()
    )


def _drain(robot_key: str, now: float | None, probe: bool) -> FlushResult:
    client = get_client(ROBOT_CHANNEL)
    assert isinstance(client, WeComRobotClient)
    redis = redis_connection()
    result = FlushResult()
    while True:
        moment = clock() if now is None else now
        rows = _pending(robot_key)
        result.pending = len(rows)
        if not rows:
            break
        if not probe and broken_info(redis, robot_key) is not None:
            result.broken = True
            break
        free = client.budget.available(robot_key, moment)
        if free == 0:
            result.wake_in = max(client.budget.wait(robot_key, moment), MIN_WAKE)
            break
        message = _next_message(rows, free)
        try:
            client.send(robot_key, message.payload, now=moment, probe=probe)
        except RobotBudgetExhausted as exc:
            _note_error(message.rows, exc)
            result.wake_in = max(exc.retry_after, MIN_WAKE)
            break
        except RobotChannelBroken as exc:
            _note_error(message.rows, exc)
            if probe:
                note_probe(redis, robot_key, time.time())
            result.broken = True
            break
        except RetryableSendError as exc:
            _note_error(message.rows, exc)
            result.wake_in = RETRY_DELAY
            break
        except (PermanentSendError, ValueError) as exc:  # ValueError: a payload no robot can send
            _mark_failed(message.rows, str(exc))
            db.session.commit()
            continue
        probe = False  # it went through: the channel works
        _mark_sent(message)
        db.session.commit()
        result.calls += 1
        result.digests += int(message.digest)
        result.rows_sent += len(message.rows) if message.part is None or message.part[0] + 1 == message.part[1] else 0
    result.pending = len(_pending(robot_key)) if result.pending else 0
    return result


def _row_content(row: Outbox) -> tuple[str, str]:
    payload = row.payload or {}
    content = payload.get("content") if "content" in payload else payload.get("text", "")
    return payload.get("msgtype") or "text", str(content or "")


def _next_message(rows: list[Outbox], free: int) -> _Message:
    head = rows[0]
    msgtype, content = _row_content(head)
    parts = split_utf8(content, content_limit(msgtype))
    done = int((head.payload or {}).get("parts_sent") or 0)
    if len(parts) > 1 or done:
        index = min(done, len(parts) - 1)
        payload = {**head.payload, "msgtype": msgtype, "content": parts[index]}
        if index:
            payload.pop("mentioned_list", None)  # @-mention once, with the first part
        return _Message([head], payload, part=(index, len(parts)))
    if len(rows) <= free:
        return _Message([head], head.payload)
    packed: list[Outbox] = []
    for row in rows:
        candidate = packed + [row]
        if len(digest_markdown(candidate).encode("utf-8")) > ROBOT_MARKDOWN_LIMIT:
            break
        packed = candidate
    if len(packed) <= 1:
        return _Message([head], head.payload)
    return _Message(packed, {"msgtype": "markdown", "content": digest_markdown(packed)}, digest=True)


def digest_markdown(rows: list[Outbox]) -> str:
    """Several queued notices as one markdown message; text notices keep their @-mentions as <@userid>."""
    lines = [f"**【消息汇总】群机器人每分钟限发20条，以下{len(rows)}条通知合并发送**"]
    for index, row in enumerate(rows, 1):
        msgtype, content = _row_content(row)
        if msgtype != "markdown":
            mentions = [m for m in (row.payload or {}).get("mentioned_list") or [] if m != "@all"]
            content = content + ("\n" + " ".join(f"<@{m}>" for m in mentions) if mentions else "")
        lines.append(f"\n**({index})** {content}")
    return "\n".join(lines)


def _mark_sent(message: _Message) -> None:
    sent_at = utcnow()
    if message.part is not None and message.part[0] + 1 < message.part[1]:
        row = message.rows[0]
        row.payload = {**row.payload, "parts_sent": message.part[0] + 1}
        row.attempts += 1
        row.last_error = None
        return
    first = message.rows[0].id
    for row in message.rows:
        row.status = OutboxStatus.SENT
        row.sent_at = sent_at
        row.attempts += 1
        row.last_error = None
        if message.digest:
            row.payload = {**row.payload, "sent_in_digest_with": first}


def _note_error(rows: list[Outbox], exc: Exception) -> None:
    for row in rows:
        row.last_error = str(exc)[:2000]
    db.session.commit()


def _mark_failed(rows: list[Outbox], error: str) -> None:
    for row in rows:
        row.status = OutboxStatus.FAILED
        row.last_error = error[:2000]
        row.attempts += 1
        if row.ticket_id:
            ticket = db.session.get(Ticket, row.ticket_id)
            if ticket is not None:
                add_event(ticket, "notify_failed", "system", note=error[:500], outbox_id=row.id, message_kind=row.kind)
    log.warning("robot rows %s failed permanently: %s", [row.id for row in rows], error)


def _configured_keys() -> dict[str, str]:
    """Robot key → node code, for every node whose group has a robot."""
    keys: dict[str, str] = {}
    groups = db.select(RegionNode).filter(RegionNode.group.is_not(None), RegionNode.retired_at.is_(None))
    for node in db.session.execute(groups).scalars():
        key = (node.group or {}).get("robot_key")
        if key:
            keys.setdefault(str(key), node.code)
    return keys


def _pending_keys() -> list[str]:
    return list(
        db.session.execute(
            db.select(Outbox.recipient)
            .filter(Outbox.channel == ROBOT_CHANNEL, Outbox.status == OutboxStatus.PENDING)
            .group_by(Outbox.recipient)
        ).scalars()
    )


def retarget_replaced_keys() -> int:
    """Rows queued for a key no node uses any more go to their node's current key (kept in order)."""
    configured = _configured_keys()
    moved = 0
    replaced = [key for key in _pending_keys() if key not in configured]
    for key in replaced:
        rows = db.session.execute(
            db.select(Outbox).filter_by(channel=ROBOT_CHANNEL, recipient=key, status=OutboxStatus.PENDING)
        ).scalars()
        for row in rows:
            node = db.session.execute(
                db.select(RegionNode).filter_by(code=(row.payload or {}).get("node"))
            ).scalar_one_or_none()
            new_key = (node.group or {}).get("robot_key") if node is not None else None
            if new_key and new_key != key:
                row.recipient = str(new_key)
                moved += 1
    db.session.commit()
    redis = redis_connection()
    for key in set(replaced) - set(_pending_keys()):
        clear_broken(redis, key)  # nothing waits on the old key any more: stop reporting it
    return moved


def sweep_robots() -> dict:
    """Periodic: retarget replaced keys, probe broken robots now and then, and flush any robot with rows
    waiting but no flush scheduled (a lost wake-up, a worker without the scheduler, a restart)."""
    redis = redis_connection()
    moved = retarget_replaced_keys()
    flushed = probed = 0
    minute = int(time.time() // 60)
    for key in _pending_keys():
        rid = robot_id(key)
        info = broken_info(redis, key)
        if info is not None:
            if time.time() - float(info.get("probed") or 0) >= PROBE_EVERY:
                note_probe(redis, key, time.time())
                probed += enqueue(
                    flush_robot, key, queue=QueueNames.DELIVERY, job_id=f"robot-{rid}-probe-{minute}", probe=True
                )
            continue
        if wake_scheduled(key):
            continue
        flushed += enqueue(flush_robot, key, queue=QueueNames.DELIVERY, job_id=f"robot-{rid}-sweep-{minute}")
    return {"retargeted": moved, "flushed": flushed, "probed": probed}


def robot_health() -> dict:
    """For /healthz and the console: robots whose key WeCom rejected, with their node and backlog."""
    redis = redis_connection()
    broken = broken_robots(redis)
    configured = _configured_keys()
    counts = dict(
        db.session.execute(
            db.select(Outbox.recipient, db.func.count(Outbox.id))
            .filter(Outbox.channel == ROBOT_CHANNEL, Outbox.status == OutboxStatus.PENDING)
            .group_by(Outbox.recipient)
        ).all()
    )
    by_id = {robot_id(key): key for key in set(configured) | set(counts)}
    report = []
    for rid, info in sorted(broken.items()):
        key = by_id.get(rid)
        since = datetime.fromtimestamp(float(info.get("since") or 0), UTC).isoformat()
        report.append(
            {
                "robot": rid,
                "node": configured.get(key) if key else None,
                "errcode": info.get("errcode"),
                "errmsg": info.get("errmsg"),
                "since": since,
                "pending": counts.get(key, 0) if key else 0,
            }
        )
    return {"broken": report, "pending": sum(counts.values())}
