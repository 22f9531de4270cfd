"""At once everywhere, in the launched stack: `make run`'s launcher (gunicorn + an RQ worker + embedded Redis),
a region re-imported by the CLI while it runs, and the very next resident message routed by the new tree.

The worker has just built its parser when the import lands, and the second message follows within a few
seconds, well inside the old 30-second re-check: only the map version bumped in Redis can explain the new
routing.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from handlers.parsing import RECHECK_SECONDS
from tests.support.harness import free_port, wait_for
from tests.support.wechat_push import AES_KEY, APPID, TOKEN, encrypted_push, text_xml

PROJECT = Path(__file__).resolve().parents[2]
REDRAWN = Path(__file__).resolve().parent / "data" / "redrawn_region.yaml"
pytestmark = pytest.mark.slow


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return json.loads(response.read()).get("status") in ("ok", "healthy") or response.status == 200
    except OSError:
        return False


def send(port: int, openid: str, text: str, msg_id: int) -> None:
    query, body = encrypted_push(text_xml(openid, text, msg_id=msg_id))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/wechat/mp?{query}", data=body, headers={"Content-Type": "text/xml"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def routed_grid(database: Path, openid: str) -> str | None | bool:
    """The grid of the ticket the resident's message became; False while it is not processed yet."""
    with sqlite3.connect(database, timeout=10) as connection:
        row = connection.execute(
            "SELECT t.grid_code FROM inbound_messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.sender = ?",
            (openid,),
        ).fetchone()
    return row[0] if row else False


@pytest.fixture
def service(tmp_path, fake_api):
    instance = tmp_path / "instance"
    instance.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "APP_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith("TEST_")}
    env.update(
        INSTANCE_PATH=str(instance),
        PORT=str(port),
        WECHAT_TOKEN=TOKEN,
        WECHAT_APPID=APPID,
        WECHAT_SECRET="appsecret",
        WECHAT_AES_KEY=AES_KEY,
        WECHAT_API_BASE=fake_api.base_url,
        WECOM_API_BASE=fake_api.base_url,
        WORKER_NICE="0",
    )
    log = open(tmp_path / "launch.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.launch"], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: healthy(port), 90, 0.5, "the launched service to be healthy")
        yield port, env, instance / "civic.db"
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as a user would: the launcher stops its children
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_a_message_right_after_an_import_is_routed_by_the_new_tree(service):
    port, env, database = service
    first_sent = time.monotonic()  # the worker checks its parser after this, for the first message
    send(port, "oMapBefore", "东大菜市场门口路灯不亮好几天了", 7100001)
    before = wait_for(lambda: routed_grid(database, "oMapBefore"), 60, 0.2, "the first message's ticket")
    assert before == "990101001001"  # the demo county: 东大菜市场 is in the first grid

    imported = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "app", "import-region", str(REDRAWN)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr
    assert "990101001004" in imported.stdout and "retired" in imported.stdout

    imported_at = time.monotonic()
    send(port, "oMapAfter", "东大菜市场旁边下水道堵了，污水漫到路上", 7100002)
    after = wait_for(lambda: routed_grid(database, "oMapAfter"), 60, 0.1, "the second message's ticket")
    done = time.monotonic()
    took, since_first = done - imported_at, done - first_sent
    print(f"\nimport -> second message routed: {took:.2f} s; since the first message: {since_first:.1f} s")
    # The worker's last check was after `first_sent`: were we past the old re-check period, the test proves nothing.
    assert done - first_sent < RECHECK_SECONDS, "too slow to tell the version bump from the periodic re-check"
    assert after == "990101001004"  # the re-drawn map: 东大菜市场 now belongs to 东市网格
