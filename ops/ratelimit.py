"""Rate limits shared by every web process: fixed one-minute windows counted in Redis.

Inbound pushes (RATE_LIMIT_OPENID, RATE_LIMIT_IP per minute): a push whose signature is valid is always
stored — a resident's message is never dropped — but over a limit it is not queued; it is flagged
(`payload["_deferred"]`) and the recovery sweep processes it a minute later. Requests that fail the
platform checks (forged signature, stale timestamp, bad body) are counted per IP; past
RATE_LIMIT_REFUSED_IP a minute they are answered 429 instead of 403/400. Console sign-in:
RATE_LIMIT_LOGIN_IP and RATE_LIMIT_LOGIN_USER tries a minute, then 429 with a clear message (on top of
accounts.throttle's growing delay after repeated failures; neither ever locks an account).

Limits fail open: when Redis is down nothing is limited, because refusing WeChat would lose messages.
"""

from __future__ import annotations

import logging
import time

from flask import current_app, request
from redis.exceptions import RedisError

from ops import metrics

log = logging.getLogger(__name__)

WINDOW = 60
COUNTER_TTL = WINDOW * 2  # a window's counter outlives it by one window
clock = time.time  # tests pin it, so a run never straddles two windows
TOO_MANY = "too many requests"
LOGIN_TOO_MANY = "登录尝试过于频繁，请一分钟后再试 / too many sign-in attempts, try again in a minute"


def client_ip() -> str:
    """The caller's address (X-Forwarded-For is honoured only through TRUSTED_PROXIES, see app.py)."""
    return request.remote_addr or "unknown"


def _count(*keys: str, metric: tuple | None = None) -> list[int] | None:
    """Increment each key's counter in the current window (and a metric, same round trip); None when Redis
    cannot be reached."""
    try:
        pipe = current_app.extensions["redis"].pipeline(transaction=False)
        for key in keys:
            name = _counter(key)
            pipe.incr(name)
            pipe.expire(name, COUNTER_TTL)
        if metric is not None:
            metrics.incr_in(pipe, *metric)
        results = pipe.execute()
    except RedisError as exc:
        log.warning("rate limits skipped, Redis unavailable: %s", type(exc).__name__)
        return None
    return results[0 : 2 * len(keys) : 2]


def _counter(key: str) -> str:
    """The Redis key counting `key` in the current window."""
    return f"rl:{key}:{int(clock() // WINDOW)}"


def refused(channel: str, status: int) -> int:
    """Count a refused inbound request from this IP; the status to answer (429 once past the limit)."""
    counts = _count(f"refused:{client_ip()}", metric=("inbound_refused", channel, status))
    if counts and counts[0] > current_app.config["RATE_LIMIT_REFUSED_IP"]:
        metrics.incr("rate_limited", "refused_ip")
        return 429
    return status


def inbound_limits(channel: str, sender: str, ip: str) -> list[tuple[str, str, int]]:
    """(reason, counter key, limit) a signed push counts against, in the order they are checked; the
    webhook counts them in the same round trip that queues the push (jobs.intake.admit_inbound)."""
    config = current_app.config
    return [
        ("openid", _counter(f"in:{channel}:{sender}"), config["RATE_LIMIT_OPENID"]),
        ("ip", _counter(f"in-ip:{ip}"), config["RATE_LIMIT_IP"]),
    ]


def note_deferred(channel: str, reason: str) -> None:
    metrics.incr("rate_limited", reason)
    log.warning("inbound from %s over the %s limit: stored, processing deferred", channel, reason)


def login_limited(username: str, trusted_device: bool = False) -> bool:
    """True when this IP or this username has tried to sign in too often this minute. A browser that has
    signed in as that name before (accounts.throttle's device cookie) is not held by the per-name count,
    so a stranger flooding a name cannot keep its owner out."""
    config = current_app.config
    keys = [f"login-ip:{client_ip()}"]
    if not trusted_device:
        keys.append(f"login-user:{(username or '').strip().lower()[:64]}")
    counts = _count(*keys)
    if counts is None:
        return False
    over = counts[0] > config["RATE_LIMIT_LOGIN_IP"] or (
        len(counts) > 1 and counts[1] > config["RATE_LIMIT_LOGIN_USER"]
    )
    if over:
        metrics.incr("rate_limited", "login")
    return over
