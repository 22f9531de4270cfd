"""What WeChat really sends, through the real webhook (wechatpy crypto) and the fake API: texts that are not
demands, locations far away or after a report, and the small protocol points (issue 16, part A)."""

from __future__ import annotations

import time

import pytest

from models import InboundMessage, Resident, Ticket, TicketStatus, db
from tests.handlers.test_intake_flow import acks, push, tickets
from tests.support.wechat_push import event_xml, message_xml, text_xml
from tests.support.wecom_push import app_push, wecom_settings

# Far from the demo county (Qingshan, near 30.5 N 114.3 E): Beijing is about 1,000 km away.
FAR = {"Location_X": 39.9087, "Location_Y": 116.3975, "Scale": 15, "Label": "北京市东城区"}
# Inside 东大社区第二网格's polygon.
NEAR = {"Location_X": 30.5045, "Location_Y": 114.3030, "Scale": 15, "Label": "建设路口"}


def inbound_rows(app) -> list[InboundMessage]:
    with app.app_context():
        return db.session.execute(db.select(InboundMessage).order_by(InboundMessage.id)).scalars().all()


def resident(app, openid: str) -> Resident:
    with app.app_context():
        return db.session.execute(db.select(Resident).filter_by(openid=openid)).scalar_one()


# --- the demand gate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("【收到不支持的消息类型，暂无法显示】", "placeholder", "暂时无法显示"),
        ("[收到不支持的消息类型，暂无法显示]", "placeholder", "暂时无法显示"),
        ("收到不支持的消息类型，暂无法显示", "placeholder", "暂时无法显示"),
        ("[该消息类型暂不能展示]", "placeholder", "暂时无法显示"),
        ("你好", "greeting", "您好"),
        ("您好，在吗？", "greeting", "您好"),
        ("this is a test", "test", "运行正常"),
        ("测试一下", "test", "运行正常"),
        ("谢谢！", "thanks", "不客气"),
        ("好的，谢谢啦", "thanks", "不客气"),
        ("https://mp.weixin.qq.com/s/AbCdEf123", "link", "链接"),
        ("😂😂👍", "emoji", "表情"),
        ("[捂脸][捂脸]", "emoji", "表情"),
        ("/::)/::)", "emoji", "表情"),
    ],
)
def test_texts_that_are_not_demands_get_a_short_reply_and_no_ticket(
    region, client, fake_api, run_jobs, text, kind, words
):
    push(client, text_xml("oGate", text, 31001))
    run_jobs()
    assert tickets(region) == []
    [reply] = acks(fake_api, "oGate")
    assert words in reply and "工单" not in reply
    [row] = inbound_rows(region)
    assert row.gate == kind and row.ticket_id is None


def test_a_demand_that_starts_with_a_greeting_still_becomes_a_ticket(region, client, fake_api, run_jobs):
    push(client, text_xml("oGate2", "你好，幸福里小区3号楼门口路灯不亮", 31101))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code == "990101002001"
    assert inbound_rows(region)[0].gate is None
    assert "工单号" in acks(fake_api, "oGate2")[0]


def test_a_shared_link_card_alone_is_not_a_demand_but_joins_a_recent_ticket(region, client, fake_api, run_jobs):
    link = {"Title": "这个小区的路灯", "Description": "分享", "Url": "https://example.invalid/a"}
    push(client, message_xml("oLink", "link", link, msg_id=31201))
    run_jobs()
    assert tickets(region) == [] and inbound_rows(region)[0].gate == "link"
    push(client, text_xml("oLink", "东大花园路灯不亮", 31202))
    push(client, message_xml("oLink", "link", link, msg_id=31203))
    run_jobs()
    [ticket] = tickets(region)
    assert [e.data.get("url") for e in ticket.events if e.kind == "attachment"] == ["https://example.invalid/a"]


