"""Residents' messages end to end: webhook → durable row → RQ → parser → ticket → acknowledgement."""

from __future__ import annotations

import time

from models import InboundMessage, InboundStatus, Outbox, OutboxStatus, Resident, Ticket, TicketStatus, db
from tests.support.wechat_push import encrypted_push, event_xml, message_xml, plaintext_push, text_xml


def push(client, xml: str, encrypted: bool = True):
    query, body = encrypted_push(xml) if encrypted else plaintext_push(xml)
    response = client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml")
    assert response.get_data(as_text=True) == "success"


def tickets(app) -> list[Ticket]:
    with app.app_context():
        rows = db.session.execute(db.select(Ticket).order_by(Ticket.id)).scalars().all()
        for row in rows:
            _ = row.reporters, row.events
        return rows


def acks(fake_api, openid: str | None = None) -> list[str]:
    return [c.body["text"]["content"] for c in fake_api.sent() if openid is None or c.body["touser"] == openid]


def test_a_resident_message_becomes_a_routed_ticket_and_an_acknowledgement(region, client, fake_api, run_jobs):
    push(client, text_xml("oAlice", "阳光花园5号楼有人闻到很浓的煤气味，好像是502在漏气，电话13912345678", 5001))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.number and ticket.status == TicketStatus.ASSIGNED
    assert ticket.urgency == "urgent"
    assert ticket.grid_code == "990101001001" and ticket.owner_code == "990101001001"
    assert ticket.channel == "mp"
    assert ticket.due_at is not None and ticket.sign_due_at is not None
    assert ticket.reporters[0].external_id == "oAlice" and ticket.reporters[0].phone == "13912345678"
    assert [e.kind for e in ticket.events][:2] == ["created", "assigned"]
    [text] = acks(fake_api, "oAlice")
    assert ticket.number in text and "工单号" in text and "119" in text
    # the token was fetched from the configured base, once
    assert [c.path for c in fake_api.calls].count("/cgi-bin/token") == 1


def test_n_messages_each_delivered_three_times_make_n_tickets_and_n_acks(region, client, fake_api, run_jobs):
    texts = [
        "幸福里小区3号楼门口路灯不亮",
        "西环路农贸市场门口垃圾堆了好几天没人清理",
        "东大小学门口的井盖丢了",
        "杨庄小学旁边的路坑坑洼洼",
        "书香苑小区楼下广场舞噪音太大",
        "锦绣家园电梯经常停运",
    ]
    for index, text in enumerate(texts):
        for _ in range(3):
            push(client, text_xml(f"oUser{index}", text, 7000 + index))
    run_jobs()
    run_jobs()  # a second pass finds nothing new to do
    assert len(tickets(region)) == len(texts)
    assert len(acks(fake_api)) == len(texts)
    with region.app_context():
        assert db.session.execute(db.select(db.func.count(InboundMessage.id))).scalar_one() == len(texts)
        statuses = db.session.execute(db.select(Outbox.status).filter_by(channel="mp")).scalars().all()
    assert statuses == [OutboxStatus.SENT] * len(texts)


def test_a_thin_message_asks_for_the_place_and_merges_the_answer(region, client, fake_api, run_jobs):
    push(client, text_xml("oBob", "路灯坏了好几天了，晚上走路很危险", 8001))
    run_jobs()
    [ticket] = tickets(region)
    assert "location" in ticket.missing
    assert "地点" in acks(fake_api, "oBob")[0]
    push(client, text_xml("oBob", "在幸福里小区3号楼", 8002))
    run_jobs()
    [ticket] = tickets(region)  # the answer joined the same ticket
    assert ticket.grid_code == "990101002001" and "location" not in ticket.missing
    assert "supplemented" in [e.kind for e in ticket.events]
    assert "已收到您的补充" in acks(fake_api, "oBob")[-1]


