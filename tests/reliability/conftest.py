"""Fixtures for the fault tests: a private Redis server a test may kill, an app on it, worker processes."""

from __future__ import annotations

import pytest

from tests.conftest import settings_for_tests
from tests.support import figures
from tests.support.harness import RedisServer, Worker, worker_env

# The fault tests shorten the drain flag's life so a killed drain is noticed in seconds, not minutes.
FLAG_TTL = 3
# …and a killed sender's claim on the replies it had in flight.
CLAIM_TTL = 5


def pytest_sessionfinish(session, exitstatus):
    figures.write()


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def service(app, database_url, private_redis, fake_api):
    """An app like the `app` fixture's (same emptied database, same fake API) but on the private Redis."""
    from app import create_app
    from models import db

    service_app = create_app(
        "test",
        overrides=settings_for_tests(
            database_url,
            private_redis.url,
            fake_api.base_url,
            INTAKE_FLAG_TTL=FLAG_TTL,
            DELIVERY_CLAIM_TTL=CLAIM_TTL,
            INTAKE_BURST_RATE=0,  # crash timing needs the drain running during the burst, not yielding to it
        ),
    )
    yield service_app
    with service_app.app_context():
        db.session.remove()


@pytest.fixture
def workers(tmp_path, database_url, private_redis, fake_api):
    """start() a `flask worker` process on the private Redis; every one still alive is stopped afterwards."""
    started: list[Worker] = []
    env = worker_env(
        database_url,
        private_redis.url,
        fake_api.base_url,
        INTAKE_FLAG_TTL=str(FLAG_TTL),
        DELIVERY_CLAIM_TTL=str(CLAIM_TTL),
        INTAKE_BURST_RATE="0",
    )

    def start() -> Worker:
        worker = Worker(env, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
