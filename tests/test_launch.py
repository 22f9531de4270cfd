"""The launcher's process settings, which `make run` and the benchmarks share."""

from __future__ import annotations

import gc

from config import gunicorn as gunicorn_hooks
from scripts.launch import gunicorn_settings, worker_count


def test_sqlite_runs_one_web_process_and_one_worker():
    settings = gunicorn_settings({})
    assert settings[settings.index("--workers") + 1] == "1"
    assert worker_count({}) == 1


def test_postgresql_and_explicit_settings(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    on_postgres = {"DATABASE_URL": "postgresql+psycopg://db/civic"}
    settings = gunicorn_settings(on_postgres)
    assert settings[settings.index("--workers") + 1] == "4"
    assert worker_count(on_postgres) == 2
    explicit = gunicorn_settings({"WEB_CONCURRENCY": "3", "WEB_THREADS": "4", "RQ_WORKERS": "5"})
    assert explicit[explicit.index("--workers") + 1] == "3" and explicit[explicit.index("--threads") + 1] == "4"
    assert worker_count({"RQ_WORKERS": "5"}) == 5


def test_web_processes_freeze_what_they_loaded():
    settings = gunicorn_settings({})
    assert settings[settings.index("-c") + 1] == "python:config.gunicorn"
    try:
        gunicorn_hooks.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_request_lines_fit_long_open311_id_lists():
    assert gunicorn_hooks.limit_request_line == 8190  # gunicorn's largest bounded value; the default is 4094