def test_thanks_during_a_clarifying_dialog_keeps_the_question_open(region, client, fake_api, run_jobs):
    push(client, text_xml("oDialog", "路灯坏了好几天了，晚上走路很危险", 31301))
    run_jobs()
    push(client, text_xml("oDialog", "好的", 31302))
    run_jobs()
    reply = acks(fake_api, "oDialog")[-1]
    assert "不客气" in reply and "请补充具体地点" in reply
    push(client, text_xml("oDialog", "在幸福里小区3号楼", 31303))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code == "990101002001" and "location" not in ticket.missing


def test_non_demands_are_counted_for_metrics(region, client, run_jobs, redis):
    for index, text in enumerate(["你好", "谢谢", "【收到不支持的消息类型，暂无法显示】", "你好"]):
        push(client, text_xml(f"oCount{index}", text, 31400 + index))
    run_jobs()
    counts = {k.decode(): int(v) for k, v in redis.hgetall("metrics:non_demands").items()}
    assert counts == {"greeting": 2, "thanks": 1, "placeholder": 1}


# --- locations -----------------------------------------------------------------------------------------


def test_a_location_far_outside_the_county_routes_nothing_and_asks_for_the_place(region, client, fake_api, run_jobs):
    push(client, text_xml("oFar", "这里路面塌了一个大坑", 32001))
    run_jobs()
    push(client, message_xml("oFar", "location", FAR, msg_id=32002))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code is None and ticket.lat is None and "location" in ticket.missing
    located = [e for e in ticket.events if e.kind == "located"]
    assert located and located[0].data["how"] == "outside"
    assert "不在本县服务范围内" in acks(fake_api, "oFar")[-1] and "请补充具体地点" in acks(fake_api, "oFar")[-1]
    far = resident(region, "oFar")
    assert far.grid_code is None and far.lat is None


def test_a_location_event_outside_the_county_sets_no_home_grid(region, client, fake_api, run_jobs):
    now = int(time.time())
    far = event_xml("oTravel", "LOCATION", create_time=now, Latitude=39.9087, Longitude=116.3975, Precision=30.0)
    push(client, far)
    run_jobs()
    assert resident(region, "oTravel").grid_code is None
    push(client, text_xml("oTravel", "楼道里堆满了杂物，有消防隐患", 32101))  # no place in the words
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code is None and "location" in ticket.missing  # asked, not sent to a wrong grid
    assert "请补充具体地点" in acks(fake_api, "oTravel")[-1]
    near = event_xml("oTravel", "LOCATION", create_time=now + 1, Latitude=30.5045, Longitude=114.3030, Precision=30.0)
    push(client, near)
    run_jobs()
    assert resident(region, "oTravel").grid_code == "990101001002"


def test_nearest_grid_only_within_the_configured_distance(region, client, fake_api, run_jobs, monkeypatch):
    # Inside a configured county box, but 11 km from the nearest grid's point: no grid is guessed.
    monkeypatch.setitem(region.config, "COUNTY_BBOX", (114.0, 30.2, 114.6, 30.8))
    monkeypatch.setitem(region.config, "NEAREST_GRID_MAX_KM", 3.0)
    push(
        client,
        message_xml("oRural", "location", {"Location_X": 30.6, "Location_Y": 114.3, "Label": "山里"}, msg_id=32201),
    )
    run_jobs()
    rural = resident(region, "oRural")
    assert rural.grid_code is None and rural.lat == 30.6  # in the county: remembered, not routed
    assert "未能确定所属网格" in acks(fake_api, "oRural")[-1]
    monkeypatch.setitem(region.config, "NEAREST_GRID_MAX_KM", 20.0)
    push(
        client,
        message_xml("oRural", "location", {"Location_X": 30.6, "Location_Y": 114.3, "Label": "山里"}, msg_id=32202),
    )
    run_jobs()
    assert resident(region, "oRural").grid_code is not None