def test_query_and_cancel_commands(region, client, fake_api, run_jobs):
    push(client, text_xml("oCarol", "滨河小区下水道堵了，污水漫出来", 9001))
    run_jobs()
    [ticket] = tickets(region)
    push(client, text_xml("oCarol", f"查询 {ticket.number}", 9002))
    push(client, text_xml("oMallory", f"查询 {ticket.number}", 9003))
    push(client, text_xml("oMallory", f"取消 {ticket.number}", 9004))
    run_jobs()
    assert ticket.number in acks(fake_api, "oCarol")[-1] and "已受理" in acks(fake_api, "oCarol")[-1]
    assert all("没有找到" in text for text in acks(fake_api, "oMallory"))  # other people's tickets stay hidden
    assert tickets(region)[0].status == TicketStatus.ASSIGNED
    push(client, text_xml("oCarol", f"取消 {ticket.number}", 9005))
    run_jobs()
    assert tickets(region)[0].status == TicketStatus.CANCELLED


def test_subscribe_welcomes_and_unsubscribe_keeps_open_tickets(region, client, fake_api, run_jobs):
    now = int(time.time())
    push(client, event_xml("oDave", "subscribe", create_time=now, EventKey="qrscene_990102001001"))
    run_jobs()
    assert "感谢关注" in acks(fake_api, "oDave")[0]
    push(client, text_xml("oDave", "楼道里堆满了杂物，有消防隐患", 9101))  # no place: the QR code's grid is used
    push(client, event_xml("oDave", "unsubscribe", create_time=now + 5))
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code == "990102001001" and ticket.status == TicketStatus.ASSIGNED
    with region.app_context():
        resident = db.session.execute(db.select(Resident).filter_by(openid="oDave")).scalar_one()
        assert resident.subscribed is False and resident.unsubscribed_at is not None


def test_location_message_places_the_ticket_in_the_grid_whose_boundary_contains_it(region, client, run_jobs):
    push(client, text_xml("oErin", "这里路面塌了一个大坑", 9201))
    run_jobs()
    push(
        client,
        message_xml(
            "oErin",
            "location",
            {"Location_X": 30.5045, "Location_Y": 114.3030, "Scale": 15, "Label": "建设路口"},
            msg_id=9202,
        ),
    )
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code == "990101001002"  # inside 东大社区第二网格's polygon
    assert ticket.lat == 30.5045 and "located" in [e.kind for e in ticket.events]


def test_location_without_boundaries_uses_the_nearest_grid_with_coordinates(region, client, run_jobs):
    push(
        client,
        message_xml(
            "oFrank",
            "location",
            {"Location_X": 30.4305, "Location_Y": 114.2399, "Scale": 15, "Label": "杨庄"},
            msg_id=9301,
        ),
    )
    run_jobs()
    with region.app_context():
        resident = db.session.execute(db.select(Resident).filter_by(openid="oFrank")).scalar_one()
    assert resident.grid_code == "990103002001"


def test_an_image_joins_the_recent_ticket_and_a_lone_image_starts_one(region, client, fake_api, run_jobs):
    push(client, text_xml("oGina", "幸福里小区2号楼楼顶漏水", 9401))
    run_jobs()
    push(
        client, message_xml("oGina", "image", {"PicUrl": "http://example.invalid/p.jpg", "MediaId": "m1"}, msg_id=9402)
    )
    push(
        client, message_xml("oHank", "image", {"PicUrl": "http://example.invalid/q.jpg", "MediaId": "m2"}, msg_id=9403)
    )
    run_jobs()
    gina, hank = tickets(region)
    assert [e.data.get("MediaId") for e in gina.events if e.kind == "attachment"] == ["m1"]
    assert hank.status == TicketStatus.WAITING and "图片" in acks(fake_api, "oHank")[0]
    push(client, text_xml("oHank", "西环路上有棵大树倒了挡住了路", 9404))
    run_jobs()
    hank = tickets(region)[1]
    assert hank.status == TicketStatus.ASSIGNED and hank.category


