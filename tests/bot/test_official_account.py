"""POST/GET /wechat/mp: what WeChat sends, what we store and answer, what we refuse."""

from __future__ import annotations

import time

import pytest

from models import InboundMessage, db
from tests.conftest import settings_for_tests
from tests.support.wechat_push import (
    APPID,
    TOKEN,
    encrypted_push,
    event_xml,
    plaintext_push,
    signature,
    text_xml,
)


def post(client, query: str, body: bytes):
    return client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml")


def stored(app) -> list[InboundMessage]:
    with app.app_context():
        return db.session.execute(db.select(InboundMessage).order_by(InboundMessage.id)).scalars().all()


def queued(redis, name: str = "intake") -> int:
    return redis.llen(f"rq:queue:{name}")


def test_url_verification_echoes_echostr(client):
    ts, nonce = str(int(time.time())), "4242"
    response = client.get(
        "/wechat/mp",
        query_string={
            "signature": signature(TOKEN, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": "hello-echo-123",
        },
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "hello-echo-123"


def test_url_verification_with_wrong_signature_is_forbidden(client):
    response = client.get(
        "/wechat/mp", query_string={"signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "x"}
    )
    assert response.status_code == 403
    assert "x" not in response.get_data(as_text=True)


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
def test_a_text_push_in_every_mode_is_stored_once_and_queued(app, client, redis, mode, monkeypatch):
    xml = text_xml("oResident1", "阳光花园路灯坏了", msg_id=1001)
    if mode == "plaintext":  # an account in plaintext mode has no EncodingAESKey configured
        monkeypatch.setitem(app.config, "WECHAT_AES_KEY", "")
    query, body = plaintext_push(xml) if mode == "plaintext" else encrypted_push(xml, compatible=mode == "compatible")
    response = post(client, query, body)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "success"
    rows = stored(app)
    assert [(r.channel, r.dedup_key, r.sender, r.msg_type, r.content) for r in rows] == [
        ("mp", "msg:1001", "oResident1", "text", "阳光花园路灯坏了")
    ]
    assert queued(redis) == 1


def test_platform_retries_are_acknowledged_but_stored_and_queued_once(app, client, redis):
    xml = text_xml("oResident1", "路灯坏了", msg_id=2002)
    for _ in range(3):
        response = post(client, *encrypted_push(xml))
        assert response.get_data(as_text=True) == "success"
    assert len(stored(app)) == 1
    assert queued(redis) == 1


def test_events_are_deduplicated_by_sender_time_and_event(app, client):
    created = int(time.time())
    for _ in range(2):
        post(client, *encrypted_push(event_xml("oResident2", "subscribe", create_time=created)))
    post(client, *encrypted_push(event_xml("oResident2", "unsubscribe", create_time=created)))
    assert [r.dedup_key for r in stored(app)] == [
        f"oResident2:{created}:subscribe",
        f"oResident2:{created}:unsubscribe",
    ]


def _refused(app, client, redis, query: str, body: bytes, status: int) -> None:
    response = post(client, query, body)
    assert response.status_code == status
    assert response.get_data(as_text=True) != "success"
    assert stored(app) == []
    assert queued(redis) == 0


def test_safe_mode_refuses_a_plaintext_push_even_with_a_valid_query_signature(app, client, redis):
    """A captured URL (signature/timestamp/nonce) must not carry a forged plaintext body: with the AES key
    set, only the encrypted body, checked against msg_signature, is accepted."""
    forged = text_xml("oSomeoneElse", "取消 2612040001", msg_id=3003)
    query, body = plaintext_push(forged)
    _refused(app, client, redis, query, body, 400)
    # the same without encrypt_type but with msg_signature in the query: still plaintext, still refused
    _refused(app, client, redis, query + "&msg_signature=" + "0" * 40, body, 400)


def test_compatible_mode_accepts_plaintext_when_configured(app, client, redis, monkeypatch):
    monkeypatch.setitem(app.config, "WECHAT_MSG_MODE", "compatible")
    response = post(client, *plaintext_push(text_xml("oResident9", "路灯坏了", msg_id=3004)))
    assert response.status_code == 200 and response.get_data(as_text=True) == "success"
    assert [r.sender for r in stored(app)] == ["oResident9"]


def test_bad_signature_is_forbidden_and_changes_nothing(app, client, redis):
    query, body = plaintext_push(text_xml("o1", "x", 1), token="not-the-token")
    _refused(app, client, redis, query, body, 403)


def test_bad_msg_signature_is_forbidden(app, client, redis):
    query, body = encrypted_push(text_xml("o1", "x", 1))
    query = query.replace("msg_signature=", "msg_signature=00")
    _refused(app, client, redis, query, body, 403)


def test_ciphertext_for_another_appid_is_forbidden(app, client, redis):
    query, body = encrypted_push(text_xml("o1", "x", 1), appid="wxSomebodyElse0000")
    _refused(app, client, redis, query, body, 403)


def test_replayed_old_timestamp_is_forbidden(app, client, redis):
    query, body = encrypted_push(text_xml("o1", "x", 1), timestamp=int(time.time()) - 3600)
    _refused(app, client, redis, query, body, 403)


@pytest.mark.parametrize(
    "body",
    [
        b"this is not xml",
        b'{"ToUserName": "json where XML is due"}',
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<xml><Content>&lol2;</Content></xml>",
        b'<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>',
        b"<xml><Content>\xff\xfe not utf-8</Content></xml>",
        b"<xml><Content>truncated",
        b"<xml>" + b"a" * (1024 * 1024 + 10) + b"</xml>",
    ],
    ids=["not-xml", "json", "billion-laughs", "external-entity", "non-utf8", "truncated", "over-1MiB"],
)
def test_bodies_we_refuse_to_parse_get_400(app, client, redis, body):
    query, _ = plaintext_push("")
    _refused(app, client, redis, query, body, 400)


def test_truncated_ciphertext_gets_400(app, client, redis):
    query, body = encrypted_push(text_xml("o1", "x", 1))
    text = body.decode()
    start = text.index("<![CDATA[", text.index("<Encrypt>")) + 9
    tampered = text[:start] + text[start : start + 40] + text[text.index("]]></Encrypt>") :]
    # Re-sign so only the ciphertext's shape is wrong.
    from urllib.parse import parse_qs, urlencode

    args = {k: v[0] for k, v in parse_qs(query).items()}
    args["msg_signature"] = signature(TOKEN, args["timestamp"], args["nonce"], text[start : start + 40])
    _refused(app, client, redis, urlencode(args), tampered.encode(), 400)


def test_encrypted_push_without_configured_key_is_refused(database_url, redis_url, fake_api, app):
    from app import create_app

    plain_app = create_app(
        "test", overrides=settings_for_tests(database_url, redis_url, fake_api.base_url, WECHAT_AES_KEY="")
    )
    response = post(plain_app.test_client(), *encrypted_push(text_xml("o1", "x", 1)))
    assert response.status_code == 400
    assert stored(app) == []


def test_push_is_stored_and_acknowledged_while_redis_is_down(database_url, fake_api, app):
    """The durable row is what matters: the recovery sweep enqueues it once Redis is back."""
    from app import create_app

    dead_port_url = "redis://127.0.0.1:1/0"
    down_app = create_app("test", overrides=settings_for_tests(database_url, dead_port_url, fake_api.base_url))
    response = post(down_app.test_client(), *encrypted_push(text_xml("oResident9", "垃圾没人清理", 3003)))
    assert response.get_data(as_text=True) == "success"
    assert [r.dedup_key for r in stored(app)] == ["msg:3003"]
    health = down_app.test_client().get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["redis"].startswith("down")


def test_healthz_reports_ok_with_queue_counts(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.get_json()
    assert data["database"] == "ok" and data["redis"] == "ok"
    assert set(data["queues"]) == {"intake", "delivery", "workflow", "broadcast"}


def test_bad_aes_key_is_a_clear_error_at_start():
    from app import create_app
    from config import ConfigError

    with pytest.raises(ConfigError, match="43 characters"):
        create_app("test", overrides={"WECHAT_AES_KEY": "too-short", "WECHAT_APPID": APPID})


def test_webhooks_open_no_session_and_the_console_still_does(app):
    from flask import session
    from flask.sessions import NullSession

    with app.test_request_context("/wechat/mp"):
        assert isinstance(session._get_current_object(), NullSession)
    with app.test_request_context("/console/login"):
        assert not isinstance(session._get_current_object(), NullSession)
