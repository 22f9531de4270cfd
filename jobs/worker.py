"""The RQ worker class: no fork per job (connections and the parser are reused), a fresh app context per job."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from collections.abc import Iterable
from datetime import datetime

from flask import Flask
from redis import Redis
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.utils import now, utcparse
from rq.worker import SimpleWorker

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# RQ's scheduler refreshes its heartbeat every second; one this old belongs to a scheduler that is gone.
STALE_SCHEDULER_SECONDS = 15


class AppWorker(SimpleWorker):
    """SimpleWorker with each job (and its callbacks) inside its own Flask app context, so every job gets a
    fresh database session that is removed when it ends."""

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job, queue):
        with self.app.app_context():
            return super().execute_job(job, queue)


def children_die_with_this_process() -> None:
    """Children forked from here on (RQ's scheduler process) get SIGTERM when this process dies.

    A forked child holds copies of the parent's sockets. When a worker is SIGKILLed (the OOM killer, kill
    -9) the scheduler child it forked lives on, and with it the dead worker's database connections: an
    open transaction is never ended by the server and its row locks stall every later worker, for ever.
    Linux only (prctl); elsewhere a supervisor that kills the whole process group does the same.
    """
    parent = os.getpid()

    def after_in_child() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    os.register_at_fork(after_in_child=after_in_child)


def release_stale_scheduler_locks(
    connection: Redis, queue_names: Iterable[str], stale_after: float = STALE_SCHEDULER_SECONDS
) -> list[str]:
    """Free the scheduler locks of queues whose holder no longer beats; returns those queue names.

    A scheduler that could not say goodbye (killed, or Redis stopped before it) leaves its lock for a
    minute, and a worker that finds the lock taken at start only tries again at its next maintenance, ten
    minutes later: until then nobody moves scheduled jobs (delivery retries) to their queues. The holder's
    own heartbeat tells a live scheduler from a dead one; the release is atomic and only if the owner is
    still the one we judged.
    """
    released = []
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        raw = connection.get(key)
        if raw is None:
            continue
        owner = raw.decode() if isinstance(raw, bytes) else str(raw)
        beat = _last_heartbeat(connection, owner)
        if beat is not None and (now() - beat).total_seconds() < stale_after:
            continue
        if release_lock(connection, key, owner):
            released.append(name)
    if released:
        log.info("released stale scheduler locks for %s", ", ".join(released))
    return released


def _last_heartbeat(connection: Redis, scheduler_name: str) -> datetime | None:
    """When the scheduler last beat; None when it left no record. A stamp we cannot read counts as now: a
    lock is never taken from a scheduler we cannot judge."""
    raw = connection.hget(SCHEDULER_KEY_TEMPLATE % scheduler_name, "last_heartbeat")
    if raw is None:
        return None
    try:
        return utcparse(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return now()
