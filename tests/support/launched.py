"""The whole stack as `make run` starts it (scripts/launch.py), in a session of its own like a terminal's job.

The launcher runs in its own process group, so a test stops it exactly as a terminal's Ctrl-C does: SIGINT
to the whole foreground process group. Every process of the stack is found by its environment (the
launcher hands INSTANCE_PATH to everything it starts), so one that outlived its parent is found too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.harness import PROJECT, service_env, wait_for


def launch_env(instance: Path, port: int, api_base: str) -> dict:
    """As `make run` on a fresh machine: its own SQLite file and embedded Redis under `instance`."""
    return service_env(
        api_base, drop=("DATABASE_URL", "REDIS_URL", "APP_ENV"), INSTANCE_PATH=str(instance), PORT=str(port)
    )


class LaunchedStack:
    """`python -m scripts.launch` with its output in a log file."""

    def __init__(self, env: dict, log_path: Path):
        self.env = env
        self.instance = Path(env["INSTANCE_PATH"])
        self.port = int(env["PORT"])
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait_stopped()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.launch"],
            cwd=PROJECT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group, as a job in a terminal
        )

    @property
    def redis_url(self) -> str:
        return (self.instance / "redis.url").read_text().strip()

    def redis(self):
        from redis import Redis

        return Redis.from_url(self.redis_url)

    def wait_ready(self, timeout: float = 90) -> None:
        """Web answering /healthz and an RQ worker whose scheduler holds the scheduler locks."""
        from rq.scheduler import RQScheduler

        from config.queues import all_queues

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the launcher exited early:\n{self.log_tail()}")
            try:
                return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, timeout, 0.2, "the web server to answer /healthz")
        wait_for(lambda: (self.instance / "redis.url").exists(), timeout, 0.2, "the embedded Redis's address")
        redis = self.redis()
        try:
            wait_for(
                lambda: all(redis.exists(RQScheduler.get_locking_key(name)) for name in all_queues()),
                timeout,
                0.2,
                "the worker's scheduler to hold its locks",
            )
        finally:
            redis.close()

    def interrupt(self) -> None:
        """What a terminal sends on Ctrl-C: SIGINT to every process of its foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait_stopped(self, timeout: float = 90) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill_everything(self) -> None:
        """Clean-up after a failed test: nothing of this stack may outlive it."""
        for pid in stack_processes(self.instance):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if not self._log.closed:
            self._log.close()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stack_processes(instance: Path) -> dict[int, str]:
    """Live processes (not zombies) whose environment names this instance folder: pid -> command line."""
    marker = f"INSTANCE_PATH={instance}".encode() + b"\0"
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes() + b"\0":
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        if state != "Z":
            found[int(entry.name)] = command
    return found


def port_is_free(port: int) -> bool:
    """Bindable as gunicorn binds it (SO_REUSEADDR: connections in TIME_WAIT do not count, a listener does)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def record_run(path: str) -> float:
    """A scheduled job's whole work: note when it ran (the test compares that with when it was due)."""
    ran_at = time.time()
    Path(path).write_text(repr(ran_at))
    return ran_at