def test_a_configured_box_excludes_even_a_grid_point(region, client, fake_api, run_jobs, monkeypatch):
    monkeypatch.setitem(region.config, "COUNTY_BBOX", (100.0, 20.0, 101.0, 21.0))
    push(client, message_xml("oBox", "location", NEAR, msg_id=32301))
    run_jobs()
    assert resident(region, "oBox").grid_code is None
    assert "不在本县服务范围内" in acks(fake_api, "oBox")[-1]


def test_a_location_after_a_report_updates_a_ticket_that_already_has_a_grid(region, client, fake_api, run_jobs):
    now = int(time.time())
    # The QR code of 杨庄's grid: the resident's home grid routes their placeless report there.
    push(client, event_xml("oAfter", "subscribe", create_time=now, EventKey="qrscene_990103002001"))
    push(client, text_xml("oAfter", "有个井盖丢了，很危险", 32401))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code == "990103002001" and ticket.lat is None
    push(client, message_xml("oAfter", "location", NEAR, msg_id=32402))
    run_jobs()
    [ticket] = tickets(region)
    assert (ticket.lat, ticket.lng) == (30.5045, 114.3030)
    assert ticket.grid_code == "990101001002" and ticket.owner_code == "990101001002"  # where the hole is
    assert ticket.fields["routed_by"] == "location"
    assert "已收到您的补充" in acks(fake_api, "oAfter")[-1]


def test_a_location_after_a_report_that_named_its_place_keeps_the_grid_and_adds_the_point(region, client, run_jobs):
    push(client, text_xml("oNamed", "幸福里小区3号楼门口路灯不亮", 32501))
    run_jobs()
    push(client, message_xml("oNamed", "location", NEAR, msg_id=32502))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code == "990101002001"  # the words named the place; a nearby pin does not move it
    assert (ticket.lat, ticket.lng) == (30.5045, 114.3030)
    assert [e.data["how"] for e in ticket.events if e.kind == "located"] == ["contained"]


def test_a_location_with_no_fix_is_ignored(region, client, fake_api, run_jobs):
    push(client, message_xml("oZero", "location", {"Location_X": 0.0, "Location_Y": 0.0, "Label": ""}, msg_id=32601))
    run_jobs()
    zero = resident(region, "oZero")
    assert zero.lat is None and zero.grid_code is None


# --- protocol points -------------------------------------------------------------------------------------


def test_two_menu_clicks_in_one_second_are_two_pushes(region, client, fake_api, run_jobs):
    now = int(time.time())
    push(client, event_xml("oMenu", "CLICK", create_time=now, EventKey="HELP"))
    push(client, event_xml("oMenu", "CLICK", create_time=now, EventKey="MY_TICKETS"))
    push(client, event_xml("oMenu", "CLICK", create_time=now, EventKey="MY_TICKETS"))  # WeChat's retry
    run_jobs()
    rows = inbound_rows(region)
    assert len(rows) == 2 and {r.payload["EventKey"] for r in rows} == {"HELP", "MY_TICKETS"}
    assert len(acks(fake_api, "oMenu")) == 2


def test_wecom_customer_service_callback_without_sender_is_recorded_and_answered(app, client, monkeypatch):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(app.config, key, value)
    xml = (
        "<xml><ToUserName><![CDATA[ww0123456789abcdef]]></ToUserName><CreateTime>1714036504</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
        "<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>"
        "<OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId></xml>"
    )
    query, body = app_push(xml)
    response = client.post(f"/wechat/work?{query}", data=body, content_type="text/xml")
    assert response.status_code == 200
    [row] = inbound_rows(app)
    assert row.msg_type == "event:kf_msg_or_event" and row.sender == ""
    second = xml.replace("ENCApHxn", "ENCBpHxn")  # another callback in the same second
    query, body = app_push(second)
    assert client.post(f"/wechat/work?{query}", data=body, content_type="text/xml").status_code == 200
    assert len(inbound_rows(app)) == 2


def test_the_acknowledgement_without_a_place_names_no_empty_place(region, client, fake_api, run_jobs):
    push(client, text_xml("oNoPlace", "路灯坏了好几天了，晚上走路很危险", 33001))
    run_jobs()
    [ack] = acks(fake_api, "oNoPlace")
    assert "地点：（" not in ack and "承办：青山县" in ack


