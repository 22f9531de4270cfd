"""The database unavailable: the webhook answers an error WeChat retries, never "success" for a lost push.

PostgreSQL: the app reaches the server through a TCP proxy on loopback that the test cuts (every open
connection reset, new ones refused) and restores. SQLite: the app opens the file through a symlinked
folder that the test removes (new connections fail with "unable to open database file") and puts back.
WeChat then retries the pushes it got no "success" for; each is stored and processed exactly once.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import drain, settings_for_tests
from tests.support import figures
from tests.support.harness import free_port, outcome, post_push, resident_pushes

BEFORE, DURING, AFTER = 100, 200, 100


class TcpProxy:
    """Loopback TCP forwarder that can be cut (RST every connection, refuse new ones) and restored."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self.listener:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread; close() alone does not
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            for sock in self.connections:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.close()
                except OSError:
                    pass
            self.connections.clear()

    def restore(self) -> None:
        self.start()


class Outage:
    """Make the database unreachable for `app` and bring it back, the way the backend allows."""

    def __init__(self, database_url: str, tmp_path: Path):
        self.kind = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        if self.kind == "postgresql":
            from sqlalchemy.engine import make_url

            url = make_url(database_url)
            self.proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
            self.url = url.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)
        else:
            real = Path(database_url.removeprefix("sqlite:///"))
            self.link = tmp_path / "dbdir"
            self.real_dir = real.parent
            self.link.symlink_to(self.real_dir)
            self.url = f"sqlite:///{self.link / real.name}"

    def cut(self, app) -> None:
        from models import db

        if self.kind == "postgresql":
            self.proxy.cut()
        else:
            self.link.unlink()
            with app.app_context():
                db.engine.dispose()  # the process's open handles go too, as after a restart

    def restore(self) -> None:
        if self.kind == "postgresql":
            self.proxy.restore()
        else:
            os.symlink(self.real_dir, self.link)

    def close(self) -> None:
        if self.kind == "postgresql":
            self.proxy.cut()


@pytest.fixture
def outage_app(app, database_url, redis_url, fake_api, tmp_path):
    from app import create_app
    from models import db

    outage = Outage(database_url, tmp_path)
    service_app = create_app("test", overrides=settings_for_tests(outage.url, redis_url, fake_api.base_url))
    service_app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as in production, instead of raising
    yield service_app, outage
    outage.close()
    with service_app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_database_down_never_answers_success_and_retries_land_once(outage_app, region, fake_api):
    service, outage = outage_app
    client = service.test_client()
    pushes = resident_pushes(BEFORE + DURING + AFTER, "Db", first_msg_id=9_000_000)
    before, during, after = pushes[:BEFORE], pushes[BEFORE : BEFORE + DURING], pushes[BEFORE + DURING :]

    for _, query, body in before:
        assert post_push(client, query, body).get_data(as_text=True) == "success"
    outage.cut(service)
    answers = [post_push(client, query, body) for _, query, body in during]
    health = client.get("/healthz")
    outage.restore()
    wrongly_acknowledged = sum(1 for r in answers if r.status_code == 200 or r.get_data(as_text=True) == "success")
    # WeChat retries what it got no "success" for (3 tries); here the first retry finds the database back.
    retried = [post_push(client, query, body) for _, query, body in during]
    later = [post_push(client, query, body) for _, query, body in after]
    drain(service)
    state = outcome(service, fake_api, [openid for openid, _, _ in pushes])
    figures.record(
        "fault",
        f"database unavailable ({'TCP proxy cut' if outage.kind == 'postgresql' else 'file unreachable'})",
        tried=DURING,
        lost=state["ticket_lost"] + state["ack_lost"],
        doubled=state["ticket_doubled"] + state["ack_doubled"] + state["stored_twice"],
        accepted=wrongly_acknowledged,
        note=f"answers while down: {sorted({r.status_code for r in answers})}; /healthz {health.status_code}; "
        f"then {len(retried)} platform retries + {len(later)} new pushes",
        test="tests/reliability/test_database_down.py",
    )
    assert all(r.status_code >= 500 for r in answers), {r.status_code for r in answers}
    assert wrongly_acknowledged == 0
    assert health.status_code == 503 and health.get_json()["database"].startswith("down")
    assert all(r.get_data(as_text=True) == "success" for r in retried + later)
    assert state["stored"] == len(pushes) and state["stored_twice"] == 0
    assert state["processed"] == len(pushes)
    assert state["ticket_lost"] == state["ticket_doubled"] == 0
    assert state["ack_lost"] == state["ack_doubled"] == 0
