"""`flask worker`: an RQ worker on every queue, with RQ's scheduler and the periodic ticker."""

from __future__ import annotations

import gc
import os

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import configure_mappers

from config.queues import all_queues
from handlers.parsing import get_parser
from jobs.cron import start_ticker
from jobs.intake import recover_inbound
from jobs.worker import AppWorker, children_die_with_this_process, release_stale_scheduler_locks
from ops.queue import get_queue
from ops.redis_client import redis_from_url


@click.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@click.option("--name", default=None)
@click.option(
    "--nice",
    default=10,
    show_default=True,
    envvar="WORKER_NICE",
    help="lower the worker's CPU priority so the webhook wins the CPU during a burst",
)
@with_appcontext
def worker_command(burst: bool, name: str | None, nice: int) -> None:
    """Process jobs from all queues (intake, delivery, workflow, broadcast)."""
    if nice:
        os.nice(nice)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    configure_mappers()
    get_parser(app.instance_path)  # the region's gazetteer and any trained model, before the first message
    gc.freeze()  # all that is long-lived: full collections during a drain walk only what jobs make
    if not burst:
        start_ticker(app)
    children_die_with_this_process()
    worker = build_worker(app, name)
    release_stale_scheduler_locks(worker.connection, all_queues())  # a quick restart schedules on time
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def build_worker(app, name: str | None = None) -> AppWorker:
    """An RQ worker on every queue, on a Redis client of its own.

    RQ raises the socket timeout above its blocking dequeue (minutes) only for connections made after the
    worker is created, and the app's client may already hold connections with its 5-second timeout. On one
    of those every idle dequeue timed out, and RQ, taking that for a lost connection, backed off up to a
    minute before its next dequeue: a resident's first message after a quiet spell could wait that long.
    """
    connection = redis_from_url(app.config["REDIS_URL"])
    queues = [get_queue(queue, connection) for queue in all_queues()]
    return AppWorker(queues, connection=connection, name=name, app=app)


@click.command("recover-inbound")
@click.option("--older-than", default=0, show_default=True, help="seconds since the push was stored")
@with_appcontext
def recover_command(older_than: int) -> None:
    """Re-enqueue stored pushes that were never processed (after a Redis outage)."""
    click.echo(f"re-enqueued {recover_inbound(older_than_seconds=older_than)} stored pushes")
