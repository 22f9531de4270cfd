"""GET/POST /wechat/work (self-built app, XML) and /wechat/work/bot (AI bot, JSON): real enterprise crypto
building WeCom's pushes; what we store, answer and refuse."""

from __future__ import annotations

import json
import time

import pytest

from models import InboundMessage, db
from tests.support.wecom_push import (
    app_event_xml,
    app_push,
    app_text_xml,
    bot_message,
    bot_push,
    decrypt_bot_reply,
    verification_query,
    wecom_settings,
)


@pytest.fixture
def wecom(app, monkeypatch):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(app.config, key, value)
    return app


def stored(app) -> list[InboundMessage]:
    with app.app_context():
        return db.session.execute(db.select(InboundMessage).order_by(InboundMessage.id)).scalars().all()


def queued(redis) -> int:
    return redis.llen("rq:queue:intake")


def post_app(client, query: str, body: bytes):
    return client.post(f"/wechat/work?{query}", data=body, content_type="text/xml")


def post_bot(client, query: str, body: bytes):
    return client.post(f"/wechat/work/bot?{query}", data=body, content_type="application/json")


@pytest.mark.parametrize("path,bot", [("/wechat/work", False), ("/wechat/work/bot", True)])
def test_url_verification_answers_the_decrypted_echostr(wecom, client, path, bot):
    response = client.get(f"{path}?{verification_query('5927782489442352469', bot=bot)}")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "5927782489442352469"


@pytest.mark.parametrize("path", ["/wechat/work", "/wechat/work/bot"])
def test_url_verification_with_a_bad_signature_is_forbidden(wecom, client, path):
    query = verification_query("12345", bot=path.endswith("bot")).replace("msg_signature=", "msg_signature=0")
    assert client.get(f"{path}?{query}").status_code == 403


def test_the_published_wecom_test_vector_verifies():
    from wechatpy.enterprise.crypto import WeChatCrypto

    crypto = WeChatCrypto("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")
    echo = crypto.check_signature(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        "1411443780",
        "437374425",
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
    )
    assert echo == "5927782489442352469"


def test_an_app_text_push_is_stored_once_and_queued_and_answered_empty(wecom, client, redis):
    xml = app_text_xml("lixl", "【事项】路灯不亮【地点】阳光花园3栋", msg_id=73001)
    for _ in range(3):  # WeCom retries when it hears nothing within 5 s
        response = post_app(client, *app_push(xml))
        assert response.status_code == 200
        assert response.get_data(as_text=True) == ""
    rows = stored(wecom)
    assert [(r.channel, r.dedup_key, r.sender, r.msg_type, r.content) for r in rows] == [
        ("wecom", "msg:73001", "lixl", "text", "【事项】路灯不亮【地点】阳光花园3栋")
    ]
    assert queued(redis) == 1


def test_an_app_event_is_stored_with_its_event_name(wecom, client):
    assert post_app(client, *app_push(app_event_xml("lixl", "enter_agent", create_time=1714036504))).status_code == 200
    assert [(r.channel, r.msg_type) for r in stored(wecom)] == [("wecom", "event:enter_agent")]


def test_app_pushes_with_bad_signature_forged_ciphertext_or_stale_time_are_forbidden(wecom, client, redis):
    xml = app_text_xml("lixl", "路灯不亮", msg_id=73002)
    query, body = app_push(xml)
    assert post_app(client, query.replace("msg_signature=", "msg_signature=f"), body).status_code == 403
    assert post_app(client, *app_push(xml, token="not-the-token")).status_code == 403
    assert post_app(client, *app_push(xml, corp_id="ww_other_corp")).status_code == 403
    forged = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
    assert post_app(client, query, forged).status_code == 403
    assert post_app(client, *app_push(xml, timestamp=int(time.time()) - 3600)).status_code == 403
    assert stored(wecom) == [] and queued(redis) == 0


@pytest.mark.parametrize(
    "body",
    [b"not xml at all", b"<xml><Encrypt>", b"<xml><ToUserName>x</ToUserName></xml>", b"<!DOCTYPE x []><xml/>"],
)
def test_malformed_app_bodies_are_bad_requests(wecom, client, body):
    query, _ = app_push(app_text_xml("lixl", "x", 1))
    assert post_app(client, query, body).status_code == 400
    assert stored(wecom) == []


