"""Counters for /metrics (web.metrics renders them with the rest, in Prometheus' text format).

Counters that happen in many processes (pushes in, pushes refused, rate limits, outbound errors by
errcode) are kept in Redis hashes, so any web process answers the same totals; everything else is read
at scrape time from the database and the RQ queues. Set METRICS_TOKEN to require
`Authorization: Bearer <token>` (or keep /metrics off the public nginx site, see docs/deployment.md).
"""

from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PREFIX = "metrics:"
# Redis-kept counters: name -> (help, label names)
COUNTERS = {
    "inbound": ("Signed pushes received, by channel.", ("channel",)),
    "inbound_refused": (
        "Inbound requests refused (bad signature, stale, malformed), by channel and status.",
        ("channel", "status"),
    ),
    "rate_limited": ("Requests over a rate limit, by reason (openid, ip, refused_ip, login).", ("reason",)),
    "outbound_errors": ("Outbound API errors, by channel and errcode (or exception).", ("channel", "errcode")),
    "non_demands": ("Resident texts the demand gate answered without a ticket, by kind.", ("kind",)),
}


def incr(name: str, *labels: object) -> None:
    """Add one to a shared counter; never fails the caller (metrics are not worth a lost message)."""
    try:
        # A pipeline: redis-py retries a lone command for seconds when Redis is down; a push cannot wait.
        pipe = current_app.extensions["redis"].pipeline(transaction=False)
        pipe.hincrby(PREFIX + name, "|".join(str(v) for v in labels), 1)
        pipe.execute()
    except (RedisError, RuntimeError, KeyError):
        pass


def incr_in(pipe, name: str, *labels: object) -> None:
    """The same increment, queued on a pipeline the caller executes (one round trip for both)."""
    pipe.hincrby(*counter_field(name, *labels), 1)


def counter_field(name: str, *labels: object) -> tuple[str, str]:
    """(Redis hash, field) of a counter, for callers that count it inside a script of their own."""
    return PREFIX + name, "|".join(str(v) for v in labels)


def count_send_error(channel: str, error: BaseException) -> None:
    errcode = getattr(error, "errcode", None)
    incr("outbound_errors", channel, errcode if errcode is not None else type(error).__name__)
