"""Periodic work. Every worker ticks; per-period job ids make the ticks of many workers enqueue once."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from redis.exceptions import RedisError

from broadcasts.followers import sync_followers
from broadcasts.sending import recover_broadcasts
from broadcasts.tags import sync_mp_tags
from config.queues import QueueNames
from delivery.outbox import recover_outbox
from delivery.robots import sweep_robots
from handlers.media import recover_media
from jobs.classifier import retrain_classifier
from jobs.group_digests import send_group_digests
from jobs.intake import recover_inbound
from jobs.sweep import sweep_deadlines
from ops.queue import enqueue

log = logging.getLogger(__name__)

# (every N seconds, function, queue[, enqueue options])
PERIODIC: list[tuple] = [
    (60, recover_inbound, QueueNames.INTAKE),
    (60, sweep_deadlines, QueueNames.WORKFLOW),
    (300, recover_outbox, QueueNames.DELIVERY),
    (60, sweep_robots, QueueNames.DELIVERY),
    (60, send_group_digests, QueueNames.WORKFLOW),
    (60, recover_broadcasts, QueueNames.BROADCAST),
    (300, sync_mp_tags, QueueNames.BROADCAST),
    (300, recover_media, QueueNames.DELIVERY),
    # Daily (and at a worker's first tick of the day): followers who never wrote become known residents.
    (86400, sync_followers, QueueNames.BROADCAST, {"job_timeout": 3600}),
    # Daily (the period starts 08:00 county time); a retraining takes seconds and is skipped when there
    # are too few new corrections.
    (24 * 60 * 60, retrain_classifier, QueueNames.WORKFLOW),
]


def tick(now: float | None = None) -> int:
    """Enqueue each periodic job whose period has started; returns how many were enqueued."""
    now = time.time() if now is None else now
    enqueued = 0
    for every, func, queue, *extra in PERIODIC:
        period = int(now // every)
        options = extra[0] if extra else {}
        if enqueue(func, queue=queue, job_id=f"cron-{func.__name__}-{period}", result_ttl=every * 2, **options):
            enqueued += 1
    return enqueued


def start_ticker(app: Flask, interval: float = 15.0) -> threading.Thread:
    def run() -> None:
        while True:
            try:
                with app.app_context():
                    tick()
            except RedisError as exc:
                log.warning("cron tick skipped: %s", exc)
            except Exception:
                log.exception("cron tick failed")
            time.sleep(interval)

    thread = threading.Thread(target=run, name="cron-ticker", daemon=True)
    thread.start()
    return thread