def test_an_oversized_app_body_is_refused_unread(wecom, client):
    query, _ = app_push(app_text_xml("lixl", "x", 1))
    assert post_app(client, query, b"<xml>" + b"a" * (1024 * 1024 + 1) + b"</xml>").status_code == 400


def test_a_bot_message_is_stored_without_the_mention_and_answered_with_an_encrypted_stream(wecom, client, redis):
    message = bot_message("lixl", "@网格助手 【事项】东大菜市场门口井盖丢了", msgid="CAIQ16HM01")
    for _ in range(2):
        response = post_bot(client, *bot_push(message))
        assert response.status_code == 200
        reply = decrypt_bot_reply(response.data)
        assert reply["msgtype"] == "stream" and reply["stream"]["finish"] is True
        assert "已收到" in reply["stream"]["content"]
    rows = stored(wecom)
    assert [(r.channel, r.dedup_key, r.sender, r.msg_type, r.content) for r in rows] == [
        ("wecom_bot", "msg:CAIQ16HM01", "lixl", "text", "【事项】东大菜市场门口井盖丢了")
    ]
    assert rows[0].payload["response_url"].endswith("response_code=RCCAIQ16HM01")
    assert rows[0].payload["chattype"] == "group"
    assert queued(redis) == 1


def test_a_bot_mixed_message_keeps_its_words_and_picture(wecom, client):
    message = bot_message("lixl", "", msgid="MIX1", msgtype="mixed")
    message["mixed"] = {
        "msg_item": [
            {"msgtype": "text", "text": {"content": "@网格助手 阳光花园路灯不亮"}},
            {"msgtype": "image", "image": {"url": "https://wework.example/pic1"}},
        ]
    }
    assert post_bot(client, *bot_push(message)).status_code == 200
    row = stored(wecom)[0]
    assert (row.msg_type, row.content, row.payload["media_url"]) == (
        "text",
        "阳光花园路灯不亮",
        "https://wework.example/pic1",
    )


def test_entering_the_bot_chat_gets_a_welcome_and_stores_nothing(wecom, client):
    message = {
        "msgid": "EV1",
        "aibotid": "AIBOTID",
        "from": {"userid": "lixl"},
        "msgtype": "event",
        "event": {"eventtype": "enter_chat"},
    }
    response = post_bot(client, *bot_push(message))
    assert decrypt_bot_reply(response.data)["msgtype"] == "text"
    assert stored(wecom) == []


def test_bot_pushes_that_fail_the_crypto_are_forbidden(wecom, client, redis):
    message = bot_message("lixl", "路灯不亮", msgid="BAD1")
    query, body = bot_push(message)
    assert post_bot(client, query.replace("msg_signature=", "msg_signature=0"), body).status_code == 403
    assert post_bot(client, *bot_push(message, token="wrong-token")).status_code == 403
    forged = json.dumps({"encrypt": "AAAA" + json.loads(body)["encrypt"][4:]}).encode()
    assert post_bot(client, query, forged).status_code == 403
    assert post_bot(client, *bot_push(message, timestamp=int(time.time()) - 3600)).status_code == 403
    assert stored(wecom) == [] and queued(redis) == 0


def test_malformed_bot_json_is_a_bad_request(wecom, client):
    query, _ = bot_push(bot_message("lixl", "x", msgid="M1"))
    for body in (b"{not json", b"[]", b'{"encrypt": ""}', b'{"other": 1}'):
        assert post_bot(client, query, body).status_code == 400
    assert post_bot(client, query, b"{" + b" " * (1024 * 1024) + b"}").status_code == 400
    assert stored(wecom) == []


def test_a_bot_payload_that_decrypts_to_non_json_is_a_bad_request(wecom, client):
    from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

    from tests.support.wechat_push import signature
    from tests.support.wecom_push import BOT_AES_KEY, BOT_TOKEN

    ts, nonce = str(int(time.time())), "42"
    encrypt = PrpCrypto(WeChatCrypto(BOT_TOKEN, BOT_AES_KEY, "").key).encrypt("<xml>not json</xml>", "").decode()
    query = f"msg_signature={signature(BOT_TOKEN, ts, nonce, encrypt)}&timestamp={ts}&nonce={nonce}"
    assert post_bot(client, query, json.dumps({"encrypt": encrypt}).encode()).status_code == 400


def test_without_wecom_configuration_every_push_is_refused(client, app):
    query, body = app_push(app_text_xml("lixl", "x", 1))
    assert post_app(client, query, body).status_code == 403
    assert stored(app) == []
