"""WeCom group robots (群机器人): webhook sends within a per-robot budget shared by every process, and the
robot channel's state (a key WeCom rejected) in Redis.

A robot takes at most 20 messages a minute; beyond that WeCom answers errcode 45009. The budget is a sliding
window in Redis (a sorted set of send times per robot, checked and updated by one Lua script), so any 60
seconds hold at most 20 calls however many workers send. A key WeCom rejects (the 93000 family) marks the
channel broken: nothing more is tried on it and its messages stay pending until the key is fixed.

Sample call::

    POST {WECOM_API_BASE}/cgi-bin/webhook/send?key=KEY
    {"msgtype": "markdown", "markdown": {"content": "**新工单 250101000001** …<@zhangwy>"}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid

import requests
from redis import Redis

from bot.clients.base import OutboundClient, PermanentSendError, RetryableSendError, SendError, http_session

log = logging.getLogger(__name__)

ROBOT_TEXT_LIMIT = 2048
ROBOT_MARKDOWN_LIMIT = 4096
ROBOT_PER_MINUTE = 20
ROBOT_WINDOW = 60.0
RATE_LIMITED = 45009
BROKEN_HASH = "wecom:robots:broken"

# KEYS[1] the robot's window; ARGV now, window, limit, member. Returns "0" when a slot was taken, else the
# seconds until the oldest send leaves the window (as a string: Redis would truncate a Lua float).
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 5)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))
"""


def robot_id(key: str) -> str:
    """A stable, non-secret name for a robot key (Redis keys, job ids, logs): the key itself is a credential."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def content_limit(msgtype: str) -> int:
    return ROBOT_MARKDOWN_LIMIT if msgtype == "markdown" else ROBOT_TEXT_LIMIT


def robot_body(payload: dict) -> dict:
    """The webhook JSON for an outbox payload {"msgtype", "content", "mentioned_list"}. Mentions go in
    `mentioned_list` for text; markdown has none, so its content carries `<@userid>` itself."""
    msgtype = payload.get("msgtype") or "text"
    content = str(payload.get("content") if "content" in payload else payload.get("text", ""))
    if len(content.encode("utf-8")) > content_limit(msgtype):
        raise ValueError(f"{msgtype} content over {content_limit(msgtype)} bytes: split it before sending")
    if msgtype == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": content}}
    if msgtype != "text":
        raise ValueError(f"robot msgtype {msgtype!r} is not text or markdown")
    text: dict = {"content": content}
    if payload.get("mentioned_list"):
        text["mentioned_list"] = list(payload["mentioned_list"])
    if payload.get("mentioned_mobile_list"):
        text["mentioned_mobile_list"] = list(payload["mentioned_mobile_list"])
    return {"msgtype": "text", "text": text}


def is_broken_errcode(errcode) -> bool:
    """93000 invalid webhook key, and its family (robot removed or disabled): the key will not work again."""
    return isinstance(errcode, int) and 93000 <= errcode < 94000


class RobotBudgetExhausted(RetryableSendError):
    """No send left in this robot's minute: try again in `retry_after` seconds (nothing was sent)."""

    def __init__(self, message: str, retry_after: float, errcode: int | None = None):
        super().__init__(message, errcode)
        self.retry_after = retry_after


class RobotChannelBroken(SendError):
    """WeCom rejected the robot key: the message stays queued until the key is fixed."""


class RobotBudget:
    """At most `limit` sends per `window` seconds per robot, across every process sharing this Redis.

    `now` is passed in (seconds): the budget follows whatever clock the caller keeps, so tests drive it.
    """

    def __init__(self, redis: Redis, limit: int = ROBOT_PER_MINUTE, window: float = ROBOT_WINDOW):
        self.redis = redis
        self.limit = limit
        self.window = window
        self._acquire = redis.register_script(_ACQUIRE)

    @staticmethod
    def _key(robot_key: str) -> str:
        return f"wecom:robot:{robot_id(robot_key)}:sends"

    def acquire(self, robot_key: str, now: float) -> float:
        """Take one send: 0.0 when granted, else how many seconds until one frees up."""
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        wait = float(self._acquire(keys=[self._key(robot_key)], args=[repr(now), self.window, self.limit, member]))
        return max(wait, 0.0) if wait else 0.0

    def used(self, robot_key: str, now: float) -> int:
        return int(self.redis.zcount(self._key(robot_key), f"({now - self.window!r}", "+inf"))

    def available(self, robot_key: str, now: float) -> int:
        return max(self.limit - self.used(robot_key, now), 0)

    def wait(self, robot_key: str, now: float) -> float:
        """Seconds until a send is free (0.0 when one is free now)."""
        if self.available(robot_key, now):
            return 0.0
        oldest = self.redis.zrangebyscore(self._key(robot_key), f"({now - self.window!r}", "+inf", 0, 1, True)
        return max(float(oldest[0][1]) + self.window - now, 0.0) if oldest else 0.0


