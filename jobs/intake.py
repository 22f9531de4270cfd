"""Turning stored inbound pushes into tickets and replies, in batches.

One RQ job per message costs ~60 Redis round trips; a burst of thousands would spend the worker on queue
bookkeeping. So the webhook appends its stored rows' ids to a Redis list (admit_inbound: one script call
per batch of pushes, which also counts rate limits) and makes sure a drain job is scheduled; a drain job
claims up to BATCH ids at a time, processes each in its own database transaction and sends the
acknowledgements over a pooled connection, falling back to a retrying delivery job only when a send
fails. When a backlog builds up, a drain recruits another (one per slot, up to DRAIN_SLOTS) so several
workers share it.

A drain claims ids by moving them into its slot's claim list, so a drain killed mid-batch leaves them
there: the next drain of that slot takes them back first, and the recovery sweep hands back the claims of
a slot whose drain is gone. Without that they would wait for the whole backlog to clear. Nothing depends on
Redis keeping the lists either: the database row stays RECEIVED until processed, and recover_inbound
(every minute) re-feeds rows that were stored but never processed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app

from config.queues import QueueNames
from delivery.outbox import deliver_many, enqueue_delivery
from handlers.intake import handle_inbound
from handlers.parsing import get_parser
from models import InboundMessage, InboundStatus, db, utcnow
from ops import ratelimit
from ops.queue import enqueue, redis_connection

log = logging.getLogger(__name__)

PENDING_KEY = "intake:pending"
DRAIN_FLAG = "intake:drain:{slot}"
CLAIM_KEY = "intake:claimed:{slot}"
DRAIN_SLOTS = 4
BATCH = 200
# A drain that died lets its slot go after this long; the recovery sweep then re-feeds its rows.
FLAG_TTL = 120
MAX_ATTEMPTS = 5
# Arrivals per second are counted in Redis; while they are at or above INTAKE_BURST_RATE (default
# BURST_RATE) the drain waits before each group of YIELD_EVERY messages, checking every BURST_PAUSE seconds,
# for at most BURST_MAX_WAIT (so a flood that never ends still sees its messages answered).
ARRIVALS_KEY = "intake:arrivals:{second}"
BURST_RATE = 400
BURST_PAUSE = 0.25
BURST_MAX_WAIT = 5.0
YIELD_EVERY = 20


@dataclass
class Admission:
    """A push the webhook has stored: its row (None for a platform retry, nothing to queue), the counter
    (hash, field) it adds one to, and the rate limits it counts against as (reason, counter key, limit)."""

    row_id: int | None
    metric: tuple[str, str] | None = None
    limits: list[tuple[str, str, int]] = field(default_factory=list)


# Counting pushes against their limits and queueing the new ones under them, atomically, in one round trip:
# the webhook's only Redis call for a whole batch of pushes. The batch travels as one JSON argument and the
# answer comes back as one JSON string: packing and parsing dozens of separate arguments and replies cost the
# web process more CPU than the round trip itself.
_ADMIT = """
local batch = cjson.decode(ARGV[1])
local counter_ttl, flag_ttl = batch[1], batch[2]
local queued, over = {}, {}
for _, push in ipairs(batch[3]) do
  local row_id, metric_hash, metric_field, limits = push[1], push[2], push[3], push[4]
  if metric_hash ~= '' then redis.call('HINCRBY', metric_hash, metric_field, 1) end
  local exceeded = 0
  for j, limit in ipairs(limits) do
    local count = redis.call('INCR', limit[1])
    redis.call('EXPIRE', limit[1], counter_ttl)
    if exceeded == 0 and count > limit[2] then exceeded = j end
  end
  over[#over + 1] = exceeded
  if exceeded == 0 and row_id ~= '' then queued[#queued + 1] = row_id end
end
local scheduled = 0
if #queued > 0 then
  redis.call('RPUSH', KEYS[1], unpack(queued))
  if redis.call('SET', KEYS[2], 1, 'NX', 'EX', flag_ttl) then scheduled = 1 end
  redis.call('INCRBY', KEYS[3], #queued)
  redis.call('EXPIRE', KEYS[3], 10)
end
return cjson.encode({scheduled, over})
"""


# Moving the next ids from the queue into a slot's claim list, atomically, so a kill cannot drop them.
_CLAIM = """
local ids = redis.call('LPOP', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
if not ids then return {} end
redis.call('RPUSH', KEYS[2], unpack(ids))
return ids
"""

# Handing a dead drain's claim back to the queue.
_RELEASE = """
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
if #ids > 0 then redis.call('RPUSH', KEYS[1], unpack(ids)) end
redis.call('DEL', KEYS[2])
return #ids
"""


def admit_inbound(admissions: list[Admission]) -> list[str | None]:
    """Count each stored push against its limits and queue the new ones that are under them; per push, the
    reason it is over a limit (then it waits for the recovery sweep) or None. Raises RedisError."""
    if not admissions:
        return []
    pushes = [
        [
            str(admission.row_id or ""),
            *(admission.metric or ("", "")),
            [[key, limit] for _, key, limit in admission.limits],
        ]
        for admission in admissions
    ]
    redis = redis_connection()
    keys = [PENDING_KEY, DRAIN_FLAG.format(slot=0), ARRIVALS_KEY.format(second=int(time.time()))]
    answer = redis.register_script(_ADMIT)(keys=keys, args=[json.dumps([ratelimit.COUNTER_TTL, _flag_ttl(), pushes])])
    scheduled, over = json.loads(answer)
    if scheduled:
        _start_drain(0)
    return [a.limits[index - 1][0] if index else None for a, index in zip(admissions, over, strict=True)]


def _flag_ttl() -> int:
    return int(current_app.config.get("INTAKE_FLAG_TTL") or FLAG_TTL)


def _start_drain(slot: int) -> None:
    # The job id only has to be unique among live jobs; the flag already guarantees one drain per slot.
    enqueue(
        drain_inbound,
        slot,
        queue=QueueNames.INTAKE,
        job_id=f"drain-{slot}-{utcnow().timestamp():.6f}".replace(".", "-"),
    )


def drain_inbound(slot: int = 0) -> int:
    """Process queued pushes until the queue is empty; returns how many were processed."""
    redis = redis_connection()
    flag = DRAIN_FLAG.format(slot=slot)
    claim = CLAIM_KEY.format(slot=slot)
    ttl = _flag_ttl()
    # What a killed predecessor in this slot had claimed and not finished (processing is idempotent).
    ids = [int(value) for value in redis.lrange(claim, 0, -1)]
    processed = _process_claim(redis, flag, claim, ids) if ids else 0
    while True:
        raw = redis.register_script(_CLAIM)(keys=[PENDING_KEY, claim], args=[BATCH])
        if not raw:
            redis.delete(flag)
            # A push may have arrived between the empty pop and the delete, seen our flag, and not scheduled.
            if redis.llen(PENDING_KEY) and redis.set(flag, 1, nx=True, ex=ttl):
                continue
            return processed
        if slot + 1 < DRAIN_SLOTS and redis.llen(PENDING_KEY) > BATCH:
            if redis.set(DRAIN_FLAG.format(slot=slot + 1), 1, nx=True, ex=ttl):
                _start_drain(slot + 1)
        processed += _process_claim(redis, flag, claim, [int(value) for value in raw])


def _process_claim(redis, flag: str, claim: str, ids: list[int]) -> int:
    """Process claimed ids in groups, dropping each group from the claim once it is done."""
    processed = 0
    for start in range(0, len(ids), YIELD_EVERY):
        # Renewed per group (set, not expire: it may have lapsed while a slow group ran), so a live drain
        # keeps its slot and its claim.
        redis.set(flag, 1, ex=_flag_ttl())
        _yield_to_a_burst(redis)
        group = ids[start : start + YIELD_EVERY]
        processed += process_batch(group)
        redis.ltrim(claim, len(group), -1)
    return processed


def _yield_to_a_burst(redis) -> None:
    """While pushes arrive fast, wait: the webhook must win the CPU and the SQLite write lock during a burst
    (WeChat's 5-second window), and a worker descheduled while it holds the lock stalls every push behind it.
    The backlog can wait seconds."""
    burst_rate = int(current_app.config.get("INTAKE_BURST_RATE", BURST_RATE))
    waited = 0.0
    while burst_rate and waited < BURST_MAX_WAIT:
        second = int(time.time())
        # The last full second, and this one so far: a burst is seen from its first half-second.
        counts = redis.mget(ARRIVALS_KEY.format(second=second - 1), ARRIVALS_KEY.format(second=second))
        if max(int(count or 0) for count in counts) < burst_rate:
            return
        time.sleep(BURST_PAUSE)
        waited += BURST_PAUSE


def process_batch(inbound_ids: list[int]) -> int:
    """Each push in its own transaction; then the batch's acknowledgements go out together."""
    config = current_app.config
    parser = get_parser(current_app.instance_path)
    outbox_ids: list[int] = []
    done = 0
    for inbound_id in inbound_ids:
        try:
            outbox_ids += handle_inbound(
                inbound_id,
                parser,
                utcnow(),
                attach_window=timedelta(seconds=config["ATTACH_WINDOW"]),
                dialog_ttl=timedelta(seconds=config["DIALOG_TTL"]),
            )
        except Exception as exc:  # one bad message must not stop the batch; the row keeps the error
            db.session.rollback()
            log.exception("inbound %s failed", inbound_id)
            _record_failure(inbound_id, exc)
            continue
        done += 1
    if outbox_ids:
        try:
            deliver_many(outbox_ids)
        except Exception:  # the rows are still PENDING: hand each to a retrying job
            db.session.rollback()
            log.exception("batch delivery failed; falling back to delivery jobs")
            for outbox_id in outbox_ids:
                enqueue_delivery(outbox_id)
    return done


def _record_failure(inbound_id: int, exc: Exception) -> None:
    row = db.session.get(InboundMessage, inbound_id)
    if row is not None:
        row.attempts += 1
        row.error = f"{type(exc).__name__}: {exc}"[:2000]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = InboundStatus.FAILED  # visible to staff; the recovery sweep stops retrying it
        db.session.commit()


def recover_inbound(older_than_seconds: int = 60, limit: int = 5000) -> int:
    """Re-feed pushes that were stored but never processed (Redis was down or emptied, a worker died).

    First the claims of drains that are gone go back to the queue. Rows are re-fed from the database only
    when no drain is alive and the queue is empty: during a long burst the backlog is older than a minute
    but still queued, and feeding it twice would only waste work (processing is idempotent). A queue left
    with no drain alive (its worker was killed) gets a new drain instead.
    """
    redis = redis_connection()
    alive = [bool(redis.exists(DRAIN_FLAG.format(slot=s))) for s in range(DRAIN_SLOTS)]
    released = sum(
        redis.register_script(_RELEASE)(keys=[PENDING_KEY, CLAIM_KEY.format(slot=s)])
        for s in range(DRAIN_SLOTS)
        if not alive[s]
    )
    if released:
        log.info("handed back %d pushes claimed by drains that died", released)
    if any(alive):
        return 0
    if redis.llen(PENDING_KEY):
        # Queued, but no drain alive (it died with its worker, or its job was lost): start one.
        if redis.set(DRAIN_FLAG.format(slot=0), 1, nx=True, ex=_flag_ttl()):
            _start_drain(0)
        return 0
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = (
        db.session.execute(
            db.select(InboundMessage.id)
            .filter(InboundMessage.status == InboundStatus.RECEIVED, InboundMessage.received_at <= cutoff)
            .order_by(InboundMessage.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    for start in range(0, len(ids), 1000):
        redis.rpush(PENDING_KEY, *ids[start : start + 1000])
    if ids and redis.set(DRAIN_FLAG.format(slot=0), 1, nx=True, ex=_flag_ttl()):
        _start_drain(0)
    if ids:
        log.info("recovered %d stored pushes", len(ids))
    return len(ids)