def test_the_ticket_page_names_what_is_missing_in_chinese(region, client, run_jobs):
    from tests.web.console.helpers import signed_in

    push(client, text_xml("oPage", "路灯坏了好几天了，晚上走路很危险", 33101))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.missing == ["location"]
    staff, _ = signed_in(region, "pagecheck", "admin", "990100")
    html = staff.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "<dt>待补充</dt><dd>地点</dd>" in html and ">location<" not in html
    assert ticket.status == TicketStatus.ASSIGNED


def test_an_image_is_not_gated(region, client, fake_api, run_jobs):
    push(
        client,
        message_xml("oImg", "image", {"PicUrl": "http://example.invalid/p.jpg", "MediaId": "mImg"}, msg_id=33201),
    )
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.status == TicketStatus.WAITING and isinstance(ticket, Ticket)


def test_staff_see_the_non_demands_counted_by_kind(region, client, run_jobs):
    from tests.web.console.helpers import signed_in

    now = int(time.time())
    # One resident placed in 东大 (城关镇) by a QR code, one nowhere.
    push(client, event_xml("oPlaced", "subscribe", create_time=now, EventKey="qrscene_990101001001"))
    push(client, text_xml("oPlaced", "你好", 34001))
    push(client, text_xml("oPlaced", "【收到不支持的消息类型，暂无法显示】", 34002))
    push(client, text_xml("oNowhere", "测试", 34003))
    run_jobs()
    county, _ = signed_in(region, "countyadmin", "admin", "990100")
    html = county.get("/console/non-demands").get_data(as_text=True)
    assert "共 3 条" in html
    assert '<tr data-kind="greeting"><td>问候</td><td>1</td></tr>' in html
    assert '<tr data-kind="placeholder"><td>微信占位消息（表情包等）</td><td>1</td></tr>' in html
    assert '<tr data-kind="test"><td>测试</td><td>1</td></tr>' in html
    town, _ = signed_in(region, "towncg", "staff", "990101")
    assert "共 2 条" in town.get("/console/non-demands").get_data(as_text=True)  # their resident's only
    other, _ = signed_in(region, "townhx", "staff", "990102")
    assert "共 0 条" in other.get("/console/non-demands").get_data(as_text=True)


def test_county_settings_are_read_and_checked(tmp_path):
    from config import ConfigError, load_settings

    settings = load_settings("test", str(tmp_path), {"COUNTY_BBOX": "114.0,30.2,114.6,30.8", "COUNTY_CENTER": ""})
    assert settings["COUNTY_BBOX"] == (114.0, 30.2, 114.6, 30.8) and settings["COUNTY_CENTER"] == ""
    with pytest.raises(ConfigError, match="COUNTY_BBOX"):
        load_settings("test", str(tmp_path), {"COUNTY_BBOX": "114,30,115"})
    with pytest.raises(ConfigError, match="COUNTY_CENTER"):
        load_settings("test", str(tmp_path), {"COUNTY_CENTER": "north,east"})


def test_a_rerouted_ticket_tells_the_new_grids_groups_once(region, client, fake_api, run_jobs):
    from models import Outbox

    now = int(time.time())
    push(client, event_xml("oGroups", "subscribe", create_time=now, EventKey="qrscene_990103002001"))
    push(client, text_xml("oGroups", "有个井盖丢了，很危险", 35001))
    run_jobs()
    with region.app_context():
        before = set(db.session.execute(db.select(Outbox.dedup_key).filter_by(kind="group_new")).scalars())
    push(client, message_xml("oGroups", "location", NEAR, msg_id=35002))
    run_jobs()
    with region.app_context():
        after = set(db.session.execute(db.select(Outbox.dedup_key).filter_by(kind="group_new")).scalars())
    added = after - before
    assert added and all(":990101" in key for key in added)  # 城关镇's group, never the county's twice
