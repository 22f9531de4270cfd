"""`flask worker` keeps listening while idle: its blocking dequeue must outlast the Redis socket timeout."""

from __future__ import annotations

import pytest
from redis.exceptions import TimeoutError as RedisTimeout

from cli.worker import build_worker
from jobs.worker import AppWorker

WAIT = 6  # seconds: longer than the app client's 5-second socket timeout


def test_an_idle_dequeue_outlasts_the_socket_timeout_on_the_workers_own_client(app):
    shared = app.extensions["redis"]
    shared.ping()  # the app's client now holds a connection with its 5-second timeout, as in `flask worker`

    # What the worker did before: RQ raises the timeout only for connections made later, so an idle
    # dequeue on the held connection times out (and RQ backs off, up to a minute, before trying again).
    on_shared = AppWorker([], connection=shared, app=app)
    with pytest.raises(RedisTimeout):
        on_shared.connection.blpop(["test:idle:nothing"], timeout=WAIT)
    shared.connection_pool.disconnect()

    worker = build_worker(app, name="idle-test")
    assert worker.connection is not shared
    assert worker.connection.blpop(["test:idle:nothing"], timeout=WAIT) is None
