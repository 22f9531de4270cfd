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
from jobs import get_queue
from jobs.cron import start_ticker
from jobs.intake import recover_inbound
from jobs.worker import AppWorker, children_die_with_this_process


@click.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@click.option("--name", default=None)
@click.option("--nice", default=10, show_default=True, envvar="WORKER_NICE",
              help="lower the worker's CPU priority so the webhook wins the CPU during a burst")
@with_appcontext
def worker_command(burst: bool, name: str | None, nice: int) -> None:
    """Process jobs from all queues (intake, delivery, workflow, broadcast)."""
    if nice:
        os.nice(nice)
    app = current_app._get_current_object()
    configure_mappers()
    get_parser(app.instance_path)  # the region's gazetteer and any trained model, before the first message
    gc.freeze()  # all that is long-lived: full collections during a drain walk only what jobs make
    connection = app.extensions["redis"]
    queues = [get_queue(queue, connection) for queue in all_queues()]
    if not burst:
        start_ticker(app)
    children_die_with_this_process()
    worker = AppWorker(queues, connection=connection, name=name, app=app)
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


@click.command("recover-inbound")
@click.option("--older-than", default=0, show_default=True, help="seconds since the push was stored")
@with_appcontext
def recover_command(older_than: int) -> None:
    """Re-enqueue stored pushes that were never processed (after a Redis outage)."""
    click.echo(f"re-enqueued {recover_inbound(older_than_seconds=older_than)} stored pushes")
