"""Rate limits with clear answers (signed pushes are stored even when over a limit), console security
headers, and secrets that never reach a log line."""

from __future__ import annotations

import io
import logging
import time

import pytest

from jobs.intake import PENDING_KEY, recover_inbound
from models import InboundMessage, InboundStatus, db
from tests.conftest import drain
from tests.support import figures
from tests.support.corpus import mp_plain
from tests.support.wechat_push import encrypted_push, text_xml
from tests.support.wecom_push import wecom_settings
from tests.web.console.helpers import csrf_from, make_user

TEST = "tests/security/test_limits_and_secrets.py"


@pytest.fixture(autouse=True)
def one_window(monkeypatch):
    """Every count of a test lands in one rate-limit window (a real minute boundary would reset them)."""
    from ops import ratelimit

    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_000.0)


def rows(app) -> list[InboundMessage]:
    with app.app_context():
        return db.session.execute(db.select(InboundMessage).order_by(InboundMessage.id)).scalars().all()


def test_a_resident_over_the_limit_is_stored_flagged_and_processed_later(app, region, redis, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_OPENID", 3)
    client = app.test_client()
    pushes = [encrypted_push(text_xml("oChatty", f"阳光花园{i}号楼路灯坏了", msg_id=88_000 + i)) for i in range(8)]
    answers = [
        client.post(f"/wechat/mp?{q}", data=b, content_type="text/xml").get_data(as_text=True) for q, b in pushes
    ]
    stored = rows(app)
    deferred = [r for r in stored if (r.payload or {}).get("_deferred") == "openid"]
    queued_now = redis.llen(PENDING_KEY)
    drain(app)
    with app.app_context():
        recovered = recover_inbound(older_than_seconds=0)
    drain(app)
    processed = [r for r in rows(app) if r.status == InboundStatus.PROCESSED]
    figures.record(
        "limit",
        "per-openid limit (signed pushes over it: stored, deferred)",
        tried=len(answers),
        lost=len(answers) - len(processed),
        note=f"limit 3/min: {len(deferred)} deferred to the recovery sweep, all answered success",
        test=TEST,
    )
    assert answers == ["success"] * 8
    assert len(stored) == 8 and len(deferred) == 5 and queued_now == 3
    assert recovered == 5 and len(processed) == 8


def test_signed_pushes_over_the_per_ip_limit_are_stored_and_deferred(app, redis, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_IP", 4)
    client = app.test_client()
    for i in range(7):
        query, body = encrypted_push(text_xml(f"oIp{i}", "路灯坏了", msg_id=88_100 + i))
        assert client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").get_data() == b"success"
    deferred = [r for r in rows(app) if (r.payload or {}).get("_deferred") == "ip"]
    figures.record(
        "limit",
        "per-IP limit on signed pushes (stored, deferred)",
        tried=7,
        lost=7 - len(rows(app)),
        note="limit 4/min",
        test=TEST,
    )
    assert len(rows(app)) == 7 and len(deferred) == 3 and redis.llen(PENDING_KEY) == 4


@pytest.mark.parametrize("endpoint", ["/wechat/mp", "/wechat/work", "/wechat/work/bot"])
def test_an_unsigned_flood_gets_429_quickly_and_a_signed_push_still_lands(app, monkeypatch, endpoint):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(app.config, key, value)
    monkeypatch.setitem(app.config, "RATE_LIMIT_REFUSED_IP", 5)
    client = app.test_client()
    statuses, slowest = [], 0.0
    for i in range(40):
        started = time.perf_counter()
        response = client.post(
            f"{endpoint}?signature=0&msg_signature=0&timestamp={int(time.time())}&nonce={i}",
            data=b"<xml><Encrypt>AAAA</Encrypt></xml>",
            content_type="text/xml",
        )
        slowest = max(slowest, time.perf_counter() - started)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.get_data(as_text=True) == "too many requests"
    if endpoint == "/wechat/mp":
        query, body = encrypted_push(text_xml("oGenuine", "路灯坏了", msg_id=88_200))
        genuine = client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").get_data(as_text=True)
        assert genuine == "success", "a valid push is never turned away by the flood limit"
    figures.record(
        "limit",
        "unsigned flood answered 429",
        tried=len(statuses),
        accepted=statuses.count(200),
        note=f"limit 5/min per IP; slowest answer {slowest * 1000:.0f} ms",
        test=TEST,
    )
    assert set(statuses[:5]) <= {400, 403} and set(statuses[5:]) == {429}
    assert slowest < 0.5


def test_limits_fail_open_when_redis_is_down(app, monkeypatch):
    from ops.redis_client import redis_from_url

    monkeypatch.setitem(app.extensions, "redis", redis_from_url("redis://127.0.0.1:9/0"))  # as the app builds it
    monkeypatch.setitem(app.config, "RATE_LIMIT_OPENID", 1)
    client = app.test_client()
    answers, started = [], time.perf_counter()
    for i in range(3):
        query, body = encrypted_push(text_xml("oNoRedis", "路灯坏了", msg_id=88_300 + i))
        answers.append(client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").get_data(as_text=True))
    assert answers == ["success"] * 3 and len(rows(app)) == 3
    assert time.perf_counter() - started < 3, "with Redis down a push must still be answered well within 5 s"


def test_the_login_form_is_rate_limited_per_name_and_per_ip(app, region, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_LOGIN_USER", 3)
    monkeypatch.setitem(app.config, "RATE_LIMIT_LOGIN_IP", 6)
    make_user(app, "limited", "staff", "990100")
    client = app.test_client()

    def attempt(name: str):
        token = csrf_from(client.get("/console/login").get_data(as_text=True))
        return client.post("/console/login", data={"username": name, "password": "wrong", "csrf_token": token})

    per_name = [attempt("limited").status_code for _ in range(5)]
    last = attempt("limited")
    per_ip = [attempt(f"other{i}").status_code for i in range(3)]
    figures.record(
        "limit",
        "console login form (per name, per IP)",
        tried=len(per_name) + 1 + len(per_ip),
        accepted=0,
        note="3 tries/min per name, 6 per IP, then 429",
        test=TEST,
    )
    assert per_name == [401, 401, 401, 429, 429]
    assert last.status_code == 429 and "登录尝试过于频繁" in last.get_data(as_text=True)
    assert 429 in per_ip


def test_console_pages_carry_the_security_headers(app, region):
    client = app.test_client()
    response = client.get("/console/login")
    headers = response.headers
    wanted = {
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    missing = [name for name, part in wanted.items() if part not in headers.get(name, "")]
    cookie = headers.get("Set-Cookie", "")
    figures.record("limit", "console security headers", tried=len(wanted), accepted=len(missing), test=TEST)
    assert not missing, missing
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    if cookie:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secrets_never_reach_the_log(app, region, fake_api, monkeypatch):
    """A whole push → ticket → reply round, with DEBUG logging on (urllib3 logs every URL, the token fetch
    carries the AppSecret) plus errors that quote secrets: none of the secret values is in the output."""
    from bot.clients import wechat_api

    secrets_in_play = {
        "WECHAT_SECRET": "appsecret-Zq81kLm",
        "SECRET_KEY": "s3cret-key-for-the-log-test-0123456789",
        "METRICS_TOKEN": "metrics-token-8812",
    }
    for key, value in secrets_in_play.items():
        monkeypatch.setitem(app.config, key, value)
    from ops.logs import install_handler

    handler = install_handler(app.config)  # Alembic's fileConfig (the session's migration) replaced it
    root = logging.getLogger()
    stream = io.StringIO()
    old_stream, old_level = handler.setStream(stream), root.level
    root.setLevel(logging.DEBUG)
    try:
        client = app.test_client()
        query, body = encrypted_push(text_xml("oLog", "阳光花园3号楼路灯坏了，电话13812345678", msg_id=88_400))
        assert client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").get_data() == b"success"
        drain(app)
        with app.app_context():
            api = wechat_api()
            token = api.access_token()
            log = logging.getLogger("civic.test")
            log.warning(
                "token fetch for %s?secret=%s failed",
                "https://api.weixin.qq.com/cgi-bin/token",
                secrets_in_play["WECHAT_SECRET"],
            )
            log.info("calling message/custom/send?access_token=%s", token)
            try:
                raise RuntimeError(f"config dump: {dict(app.config)}")
            except RuntimeError:
                log.exception("boom")
        client.post(f"/wechat/mp?{mp_plain(b'<xml/>', sig='0' * 40)[0]}", data=b"<xml/>")
    finally:
        handler.setStream(old_stream)
        root.setLevel(old_level)
    output = stream.getvalue()
    leaked = [name for name, value in {**secrets_in_play, "access_token": token}.items() if value in output]
    figures.record(
        "limit",
        "secrets kept out of logs (DEBUG on, secrets quoted in errors)",
        tried=len(secrets_in_play) + 1,
        accepted=len(leaked),
        note=f"{len(output.splitlines())} log lines checked; phone numbers masked too",
        test=TEST,
    )
    assert "custom/send" in output or "message" in output, "the test must have produced logs"
    assert not leaked, leaked
    assert "13812345678" not in output
