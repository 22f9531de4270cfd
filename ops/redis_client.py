"""Connections the app holds: the database (models.db) and Redis. Created lazily in create_app."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

from redis import Redis
from redis.sentinel import Sentinel

EMBEDDED_REDIS_FILE = "redis.url"


def resolve_redis_url(configured: str, instance_path: str) -> str:
    """REDIS_URL if set; else the embedded server `make run` started (its URL is left in the instance folder)."""
    if configured:
        return configured
    marker = Path(instance_path) / EMBEDDED_REDIS_FILE
    if marker.exists():
        return marker.read_text().strip()
    return "redis://127.0.0.1:6379/0"


def redis_from_url(url: str) -> Redis:
    """A Redis client; `redis+sentinel://host:26379,host2:26379/mymaster/0` asks Sentinel for the master.

    No connection is made here: redis-py connects on first use.
    """
    if url.startswith("redis+sentinel://"):
        parsed = urlparse(url)
        hosts = [
            (h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1]) if ":" in h else 26379)
            for h in parsed.netloc.split("@")[-1].split(",")
        ]
        parts = [p for p in parsed.path.split("/") if p]
        service, db_index = parts[0], int(parts[1]) if len(parts) > 1 else 0
        options = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        password = parsed.password or options.get("password")
        sentinel = Sentinel(
            hosts,
            socket_timeout=float(options.get("socket_timeout", 2.0)),
            sentinel_kwargs={"password": options.get("sentinel_password")}
            if options.get("sentinel_password")
            else None,
        )
        return sentinel.master_for(service, db=db_index, password=password, socket_timeout=5.0)
    return Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0, health_check_interval=30)
