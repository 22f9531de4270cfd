"""The launcher's process settings, which `make run` and the benchmarks share."""

from __future__ import annotations

import gc
import signal

import pytest

from config import gunicorn as gunicorn_hooks
from scripts import launch
from scripts.launch import gunicorn_settings, worker_count


def test_sqlite_runs_two_web_processes_and_one_worker(monkeypatch):
    for cores in (1, 2, 16):  # two share SQLite's write lock well; more would queue at it
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        settings = gunicorn_settings({})
        assert settings[settings.index("--workers") + 1] == "2"
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


def test_a_second_quit_signal_does_not_reenter_a_web_workers_shutdown(monkeypatch):
    """The terminal's SIGINT and the master's SIGQUIT a moment apart: the second handler run must return at
    once instead of entering the shutdown the first one is still in (it deadlocked in gthread's pool)."""
    installed = {}
    monkeypatch.setattr("signal.signal", lambda signum, handler: installed.setdefault(signum, handler))
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    entered = []

    class Worker:
        alive = True

        class cfg:  # noqa: N801 - gunicorn's attribute name
            @staticmethod
            def worker_int(worker) -> None:
                entered.append("quit")
                worker.handle_quit(signal.SIGQUIT, None)  # the second signal, while the first is handled

    worker = Worker()
    gunicorn_hooks.quit_once(worker)
    assert installed[signal.SIGINT] is installed[signal.SIGQUIT] is worker.handle_quit
    with pytest.raises(SystemExit):
        installed[signal.SIGINT](signal.SIGINT, None)
    assert entered == ["quit"] and worker.alive is False


def test_children_get_their_own_process_group_and_stop_in_order(monkeypatch):
    """Web, then workers, then Redis: each stage is signalled only once the one before has gone."""
    events = []

    class Child:
        def __init__(self, name: str):
            self.args = [name]
            self.pid = 10**7 + len(events)
            self.running = True

        def poll(self):
            return None if self.running else 0

        def send_signal(self, signum):
            events.append((self.args[0].rsplit("/", 1)[-1], signum))
            self.running = False

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(launch, "_group_alive", lambda child: False)
    children = [
        Child("/x/redis-server"),
        Child("/venv/bin/gunicorn"),
        Child("/venv/bin/flask"),
        Child("/venv/bin/flask"),
    ]
    launch.stop_in_order(children, launch.StopRequest())
    assert [name for name, _ in events] == ["gunicorn", "flask", "flask", "redis-server"]
    assert {signum for _, signum in events} == {signal.SIGTERM}
