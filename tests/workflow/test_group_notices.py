"""What the tier groups see: notices for the groups that must see them, @-mentions, dedup, the daily digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app

from handlers.parsing import get_parser
from jobs.group_digests import send_group_digests
from models import Outbox, RegionNode, Ticket, TicketStatus, db
from workflow.digest import DigestSchedule, load_digest_schedule, queue_due_digests
from workflow.group_notices import notify_groups
from workflow.tickets import create_ticket

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
GRID = "990101001001"


def new_ticket(text: str = "【事项】3号楼门口路灯不亮【地点】阳光花园3栋【电话】13912345678", **changes) -> Ticket:
    demand = get_parser(current_app.instance_path).parse(text, reporter_grid=GRID)
    ticket = create_ticket(
        demand=demand, channel="wecom", now=NOW, reporter_channel="wecom", reporter_id="lixl", actor="officer:lixl"
    )
    for key, value in changes.items():
        setattr(ticket, key, value)
    db.session.flush()
    return ticket


def test_a_new_ticket_goes_to_the_groups_of_its_node_and_every_ancestor_once(region):
    with region.app_context():
        ticket = new_ticket()
        queued = notify_groups(ticket, "new", NOW)
        assert sorted((m.channel, m.recipient) for m in queued) == [
            ("wecom_robot", "demo-chengguan-robot"),
            ("wecom_robot", "demo-county-robot"),  # the county has a robot and an app chat: the robot speaks
        ]
        notice = queued[0].payload["content"]
        assert ticket.number in notice and "<@zhangwy> <@lixl>" in notice  # the grid officer first
        assert "13912345678" not in notice and "139****5678" in notice  # the description is masked
        assert queued[0].payload["msgtype"] == "markdown" and queued[0].payload["mentioned_list"] == ["zhangwy", "lixl"]
        db.session.commit()
        assert notify_groups(ticket, "new", NOW) == []  # a re-run queues nothing twice


def test_an_escalation_goes_to_the_node_it_reached_or_its_nearest_group(region):
    with region.app_context():
        ticket = new_ticket(owner_code="990101001", escalation_level=1)  # 东大社区: no group of its own
        [notice] = notify_groups(ticket, "escalated", NOW)
        assert notice.recipient == "demo-chengguan-robot"
        assert "工单提级至东大社区" in notice.payload["content"] and "<@wangjg>" in notice.payload["content"]
        ticket.owner_code, ticket.escalation_level = "990101", 2
        [notice] = notify_groups(ticket, "escalated", NOW)
        assert notice.recipient == "demo-chengguan-robot" and "<@liuhm>" in notice.payload["content"]
        assert notice.dedup_key.startswith(f"group:{ticket.id}:escalated:990101:2")


def test_overdue_and_reminder_notices_name_who_must_act(region):
    with region.app_context():
        ticket = new_ticket()
        ticket.due_at = NOW - timedelta(hours=5)
        [overdue] = notify_groups(ticket, "overdue", NOW)
        assert "超期预警" in overdue.payload["content"] and "已超过办结时限5小时" in overdue.payload["content"]
        [reminder] = notify_groups(ticket, "reminder", NOW, node_code="990102001001")  # a co-handler elsewhere
        assert reminder.recipient == "demo-hexi-robot" and "<@maj>" in reminder.payload["content"]
        # a new step (fresh clocks) may be reminded again
        ticket.step_started_at = NOW + timedelta(hours=1)
        assert len(notify_groups(ticket, "reminder", NOW, node_code="990102001001")) == 1


def test_a_node_with_only_an_app_chat_is_told_through_the_app(region):
    with region.app_context():
        node = db.session.execute(db.select(RegionNode).filter_by(code="990100")).scalar_one()
        node.group = {"chat_id": "qsxcounty"}
        ticket = new_ticket()
        channels = {m.channel: m.recipient for m in notify_groups(ticket, "new", NOW)}
        assert channels == {"wecom_robot": "demo-chengguan-robot", "wecom_appchat": "qsxcounty"}


def test_an_unknown_kind_is_a_programming_error(region):
    with region.app_context(), pytest.raises(ValueError):
        notify_groups(new_ticket(), "celebrated", NOW)


def test_the_daily_digest_goes_once_a_day_to_each_group_at_its_time(region):
    schedule = DigestSchedule(at=datetime(2026, 1, 1, 17, 30).time(), nodes={"990100": {"enabled": False}})
    with region.app_context():
        late = new_ticket()
        late.due_at = NOW - timedelta(hours=3)
        resolved = new_ticket("【事项】井盖丢了【地点】阳光花园3栋")
        resolved.status, resolved.resolved_at = TicketStatus.RESOLVED, NOW + timedelta(hours=2)
        db.session.commit()
        assert queue_due_digests(NOW, schedule) == []  # 10:00 local, before 17:30
        evening = NOW + timedelta(hours=8)  # 18:00 local
        queued = queue_due_digests(evening, schedule)
        assert sorted(m.recipient for m in queued) == ["demo-chengguan-robot", "demo-hexi-robot", "demo-liulin-robot"]
        chengguan = next(m for m in queued if m.recipient == "demo-chengguan-robot").payload["content"]
        assert "每日简报" in chengguan and "城关镇" in chengguan
        assert '近24小时新增：<font color="info">2</font>' in chengguan and "近24小时办结：1" in chengguan
        assert '当前超期未办结：<font color="warning">1</font>' in chengguan and late.number in chengguan
        assert "响应率" in chengguan and "解决率 50.0%" in chengguan and "满意率 —" in chengguan
        hexi = next(m for m in queued if m.recipient == "demo-hexi-robot").payload["content"]
        assert '近24小时新增：<font color="info">0</font>' in hexi
        db.session.commit()
        assert queue_due_digests(evening + timedelta(minutes=5), schedule) == []  # once a day
        assert len(queue_due_digests(evening + timedelta(days=1), schedule)) == 3


def test_the_shipped_digest_schedule_loads():
    schedule = load_digest_schedule()
    assert schedule.enabled and schedule.time_for("990101") is not None
    assert schedule.time_for("990100").hour == 8


def test_the_periodic_job_queues_and_delivers_the_digests(region, fake_api):
    with region.app_context():
        assert send_group_digests((NOW + timedelta(hours=8)).isoformat()) == 4  # 18:00 local, county's is 08:30
        assert db.session.execute(db.select(db.func.count(Outbox.id))).scalar_one() == 4
