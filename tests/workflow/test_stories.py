"""Whole work-order stories with an explicit clock: escalation ladder, co-handling, returns, reopen,
duplicates, the resident's pause, the API's refusals and the statistics."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone

import pytest

from delivery.outbox import enqueue_delivery
from handlers.parsing import get_parser
from models import ApiToken, Outbox, Resident, Ticket, TicketStatus, User, db, hash_token
from reports.stats import region_stats
from tests.handlers.test_intake_flow import acks, push, tickets
from tests.support.wechat_push import text_xml
from workflow.policy import staff_actor
from workflow.sweep import run_sweep
from workflow.tickets import create_ticket
from workflow.transitions import ActionRefused, apply_action

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=CST)  # a Monday


def new_ticket(app, text: str, now: datetime = T0, openid: str = "oStory") -> int:
    with app.app_context():
        demand = get_parser(app.instance_path).parse(text)
        ticket = create_ticket(
            demand=demand, channel="mp", now=now, reporter_channel="mp", reporter_id=openid, actor=f"resident:{openid}"
        )
        db.session.commit()
        return ticket.id


def load(app, ticket_id: int) -> Ticket:
    with app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        _ = ticket.events, ticket.reporters, ticket.handlers
        return ticket


def sweep(app, now: datetime) -> dict:
    with app.app_context():
        counts, _ = run_sweep(now)
        return dict(counts)


def county_admin():
    """The county's admin as workflow.policy sees them on the API (their node holds every ticket)."""
    return staff_actor(User(username="test", role="admin", region_code="990100"), "api")


def act(app, ticket_id: int, action: str, now: datetime, note: str | None = None, **params) -> None:
    """Like the API: apply, commit, then queue the deliveries."""
    with app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        outbox = apply_action(ticket, action, county_admin(), now, note=note, **params)
        ids = [message.id for message in outbox]
        db.session.commit()
        for outbox_id in ids:
            enqueue_delivery(outbox_id)


def test_a_ticket_left_alone_climbs_to_the_county_with_reminders_first(region):
    ticket_id = new_ticket(region, "阳光花园3号楼门口路灯不亮好几天了")
    assert load(region, ticket_id).owner_code == "990101001001"
    assert sweep(region, T0 + timedelta(hours=23)) == {}
    ladder = ["990101001", "990101", "990100"]
    moment = T0
    for level, expected_owner in enumerate(ladder, start=1):
        moment += timedelta(hours=24)  # the sign limit of the current step
        assert sweep(region, moment) == {"reminded": 1}
        assert sweep(region, moment) == {}  # the same moment twice does nothing twice
        moment += timedelta(hours=8)  # still unsigned after the reminder: 督办 one tier up
        assert sweep(region, moment) == {"escalated_unsigned": 1}
        ticket = load(region, ticket_id)
        assert (ticket.owner_code, ticket.escalation_level, ticket.status) == (
            expected_owner,
            level,
            TicketStatus.ASSIGNED,
        )
    kinds = [e.kind for e in load(region, ticket_id).events]
    assert kinds == ["created", "assigned"] + ["reminded", "escalate"] * 3
    # at the county there is no tier left: the lapse is recorded once
    moment += timedelta(hours=24)
    sweep(region, moment)
    moment += timedelta(hours=8)
    assert sweep(region, moment) == {"lapsed_at_top": 1}
    assert sweep(region, moment) == {}
    assert sweep(region, moment + timedelta(hours=1)) == {}
    assert [e.kind for e in load(region, ticket_id).events].count("overdue") == 1


def test_an_unresolved_ticket_past_its_deadline_is_escalated_with_fresh_clocks(region):
    ticket_id = new_ticket(region, "幸福里小区2号楼楼顶漏水")
    act(region, ticket_id, "sign", T0 + timedelta(hours=1))
    due = load(region, ticket_id).due_at
    assert sweep(region, due - timedelta(minutes=1)) == {}
    assert sweep(region, due) == {"escalated_overdue": 1}
    ticket = load(region, ticket_id)
    assert ticket.owner_code == "990101002" and ticket.status == TicketStatus.ASSIGNED and ticket.due_at > due


def test_summon_two_co_handlers_each_with_its_own_sign_clock(region):
    ticket_id = new_ticket(region, "西环路农贸市场门口占道经营，垃圾也没人清理")
    act(
        region,
        ticket_id,
        "summon",
        T0,
        handlers=[{"node": "990102", "role": "lead"}, {"node": "990102001", "role": "co"}],
    )
    ticket = load(region, ticket_id)
    assert [(h.node_code, h.role, h.status) for h in ticket.handlers] == [
        ("990102", "lead", "pending"),
        ("990102001", "co", "pending"),
    ]
    act(region, ticket_id, "sign", T0 + timedelta(hours=2), node="990102")
    assert sweep(region, T0 + timedelta(hours=25)).get("handlers_reminded") == 1  # only the one that did not sign
    ticket = load(region, ticket_id)
    assert [h.status for h in ticket.handlers] == ["signed", "pending"]
    with pytest.raises(ActionRefused) as refused:
        act(region, ticket_id, "summon", T0, handlers=[{"node": "990101", "role": "lead"}])
    assert refused.value.status == 409


