"""Sign-in throttling that slows guessing without letting a stranger lock a real user out.

Failures are counted per name (whatever the address) and per address (whatever the name), in Redis, for
a quarter of an hour. Past LOGIN_FREE_FAILURES for a name (ten times as many for an address, since an
office shares one), each further try must wait twice as long as the last: 1 s, 2 s, 4 s … up to
LOGIN_MAX_DELAY. A try before its time is answered at once, without checking the password.

No lock-out: the wait never exceeds the cap, and a browser that has signed in as that name before carries
a signed device cookie that skips the per-name wait (OWASP's "device cookie"), so someone hammering a
colleague's name from elsewhere cannot keep them out. Unknown names are counted exactly like known ones.
Fails open when Redis is down (sign-in still works; only the slowing is lost).
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WINDOW = 15 * 60
IP_FACTOR = 10
DEVICE_COOKIE = "civic_device"
DEVICE_MAX_AGE = 180 * 24 * 3600
clock = time.time


def _redis():
    return current_app.extensions["redis"]


def _keys(username: str, ip: str) -> tuple[str, str]:
    return f"login-fail:name:{username.strip().lower()[:64]}", f"login-fail:ip:{ip}"


def _delay(failures: int, free: int) -> float:
    """Seconds to wait after `failures` failures: nothing for the free ones, then 1, 2, 4 … capped."""
    if failures < free:
        return 0.0
    cap = float(current_app.config.get("LOGIN_MAX_DELAY", 60))
    return min(cap, 2.0 ** min(failures - free, 32))


def wait_seconds(username: str, ip: str, trusted_device: bool = False) -> int:
    """How long this try must still wait (0: go ahead)."""
    free = int(current_app.config.get("LOGIN_FREE_FAILURES", 5))
    name_key, ip_key = _keys(username, ip)
    try:
        pipe = _redis().pipeline(transaction=False)
        for key in (name_key, ip_key):
            pipe.hget(key, "n")
            pipe.hget(key, "at")
        name_n, name_at, ip_n, ip_at = pipe.execute()
    except RedisError as exc:
        log.warning("login throttle skipped, Redis unavailable: %s", type(exc).__name__)
        return 0
    now = clock()
    waits = [float(ip_at or 0) + _delay(int(ip_n or 0), free * IP_FACTOR) - now]
    if not trusted_device:
        waits.append(float(name_at or 0) + _delay(int(name_n or 0), free) - now)
    return max(0, math.ceil(max(waits)))


def record_failure(username: str, ip: str) -> None:
    now = clock()
    try:
        pipe = _redis().pipeline(transaction=False)
        for key in _keys(username, ip):
            pipe.hincrby(key, "n", 1)
            pipe.hset(key, "at", now)
            pipe.expire(key, WINDOW)
        pipe.execute()
    except RedisError as exc:
        log.warning("login failure not counted, Redis unavailable: %s", type(exc).__name__)


def record_success(username: str) -> None:
    """A right password clears the name's count (not the address's: a guesser who got one right keeps it)."""
    try:
        _redis().delete(_keys(username, "")[0])
    except RedisError:
        pass


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="console-device")


def device_cookie_value(username: str) -> str:
    return _serializer().dumps(username.strip().lower())


def trusted_device(cookie: str | None, username: str) -> bool:
    """True when this browser signed in as `username` before (a signed cookie, at most 180 days old)."""
    if not cookie or not current_app.config.get("SECRET_KEY"):
        return False
    try:
        name = _serializer().loads(cookie, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return False
    return isinstance(name, str) and name == username.strip().lower()
