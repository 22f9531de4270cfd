"""Duplicates end to end: only a certain match joins, a likely one is suggested (可能重复) in the API and the
console, and a join can be undone by staff (`split`) or by the resident ("不是同一件事"); every reporter
keeps hearing the ticket they are on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models import InboundMessage, Ticket, TicketStatus, db
from tests.handlers.test_intake_flow import acks, push, tickets
from tests.handlers.test_officers import push_app, replies, wecom  # noqa: F401  (wecom is a fixture)
from tests.support.broadcasts import auth, token_for
from tests.support.wechat_push import message_xml, text_xml
from tests.web.console.helpers import signed_in
from tests.workflow.test_stories import T0, act, load, new_ticket
from workflow.policy import staff_actor
from workflow.tickets import sla_table
from workflow.transitions import ActionRefused, apply_action

LIGHT = "幸福里小区3号楼门口路灯不亮"
LIGHT_AGAIN = "幸福里小区3号楼门口的路灯坏了不亮，电话13912345678"


def COUNTY_ADMIN():  # noqa: N802 - reads as the actor it builds
    from models import User

    return staff_actor(User(username="test", role="admin", region_code="990100"), "api")


def kinds(ticket: Ticket) -> list[str]:
    return [e.kind for e in ticket.events]


def joined_at(ticket: Ticket):
    return next(e.created_at for e in ticket.events if e.kind == "duplicate_joined")


def test_a_different_problem_in_the_same_estate_is_never_joined(region, client, fake_api, run_jobs):
    push(client, text_xml("oLight", "幸福里小区2号楼楼道灯坏了，晚上上下楼看不见", 61001))
    push(client, text_xml("oDrain", "幸福里小区3号楼下水道堵了，污水都冒出来了", 61002))
    push(client, text_xml("oLift", "阳光花园5栋电梯坏了，老人上不去楼", 61003))
    push(client, text_xml("oBins", "阳光花园5栋楼下垃圾桶满了没人清", 61004))
    run_jobs()
    rows = tickets(region)
    assert [[r.external_id for r in t.reporters] for t in rows] == [["oLight"], ["oDrain"], ["oLift"], ["oBins"]]
    for openid, ticket in zip(("oLight", "oDrain", "oLift", "oBins"), rows, strict=True):
        [ack] = acks(fake_api, openid)
        assert ticket.number in ack and "合并" not in ack
    assert not any("duplicate_joined" in kinds(t) for t in rows)


def test_a_resident_who_says_not_the_same_gets_their_own_ticket_at_once(region, client, fake_api, run_jobs):
    push(client, text_xml("oFirst", LIGHT, 62001))
    run_jobs()
    push(client, text_xml("oSecond", LIGHT_AGAIN, 62002))
    run_jobs()
    push(client, message_xml("oSecond", "image", {"PicUrl": "http://example.invalid/l.jpg", "MediaId": "mL"}, 62003))
    run_jobs()
    [ticket] = tickets(region)
    assert [r.external_id for r in ticket.reporters] == ["oFirst", "oSecond"]
    assert ticket.number in acks(fake_api, "oSecond")[0] and "不是同一件事" in acks(fake_api, "oSecond")[0]
    reported = joined_at(ticket)

    push(client, text_xml("oSecond", "不是同一件事", 62004))
    run_jobs()
    first, own = tickets(region)
    assert [r.external_id for r in first.reporters] == ["oFirst"]
    assert [(r.external_id, r.phone) for r in own.reporters] == [("oSecond", "13912345678")]
    reply = acks(fake_api, "oSecond")[-1]
    assert own.number in reply and "单独立案" in reply
    # their words, picture and events moved with them; the clocks run from when they reported
    assert "3号楼" in own.description and own.grid_code == first.grid_code and own.status == TicketStatus.ASSIGNED
    assert [e.data.get("MediaId") for e in own.events if e.kind == "attachment"] == ["mL"]
    assert "duplicate_joined" in kinds(own) and "split_from" in kinds(own)
    assert "duplicate_joined" not in kinds(first) and "attachment" not in kinds(first) and "split" in kinds(first)
    assert own.created_at == reported
    rule = sla_table().rule_for(own.urgency, own.subcategory)
    assert own.sign_due_at == rule.sign.after(reported) and own.due_at == rule.resolve.after(reported)
    with region.app_context():
        senders = db.session.execute(
            db.select(InboundMessage.ticket_id).filter(InboundMessage.sender == "oSecond")
        ).scalars()
        assert set(senders) == {own.id}

    # the pair is never matched again: once their own ticket is done, the same words from them are a new
    # ticket, not a join of the one they said was different
    now = datetime.now(UTC)
    act(region, own.id, "sign", now)
    act(region, own.id, "resolve", now, note="已核实处理")
    push(client, text_xml("oSecond", LIGHT_AGAIN, 62005))
    run_jobs()
    first, own, again = tickets(region)
    assert [r.external_id for r in first.reporters] == ["oFirst"]
    assert [r.external_id for r in again.reporters] == ["oSecond"] and "合并" not in acks(fake_api, "oSecond")[-1]
    # while anyone else saying the same is still joined to the first
    push(client, text_xml("oThird", LIGHT_AGAIN, 62006))
    run_jobs()
    assert "oThird" in [r.external_id for r in tickets(region)[0].reporters + tickets(region)[2].reporters]
    assert len(tickets(region)) == 3


def test_saying_not_the_same_without_a_join_is_just_a_message(region, client, fake_api, run_jobs):
    push(client, text_xml("oAlone", LIGHT, 63001))
    run_jobs()
    push(client, text_xml("oAlone", "不是同一件事", 63002))
    run_jobs()
    assert len(tickets(region)) == 1
    assert "没有合并" in acks(fake_api, "oAlone")[-1]


def test_staff_split_moves_the_reporter_and_everyone_keeps_hearing_their_own_ticket(region, client, fake_api, run_jobs):
    for index, openid in enumerate(("oA", "oB", "oC")):
        push(client, text_xml(openid, LIGHT if index == 0 else LIGHT_AGAIN, 64001 + index))
        run_jobs()
    [ticket] = tickets(region)
    headers = auth(token_for(region, "staff", "990101"))
    url = f"/api/tickets/{ticket.id}"
    reporters = client.get(url, headers=headers).get_json()["reporters"]
    assert [r["channel"] for r in reporters] == ["mp", "mp", "mp"]
    third = reporters[2]["reporter_id"]

    response = client.post(f"{url}/actions", json={"action": "split", "reporter": third}, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert len(body["reporters"]) == 2 and body["events"][-1]["kind"] == "split"
    number = body["events"][-1]["data"]["split_to"]
    run_jobs()
    assert number in acks(fake_api, "oC")[-1] and "单独立案" in acks(fake_api, "oC")[-1]
    first, own = tickets(region)
    assert own.number == number and [r.external_id for r in own.reporters] == ["oC"]

    # every reporter hears every update of the ticket they are on, and only that one
    before = {openid: len(acks(fake_api, openid)) for openid in ("oA", "oB", "oC")}
    assert client.post(f"{url}/actions", json={"action": "sign"}, headers=headers).status_code == 200
    run_jobs()
    assert all(len(acks(fake_api, o)) == before[o] + 1 and "签收" in acks(fake_api, o)[-1] for o in ("oA", "oB"))
    assert len(acks(fake_api, "oC")) == before["oC"]
    own_url = f"/api/tickets/{own.id}/actions"
    assert client.post(own_url, json={"action": "sign"}, headers=headers).status_code == 200
    run_jobs()
    assert number in acks(fake_api, "oC")[-1] and "签收" in acks(fake_api, "oC")[-1]
    assert len(acks(fake_api, "oA")) == before["oA"] + 1

    # nothing left to split: the original reporter, or someone no longer on the ticket
    original = reporters[0]["reporter_id"]
    refused = client.post(f"{url}/actions", json={"action": "split", "reporter": original}, headers=headers)
    assert refused.status_code == 409 and "原始反映人" in refused.get_json()["message"]
    gone = client.post(f"{url}/actions", json={"action": "split", "reporter": third}, headers=headers)
    assert gone.status_code == 400
    # and the split pair is never merged again
    again = client.post(own_url, json={"action": "merge", "into": first.number}, headers=headers)
    assert again.status_code == 409 and "拆分" in again.get_json()["message"]


def test_split_is_refused_outside_the_staff_region_like_merge(region, client, run_jobs):
    push(client, text_xml("oR1", LIGHT, 65001))
    push(client, text_xml("oR2", LIGHT_AGAIN, 65002))
    run_jobs()
    [ticket] = tickets(region)
    other_town = auth(token_for(region, "staff", "990102"))
    url = f"/api/tickets/{ticket.id}/actions"
    body = {"action": "split", "reporter": ticket.reporters[1].id}
    # Another town does not even learn the ticket exists (workflow.policy answers 404, as for merge).
    assert client.post(url, json=body, headers=other_town).status_code == 404
    assert client.post(url, json=body, headers=auth(token_for(region, "viewer", "990100"))).status_code == 403
    assert len(load(region, ticket.id).reporters) == 2


def test_splitting_a_staff_merge_revives_the_merged_ticket_from_its_own_time(region):
    first = new_ticket(region, "滨河小区下水道堵了", openid="oM1")
    second = new_ticket(region, "河西中学门口积水严重", T0 + timedelta(hours=1), openid="oM2")
    act(region, second, "merge", T0 + timedelta(hours=2), into=load(region, first).number)
    copied = next(r.id for r in load(region, first).reporters if r.external_id == "oM2")
    act(region, first, "split", T0 + timedelta(days=1), reporter=copied)
    kept, revived = load(region, first), load(region, second)
    assert [r.external_id for r in kept.reporters] == ["oM1"]
    assert [r.external_id for r in revived.reporters] == ["oM2"]
    assert revived.status == TicketStatus.ASSIGNED and revived.merged_into_id is None
    with region.app_context():
        rule = sla_table().rule_for(revived.urgency, revived.subcategory)
    assert revived.sign_due_at == rule.sign.after(T0 + timedelta(hours=1))
    assert kinds(revived)[-1] == "split_from" and kinds(kept)[-1] == "split"
    with region.app_context(), pytest.raises(ActionRefused) as refused:
        apply_action(db.session.get(Ticket, second), "merge", COUNTY_ADMIN(), T0 + timedelta(days=2), into=first)
    assert refused.value.status == 409
    with region.app_context():
        db.session.rollback()


def test_a_likely_duplicate_is_suggested_in_the_api_and_console_and_merged_with_one_click(
    region, client, fake_api, run_jobs
):
    push(client, text_xml("oS1", "幸福里小区路灯不亮", 66001))
    run_jobs()
    push(client, text_xml("oS2", "幸福里小区3号楼门口路灯坏了", 66002))
    run_jobs()
    old, new = tickets(region)
    assert "合并" not in acks(fake_api, "oS2")[0] and new.number in acks(fake_api, "oS2")[0]
    headers = auth(token_for(region, "staff", "990101"))
    [possible] = client.get(f"/api/tickets/{new.id}", headers=headers).get_json()["possible_duplicates"]
    assert possible["number"] == old.number and 0.3 <= possible["score"] < 1 and "幸福里小区" in possible["reason"]
    [back] = client.get(f"/api/tickets/{old.id}", headers=headers).get_json()["possible_duplicates"]
    assert back["number"] == new.number
    listed = {t["number"]: t for t in client.get("/api/tickets", headers=headers).get_json()["tickets"]}
    assert listed[new.number]["possible_duplicates"] == [possible]

    staff, token = signed_in(region, "dupstaff", "staff", "990101")
    page = staff.get(f"/console/tickets/{new.id}").get_data(as_text=True)
    assert "可能重复" in page and old.number in page and f"合并到 {old.number}" in page
    queue = staff.get("/console/").get_data(as_text=True)
    assert queue.count('class="possible"') == 2 and "可能重复" in queue
    response = staff.post(
        f"/console/tickets/{new.id}/actions",
        data={"action": "merge", "into": old.number, "csrf_token": token, "note": "可能重复"},
    )
    assert response.status_code == 303
    assert load(region, new.id).merged_into_id == old.id
    assert "可能重复" not in staff.get(f"/console/tickets/{old.id}").get_data(as_text=True)
    assert client.get(f"/api/tickets/{old.id}", headers=headers).get_json()["possible_duplicates"] == []
    run_jobs()
    assert old.number in acks(fake_api, "oS2")[-1]  # told where their report went


def test_console_split_button_gives_the_reporter_their_own_ticket(region, client, fake_api, run_jobs):
    push(client, text_xml("oK1", LIGHT, 67001))
    push(client, text_xml("oK2", LIGHT_AGAIN, 67002))
    run_jobs()
    [ticket] = tickets(region)
    staff, token = signed_in(region, "splitter", "staff", "990101")
    page = staff.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert page.count("拆分为单独工单") == 1  # only the reporter who joined
    joined = ticket.reporters[1].id
    response = staff.post(
        f"/console/tickets/{ticket.id}/actions", data={"action": "split", "reporter": joined, "csrf_token": token}
    )
    assert response.status_code == 303
    first, own = tickets(region)
    assert [r.external_id for r in own.reporters] == ["oK2"]
    assert f"拆分为：{own.number}" in staff.get(f"/console/tickets/{first.id}").get_data(as_text=True)


def test_an_officer_can_say_not_the_same_too(wecom, client, fake_api, run_jobs):  # noqa: F811
    push(client, text_xml("oRes", "阳光花园3号楼门口路灯不亮", 68001))
    run_jobs()
    push_app(client, "lixl", "【事项】3号楼门口路灯不亮【地点】阳光花园3栋")
    run_jobs()
    [ticket] = tickets(wecom)
    assert [r.external_id for r in ticket.reporters] == ["oRes", "lixl"] and "合并" in replies(fake_api, "lixl")[-1]
    push_app(client, "lixl", "不是同一件事")
    run_jobs()
    first, own = tickets(wecom)
    assert [r.external_id for r in first.reporters] == ["oRes"]
    assert [(r.channel, r.external_id) for r in own.reporters] == [("wecom", "lixl")] and own.channel == "wecom"
    assert own.fields.get("matter") == "3号楼门口路灯不亮" and own.number in replies(fake_api, "lixl")[-1]