def test_return_goes_up_for_redispatch_and_never_into_a_void(region):
    ticket_id = new_ticket(region, "东大小学门口的垃圾桶坏了")
    with pytest.raises(ActionRefused):
        act(region, ticket_id, "return", T0)  # a reason is required
    act(region, ticket_id, "return", T0 + timedelta(hours=1), note="不属于本网格")
    ticket = load(region, ticket_id)
    assert ticket.owner_code == "990101001" and ticket.status == TicketStatus.ASSIGNED
    act(region, ticket_id, "assign", T0 + timedelta(hours=2), node="990101001003")
    ticket = load(region, ticket_id)
    assert ticket.owner_code == "990101001003" and ticket.sign_due_at == T0 + timedelta(hours=2 + 24)
    events = [(e.kind, e.data.get("from_status"), e.data.get("to_status")) for e in ticket.events][-2:]
    assert events == [("return", "assigned", "assigned"), ("assign", "assigned", "assigned")]


def test_unsatisfied_resident_reopens_to_the_same_owner_with_a_shorter_deadline(region, client, fake_api, run_jobs):
    push(client, text_xml("oRate", "锦绣家园电梯经常停运，老人上下楼困难", 99001))
    run_jobs()
    [ticket] = tickets(region)
    now = datetime.now(UTC)
    act(region, ticket.id, "sign", now)
    act(region, ticket.id, "resolve", now, note="已联系物业更换电梯主板")
    run_jobs()
    assert "请对办理结果评价" in acks(fake_api, "oRate")[-1]
    push(client, text_xml("oRate", "3", 99002))
    run_jobs()
    ticket = load(region, ticket.id)
    assert ticket.status == TicketStatus.PROCESSING and ticket.reopen_count == 1
    assert ticket.owner_code == "990101002002" and ticket.satisfaction == "unsatisfied"
    assert ticket.due_at - now < timedelta(days=5)
    assert "重新办理" in acks(fake_api, "oRate")[-1]


def test_no_rating_within_three_days_closes_without_counting_as_satisfied(region):
    ticket_id = new_ticket(region, "建设路路灯不亮")
    act(region, ticket_id, "sign", T0)
    act(region, ticket_id, "resolve", T0 + timedelta(hours=3), note="已修复")
    assert sweep(region, T0 + timedelta(days=3)) == {}
    assert sweep(region, T0 + timedelta(days=3, hours=3)) == {"ratings_expired": 1}
    ticket = load(region, ticket_id)
    assert ticket.status == TicketStatus.CLOSED and ticket.satisfaction is None


def test_five_duplicates_become_one_ticket_and_every_reporter_hears_every_update(region, client, fake_api, run_jobs):
    texts = [
        "幸福里小区3号楼门口路灯不亮",
        "幸福里小区3号楼门口的路灯坏了不亮",
        "幸福里小区3号楼路灯不亮了，晚上很黑",
        "幸福里小区3号楼门口路灯一直不亮",
        "幸福里小区3号楼门口路灯不亮好几天",
    ]
    for index, text in enumerate(texts):
        push(client, text_xml(f"oDup{index}", text, 98000 + index))
        run_jobs()
    [ticket] = tickets(region)
    assert len({r.external_id for r in ticket.reporters}) == 5
    assert all(len(acks(fake_api, f"oDup{i}")) == 1 for i in range(5))
    act(region, ticket.id, "sign", datetime.now(UTC))
    run_jobs()
    assert all(len(acks(fake_api, f"oDup{i}")) == 2 and "签收" in acks(fake_api, f"oDup{i}")[-1] for i in range(5))


def test_request_info_pauses_the_clock_until_the_resident_answers(region, client, fake_api, run_jobs):
    push(client, text_xml("oInfo", "书香苑小区有人违规搭建", 97001))
    run_jobs()
    [ticket] = tickets(region)
    now = datetime.now(UTC)
    act(region, ticket.id, "sign", now)
    due_before = load(region, ticket.id).due_at
    act(region, ticket.id, "request_info", now, note="请提供具体楼栋和照片")
    run_jobs()
    assert load(region, ticket.id).status == TicketStatus.WAITING
    assert "请提供具体楼栋" in acks(fake_api, "oInfo")[-1]
    assert sweep(region, due_before + timedelta(hours=1)) == {}  # paused: not overdue
    push(client, text_xml("oInfo", "是8号楼楼顶", 97002))
    run_jobs()
    ticket = load(region, ticket.id)
    assert ticket.status == TicketStatus.SIGNED and ticket.due_at > due_before and "8号楼" in ticket.description


def test_merge_moves_reporters_to_the_kept_ticket(region):
    first = new_ticket(region, "滨河小区下水道堵了", openid="oM1")
    second = new_ticket(region, "河西中学门口积水严重", openid="oM2")
    number = load(region, first).number
    act(region, second, "merge", T0, into=number)
    kept, merged = load(region, first), load(region, second)
    assert {r.external_id for r in kept.reporters} == {"oM1", "oM2"}
    assert merged.status == TicketStatus.CLOSED and merged.merged_into_id == first


