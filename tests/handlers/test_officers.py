"""Officers end to end: WeCom push (real enterprise crypto) → durable row → RQ → ticket/command → reply through
the fake WeCom API (app message or the bot's response_url), and the tier groups told by their robots."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.intake import handle_inbound
from handlers.parsing import get_parser
from models import InboundMessage, InboundStatus, Member, Outbox, Ticket, TicketStatus, db, utcnow
from tests.support.wecom_push import (
    AGENT_ID,
    CORP_ID,
    SECRET,
    app_push,
    app_text_xml,
    bot_message,
    bot_push,
    wecom_settings,
)

GRID = "990101001001"  # 东大社区第一网格: lixl (info officer), zhangwy (grid officer)
_msg_ids = iter(range(900000, 999999))


@pytest.fixture
def wecom(region, monkeypatch):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(region.config, key, value)
    return region


def push_app(client, userid: str, text: str) -> None:
    query, body = app_push(app_text_xml(userid, text, next(_msg_ids)))
    assert client.post(f"/wechat/work?{query}", data=body, content_type="text/xml").status_code == 200


def replies(fake_api, userid: str) -> list[str]:
    return [
        c.body["text"]["content"]
        for c in fake_api.sent("/cgi-bin/message/send")
        if c.body["touser"] == userid and c.body["msgtype"] == "text"
    ]


def robot_posts(fake_api, key: str) -> list[str]:
    return [c.body["markdown"]["content"] for c in fake_api.sent("/cgi-bin/webhook/send") if c.args["key"] == key]


def tickets(app) -> list[Ticket]:
    with app.app_context():
        rows = db.session.execute(db.select(Ticket).order_by(Ticket.id)).scalars().all()
        for row in rows:
            _ = row.reporters, row.events
        return rows


def test_an_officers_bracket_report_becomes_a_wecom_ticket_in_their_grid(wecom, client, fake_api, run_jobs):
    push_app(
        client,
        "lixl",
        "【事项】3号楼门口路灯不亮，晚上很黑【地点】阳光花园3栋【诉求人】张先生【电话】13912345678【紧急】否",
    )
    run_jobs()
    [ticket] = tickets(wecom)
    assert ticket.channel == "wecom" and ticket.status == TicketStatus.ASSIGNED
    assert ticket.grid_code == GRID and ticket.owner_code == GRID
    assert ticket.urgency == "normal"
    [reporter] = ticket.reporters
    assert (reporter.channel, reporter.external_id, reporter.name, reporter.phone) == (
        "wecom",
        "lixl",
        "张先生",
        "13912345678",
    )
    assert ticket.events[0].actor == "officer:lixl"
    [reply] = replies(fake_api, "lixl")
    assert ticket.number in reply and ticket.category in reply and "东大社区第一网格" in reply and "办结时限" in reply
    send = fake_api.sent("/cgi-bin/message/send")[0]
    assert send.body["agentid"] == int(AGENT_ID)
    [token_call] = fake_api.sent("/cgi-bin/gettoken")
    assert token_call.args == {"corpid": CORP_ID, "corpsecret": SECRET}
    # the groups of the grid's town and of the county see it, with the grid's team @-mentioned
    for key in ("demo-chengguan-robot", "demo-county-robot"):
        [notice] = robot_posts(fake_api, key)
        assert ticket.number in notice and "<@zhangwy>" in notice and "<@lixl>" in notice
        assert "13912345678" not in notice  # no resident phone numbers in group chats


def test_free_text_without_a_place_defaults_to_the_officers_grid(wecom, client, fake_api, run_jobs):
    push_app(client, "lixl", "有居民反映楼道里堆满杂物，存在消防隐患")
    run_jobs()
    [ticket] = tickets(wecom)
    assert ticket.grid_code == GRID and ticket.channel == "wecom"
    assert ticket.number in replies(fake_api, "lixl")[0]


def test_an_unknown_wecom_user_is_refused_politely_and_nothing_is_created(wecom, client, fake_api, run_jobs):
    push_app(client, "stranger01", "【事项】路灯不亮【地点】阳光花园3栋")
    run_jobs()
    assert tickets(wecom) == []
    [reply] = replies(fake_api, "stranger01")
    assert "尚未登记" in reply
    assert fake_api.sent("/cgi-bin/webhook/send") == []


def test_an_inactive_member_is_refused(wecom, client, fake_api, run_jobs):
    with wecom.app_context():
        db.session.execute(db.update(Member).filter_by(wecom_userid="lixl").values(active=False))
        db.session.commit()
    push_app(client, "lixl", "【事项】路灯不亮【地点】阳光花园3栋")
    run_jobs()
    assert tickets(wecom) == [] and "尚未登记" in replies(fake_api, "lixl")[0]


def test_officer_query_is_limited_to_their_region(wecom, client, fake_api, run_jobs):
    push_app(client, "lixl", "【事项】井盖丢了【地点】阳光花园3栋")
    push_app(client, "maj", "【事项】垃圾堆放多日无人清理【地点】滨河小区")  # 西环社区, 河西街道
    run_jobs()
    ours, theirs = tickets(wecom)
    assert theirs.grid_code.startswith("990102")
    push_app(client, "lixl", f"查询 {ours.number}")
    push_app(client, "lixl", f"查询 {theirs.number}")
    push_app(client, "liuhm", f"查询 {ours.number}")  # 城关镇 staff: the grid is in their subtree
    push_app(client, "lixl", "查询")
    run_jobs()
    answers = replies(fake_api, "lixl")[1:]  # replies are delivered concurrently: match them by content
    [own] = [a for a in answers if a.startswith("工单号：")]
    [other] = [a for a in answers if a.startswith("没有找到")]
    [listing] = [a for a in answers if a.startswith("待办工单")]
    assert ours.number in own and "东大社区第一网格" in own
    assert theirs.number in other and theirs.category not in other
    assert ours.number in replies(fake_api, "liuhm")[0]
    assert ours.number in listing and theirs.number not in listing


def test_officers_sign_and_resolve_by_message(wecom, client, fake_api, run_jobs):
    push_app(client, "lixl", "【事项】3号楼门口路灯不亮【地点】阳光花园3栋")
    run_jobs()
    [ticket] = tickets(wecom)
    push_app(client, "zhangwy", f"签收 {ticket.number}")
    run_jobs()
    assert tickets(wecom)[0].status == TicketStatus.SIGNED
    assert "已签收" in replies(fake_api, "zhangwy")[-1]
    push_app(client, "zhangwy", f"办结 {ticket.number}")  # no note: the workflow refuses, nothing changes
    run_jobs()
    assert tickets(wecom)[0].status == TicketStatus.SIGNED
    assert "无法办结" in replies(fake_api, "zhangwy")[-1]
    push_app(client, "zhangwy", f"办结 {ticket.number} 已更换灯泡，恢复照明")
    run_jobs()
    [done] = tickets(wecom)
    assert done.status == TicketStatus.RESOLVED
    assert [e.actor for e in done.events if e.kind in ("sign", "resolve")] == ["officer:zhangwy", "officer:zhangwy"]
    assert "已办结" in replies(fake_api, "zhangwy")[-1]
    # the reporter (the officer who reported it) hears of it too, through the app
    assert any("已办结" in text for text in replies(fake_api, "lixl"))


def test_officers_cannot_act_outside_their_region(wecom, client, fake_api, run_jobs):
    push_app(client, "maj", "【事项】垃圾堆放多日无人清理【地点】滨河小区")
    run_jobs()
    [ticket] = tickets(wecom)
    push_app(client, "lixl", f"签收 {ticket.number}")
    run_jobs()
    assert tickets(wecom)[0].status == TicketStatus.ASSIGNED
    assert "没有找到" in replies(fake_api, "lixl")[-1]


def test_a_report_through_the_ai_bot_is_answered_once_through_its_response_url(wecom, client, fake_api, run_jobs):
    message = bot_message("lixl", "@网格助手 【事项】东大菜市场门口井盖丢了【地点】东大菜市场", msgid="BOTMSG1")
    query, body = bot_push(message)
    assert client.post(f"/wechat/work/bot?{query}", data=body, content_type="application/json").status_code == 200
    run_jobs()
    [ticket] = tickets(wecom)
    assert ticket.channel == "wecom" and ticket.grid_code == GRID
    [answer] = fake_api.sent("/cgi-bin/aibot/response")
    assert answer.args == {"response_code": "RCBOTMSG1"}  # WeCom's URL, rebased onto WECOM_API_BASE
    assert answer.body["msgtype"] == "markdown" and ticket.number in answer.body["markdown"]["content"]
    assert replies(fake_api, "lixl") == []  # the bot's answer is the reply; no second one through the app


def test_a_picture_joins_the_officers_recent_report(wecom, client, fake_api, run_jobs):
    push_app(client, "lixl", "【事项】3号楼门口路灯不亮【地点】阳光花园3栋")
    run_jobs()
    message = bot_message("lixl", "", msgid="PIC1", chattype="single", msgtype="image")
    message["image"] = {"url": "https://wework.example/pic"}
    query, body = bot_push(message)
    client.post(f"/wechat/work/bot?{query}", data=body, content_type="application/json")
    run_jobs()
    [ticket] = tickets(wecom)
    assert [e.data.get("media_url") for e in ticket.events if e.kind == "attachment"] == ["https://wework.example/pic"]
    assert ticket.number in fake_api.sent("/cgi-bin/aibot/response")[0].body["markdown"]["content"]


def test_rerunning_an_officer_message_queues_nothing_twice(wecom, client, fake_api, run_jobs):
    push_app(client, "lixl", "【事项】3号楼门口路灯不亮【地点】阳光花园3栋")
    run_jobs()
    with wecom.app_context():
        row = db.session.execute(db.select(InboundMessage)).scalar_one()
        assert row.status == InboundStatus.PROCESSED and row.ticket_id
        count = db.session.execute(db.select(db.func.count(Outbox.id))).scalar_one()
        assert (
            handle_inbound(row.id, get_parser(wecom.instance_path), utcnow(), timedelta(hours=2), timedelta(30)) == []
        )
        assert db.session.execute(db.select(db.func.count(Outbox.id))).scalar_one() == count