def mark_broken(redis: Redis, robot_key: str, errcode: int | None, errmsg: str) -> None:
    info = {"errcode": errcode, "errmsg": errmsg[:200], "since": time.time(), "probed": time.time()}
    if redis.hsetnx(BROKEN_HASH, robot_id(robot_key), json.dumps(info)):
        log.warning("WeCom robot %s marked broken: errcode %s %s", robot_id(robot_key), errcode, errmsg)


def clear_broken(redis: Redis, robot_key: str) -> bool:
    cleared = bool(redis.hdel(BROKEN_HASH, robot_id(robot_key)))
    if cleared:
        log.info("WeCom robot %s works again", robot_id(robot_key))
    return cleared


def broken_info(redis: Redis, robot_key: str) -> dict | None:
    raw = redis.hget(BROKEN_HASH, robot_id(robot_key))
    return json.loads(raw) if raw else None


def note_probe(redis: Redis, robot_key: str, now: float) -> None:
    info = broken_info(redis, robot_key)
    if info is not None:
        info["probed"] = now
        redis.hset(BROKEN_HASH, robot_id(robot_key), json.dumps(info))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def broken_robots(redis: Redis) -> dict[str, dict]:
    """Robot id → {errcode, errmsg, since, probed} for every robot channel marked broken."""
    return {_text(k): json.loads(v) for k, v in redis.hgetall(BROKEN_HASH).items()}


class WeComRobotClient(OutboundClient):
    """Outbox channel `wecom_robot` (recipient = robot key). Checks the channel, takes a send from the
    robot's budget, posts. Over budget → RobotBudgetExhausted (retry later, nothing sent); 45009 from WeCom →
    the same; a rejected key → RobotChannelBroken (and the channel is marked broken)."""

    name = "wecom_robot"

    def __init__(self, api_base: str, redis: Redis, timeout: float = 5.0, budget: RobotBudget | None = None):
        self.api_base = api_base.rstrip("/")
        self.redis = redis
        self.timeout = timeout
        self.budget = budget or RobotBudget(redis)

    def send(
        self, recipient: str, payload: dict, dedup_key: str | None = None, now: float | None = None, probe=False
    ) -> dict:
        """`probe=True` tries a broken channel once (to find out whether its key was fixed)."""
        if not probe and broken_info(self.redis, recipient) is not None:
            raise RobotChannelBroken(f"robot {robot_id(recipient)} is marked broken")
        body = robot_body(payload)
        wait = self.budget.acquire(recipient, time.time() if now is None else now)
        if wait > 0:
            raise RobotBudgetExhausted(f"robot {robot_id(recipient)} used its {self.budget.limit}/minute", wait)
        data = self.post(recipient, body)
        if probe:
            clear_broken(self.redis, recipient)
        return data

    def post(self, robot_key: str, body: dict) -> dict:
        """One webhook call; errcodes mapped to the send errors."""
        what = f"robot {robot_id(robot_key)}"
        try:
            response = http_session().post(
                f"{self.api_base}/cgi-bin/webhook/send", params={"key": robot_key}, json=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise RetryableSendError(f"{what}: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableSendError(f"{what}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise RetryableSendError(f"{what}: non-JSON answer (HTTP {response.status_code})") from None
        errcode = data.get("errcode", 0)
        if errcode == 0:
            return data
        message = f"{what}: errcode {errcode} {data.get('errmsg', '')}".strip()
        if errcode == RATE_LIMITED:
            raise RobotBudgetExhausted(message, ROBOT_WINDOW, errcode)
        if is_broken_errcode(errcode):
            mark_broken(self.redis, robot_key, errcode, str(data.get("errmsg", "")))
            raise RobotChannelBroken(message, errcode)
        if errcode == -1:
            raise RetryableSendError(message, errcode)
        raise PermanentSendError(message, errcode)