def test_category_rule_routes_wages_to_the_town_labour_office(region):
    ticket_id = new_ticket(region, "阳光花园工地老板拖欠我们农民工工资三个月了")
    ticket = load(region, ticket_id)
    assert ticket.category == "劳动和社会保障"
    assert ticket.owner_code == "990101" and ticket.grid_code == "990101001001" and ticket.closable_tier == "town"
    assert ticket.owner_member_id is not None


def _token(app, role: str, region_code: str) -> str:
    token = secrets.token_urlsafe(12)
    with app.app_context():
        user = User(username=f"u{token[:6]}", role=role, region_code=region_code)
        db.session.add_all([user, ApiToken(user=user, token_hash=hash_token(token))])
        db.session.commit()
    return token


def test_api_actions_refuse_with_reasons_and_change_nothing(region, client):
    ticket_id = new_ticket(region, "阳光花园垃圾没人清理")
    grid_staff = {"Authorization": f"Bearer {_token(region, 'officer', '990101001001')}"}
    other_town = {"Authorization": f"Bearer {_token(region, 'staff', '990102')}"}
    viewer = {"Authorization": f"Bearer {_token(region, 'viewer', '990100')}"}
    url = f"/api/tickets/{ticket_id}/actions"
    response = client.post(url, json={"action": "resolve", "note": "好了"}, headers=grid_staff)
    assert response.status_code == 409 and "不能执行" in response.get_json()["message"]
    assert client.post(url, json={"action": "sign"}, headers=other_town).status_code == 404  # not even seen
    assert client.post(url, json={"action": "sign"}, headers=viewer).status_code == 403
    assert client.post(url, json={"action": "fly"}, headers=grid_staff).status_code == 400
    assert client.post(url, data="nope", headers=grid_staff).status_code == 400
    assert load(region, ticket_id).status == TicketStatus.ASSIGNED
    assert [e.kind for e in load(region, ticket_id).events] == ["created", "assigned"]
    response = client.post(url, json={"action": "sign"}, headers=grid_staff)
    assert response.status_code == 200 and response.get_json()["status"] == "signed"
    events = response.get_json()["events"]
    assert events[-1]["kind"] == "sign" and events[-1]["data"]["from_status"] == "assigned"


def test_stats_compute_the_three_rates_per_child(region):
    signed_in_time = new_ticket(region, "阳光花园路灯不亮", openid="oS1")
    late = new_ticket(region, "西环路垃圾没人清理", openid="oS2")
    new_ticket(region, "杨庄小学门口路面坑洼", openid="oS3")
    act(region, signed_in_time, "sign", T0 + timedelta(hours=1))
    act(region, signed_in_time, "resolve", T0 + timedelta(hours=5), note="已修")
    act(region, late, "sign", T0 + timedelta(hours=30))
    with region.app_context():
        ticket = db.session.get(Ticket, signed_in_time)
        ticket.satisfaction = "satisfied"
        db.session.commit()
        stats = region_stats("990100", T0 - timedelta(days=1), T0 + timedelta(days=1), T0 + timedelta(days=10))
    total = stats["total"]
    assert (total["received"], total["signed_on_time"], total["resolved"], total["rated"]) == (3, 1, 1, 1)
    assert total["response_rate"] == round(1 / 3, 4) and total["satisfaction_rate"] == 1.0
    by_town = {row["code"]: row for row in stats["children"]}
    assert by_town["990101"]["response_rate"] == 1.0 and by_town["990102"]["response_rate"] == 0.0
    assert by_town["990103"]["overdue"] == 1


def test_stats_api_scope(region, client):
    town = {"Authorization": f"Bearer {_token(region, 'staff', '990101')}"}
    assert client.get("/api/stats?region=990102", headers=town).status_code == 403
    response = client.get("/api/stats?region=990101&from=2026-11-01T00:00:00%2B08:00", headers=town)
    assert response.status_code == 200 and response.get_json()["region"]["code"] == "990101"
    assert client.get("/api/stats?from=yesterday", headers=town).status_code == 400


def test_sweep_cli_reports_what_it_did(region):
    new_ticket(region, "东大菜市场污水横流")
    runner = region.test_cli_runner()
    result = runner.invoke(args=["sweep", "--now", (T0 + timedelta(hours=25)).isoformat()])
    assert result.exit_code == 0, result.output
    assert "reminded 1" in result.output
    assert "nothing due" in runner.invoke(args=["sweep", "--now", (T0 + timedelta(hours=25)).isoformat()]).output
    assert runner.invoke(args=["sweep", "--now", "tomorrow"]).exit_code != 0


def test_outside_the_48_hour_window_updates_go_as_template_messages(region):
    ticket_id = new_ticket(region, "东大花园路灯不亮", openid="oOld")
    with region.app_context():
        db.session.add(Resident(openid="oOld", last_message_at=T0 - timedelta(days=3)))
        db.session.commit()
    act(region, ticket_id, "sign", T0)
    with region.app_context():
        channels = db.session.execute(db.select(Outbox.channel).filter_by(ticket_id=ticket_id)).scalars().all()
    assert "mp_template" in channels
