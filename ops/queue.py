"""RQ plumbing: the one way work is enqueued, with deterministic ids that make enqueueing idempotent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import current_app
from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError


def redis_connection() -> Redis:
    return current_app.extensions["redis"]


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    return Queue(name, connection=connection or redis_connection())


def enqueue(func: Callable, *args, queue: str, job_id: str, **options) -> bool:
    """Enqueue once per job_id (unique=True); False when that job is already queued or running.

    Without unique=True RQ would overwrite the job hash and push the id twice (it would run twice).
    """
    try:
        get_queue(queue).enqueue(func, *args, job_id=job_id, unique=True, **options)
    except DuplicateJobError:
        return False
    return True


def enqueue_at(when: datetime, func: Callable, *args, queue: str, job_id: str, **options) -> bool:
    """Schedule once per job_id for `when` (RQ's scheduler, in a worker started with it, enqueues it then);
    False when that job already exists."""
    try:
        get_queue(queue).enqueue_at(when, func, *args, job_id=job_id, unique=True, **options)
    except DuplicateJobError:
        return False
    return True