def test_voice_with_recognition_is_a_demand(region, client, run_jobs):
    push(
        client,
        message_xml(
            "oIvy", "voice", {"MediaId": "v1", "Format": "amr", "Recognition": "东大菜市场门口污水横流"}, msg_id=9501
        ),
    )
    run_jobs()
    [ticket] = tickets(region)
    assert ticket.grid_code == "990101001001"
    assert "attachment" in [e.kind for e in ticket.events]


def test_inbound_rows_are_marked_processed(region, client, run_jobs):
    push(client, text_xml("oJack", "东大花园路灯不亮", 9601))
    run_jobs()
    with region.app_context():
        row = db.session.execute(db.select(InboundMessage)).scalar_one()
        assert row.status == InboundStatus.PROCESSED and row.ticket_id is not None


def test_pushes_stored_while_redis_lost_its_queue_are_recovered_exactly_once(region, client, fake_api, redis, run_jobs):
    from jobs.intake import recover_inbound

    places = ["阳光花园", "幸福里小区", "滨河小区", "书香苑", "杨庄小学"]
    for index, place in enumerate(places):
        push(client, text_xml(f"oLost{index}", f"{place}路灯不亮", 96000 + index))
    redis.flushdb()  # Redis restarted empty: the queue and the drain flag are gone, the rows are not
    run_jobs()
    assert tickets(region) == []
    with region.app_context():
        assert recover_inbound(older_than_seconds=0) == 5
        assert recover_inbound(older_than_seconds=0) == 0  # a drain is scheduled: nothing fed twice
    run_jobs()
    assert len({t.reporters[0].external_id for t in tickets(region)}) == 5
    assert sorted(c.body["touser"] for c in fake_api.sent()) == [f"oLost{i}" for i in range(5)]


def _claim_as_a_drain_that_dies(redis, slot: int) -> list[int]:
    """Move the queue into the slot's claim list, as a drain does before it is SIGKILLed."""
    from jobs.intake import _CLAIM, CLAIM_KEY, DRAIN_FLAG, PENDING_KEY

    claimed = redis.register_script(_CLAIM)(keys=[PENDING_KEY, CLAIM_KEY.format(slot=slot)], args=[200])
    redis.delete(DRAIN_FLAG.format(slot=slot))  # its flag lapses
    return [int(value) for value in claimed]


def test_the_next_drain_of_a_slot_takes_back_what_a_killed_drain_had_claimed(region, client, fake_api, redis, run_jobs):
    for index in range(4):
        push(client, text_xml(f"oClaim{index}", "幸福里小区3号楼门口路灯不亮", 96100 + index))
    assert len(_claim_as_a_drain_that_dies(redis, 0)) == 4
    assert redis.llen("intake:pending") == 0
    run_jobs()  # the drain job the webhook scheduled finds an empty queue, but its slot's claim first
    assert sorted(c.body["touser"] for c in fake_api.sent()) == [f"oClaim{i}" for i in range(4)]
    assert redis.llen("intake:claimed:0") == 0


def test_the_recovery_sweep_hands_back_the_claim_of_a_slot_whose_drain_is_gone(
    region, client, fake_api, redis, run_jobs
):
    from jobs.intake import DRAIN_FLAG, recover_inbound

    for index in range(3):
        push(client, text_xml(f"oSlot{index}", "东大花园路灯不亮", 96200 + index))
    claimed = _claim_as_a_drain_that_dies(redis, 2)
    redis.set(DRAIN_FLAG.format(slot=0), 1)  # another drain is still alive: rows are not re-fed from the database
    with region.app_context():
        assert recover_inbound(older_than_seconds=0) == 0
    assert [int(value) for value in redis.lrange("intake:pending", 0, -1)] == claimed
    redis.delete(DRAIN_FLAG.format(slot=0))
    with region.app_context():
        recover_inbound(older_than_seconds=0)  # nothing alive, queue not empty: it starts a drain
    run_jobs()
    run_jobs()
    assert sorted(c.body["touser"] for c in fake_api.sent()) == [f"oSlot{i}" for i in range(3)]
