"""The map version: one Redis counter, bumped when the region tree or the trained model changes.

Every web and worker process reads it once per batch (one GET) and rebuilds its parser and region caches
when it moved, so the next message after an import or a retraining is routed by the new map.
"""

from __future__ import annotations

from redis import Redis
from redis.exceptions import RedisError

MAP_VERSION_KEY = "map:version"


def bump_map_version(connection: Redis) -> int | None:
    """Tell every process the map changed. None when Redis is down (processes then notice by their slower check)."""
    try:
        return int(connection.incr(MAP_VERSION_KEY))
    except RedisError:
        return None


def read_map_version(connection: Redis) -> str | None:
    """The current version ("" before the first bump); None when Redis cannot be read."""
    try:
        value = connection.get(MAP_VERSION_KEY)
    except RedisError:
        return None
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
