"""WeCom outbound through the outbox: app messages, app chats, the AI bot's response_url; the API's limits."""

from __future__ import annotations

import pytest

from bot.clients import get_client, wecom_api
from delivery.outbox import deliver_outbox
from models import Outbox, OutboxStatus, db
from tests.support.wecom_push import wecom_settings


@pytest.fixture
def wecom(app, monkeypatch):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(app.config, key, value)
    return app


def deliver(app, channel: str, recipient: str, payload: dict) -> Outbox:
    with app.app_context():
        row = Outbox(channel=channel, recipient=recipient, kind="test", payload=payload, dedup_key=f"t:{channel}")
        db.session.add(row)
        db.session.commit()
        deliver_outbox(row.id)
        return db.session.get(Outbox, row.id)


def test_an_app_message_goes_to_the_member_with_the_agent_id(wecom, fake_api):
    row = deliver(wecom, "wecom_app", "lixl", {"text": "工单已受理"})
    assert row.status == OutboxStatus.SENT
    [call] = fake_api.sent("/cgi-bin/message/send")
    assert call.body == {"touser": "lixl", "msgtype": "text", "agentid": 1000002, "text": {"content": "工单已受理"}}


def test_an_app_message_to_an_unreachable_member_fails_visibly(wecom, fake_api):
    fake_api.fail_next("/cgi-bin/message/send", (200, {"errcode": 0, "errmsg": "ok", "invaliduser": "ghost"}))
    assert deliver(wecom, "wecom_app", "ghost", {"text": "x"}).status == OutboxStatus.FAILED


def test_a_long_app_message_is_split_not_cut(wecom, fake_api):
    text = "阳光花园3栋路灯不亮。\n" * 200
    deliver(wecom, "wecom_app", "lixl", {"text": text})
    parts = [c.body["text"]["content"] for c in fake_api.sent("/cgi-bin/message/send")]
    assert len(parts) > 1 and "".join(parts) == text and all(len(p.encode()) <= 2048 for p in parts)


def test_an_app_chat_message_goes_to_the_chat(wecom, fake_api):
    row = deliver(wecom, "wecom_appchat", "qsxcounty", {"msgtype": "markdown", "content": "**新工单**"})
    assert row.status == OutboxStatus.SENT
    [call] = fake_api.sent("/cgi-bin/appchat/send")
    assert call.body == {"chatid": "qsxcounty", "msgtype": "markdown", "markdown": {"content": "**新工单**"}}


def test_a_response_url_on_another_host_is_never_called(wecom, fake_api):
    row = deliver(wecom, "wecom_bot", "lixl", {"text": "x", "response_url": "http://169.254.169.254/latest"})
    assert row.status == OutboxStatus.FAILED
    assert fake_api.calls == []


def test_an_expired_response_url_fails_without_retrying(wecom, fake_api):
    fake_api.fail_next("/cgi-bin/aibot/response", (200, {"errcode": 40001, "errmsg": "invalid response_code"}))
    url = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=OLD"
    assert deliver(wecom, "wecom_bot", "lixl", {"text": "x", "response_url": url}).status == OutboxStatus.FAILED


def test_the_api_takes_at_most_1000_members_a_call(wecom):
    with wecom.app_context():
        api = wecom_api()
        with pytest.raises(ValueError):
            api.send_text([f"u{i}" for i in range(1001)], "x")
        with pytest.raises(ValueError):
            api.send_markdown([], "x")


def test_every_wecom_channel_has_a_client(wecom):
    with wecom.app_context():
        assert {get_client(c).name for c in ("wecom_app", "wecom_appchat", "wecom_robot", "wecom_bot")} == {
            "wecom_app",
            "wecom_appchat",
            "wecom_robot",
            "wecom_bot",
        }
