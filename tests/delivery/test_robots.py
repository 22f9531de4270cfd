"""Group robots: at most 20 calls a minute per robot across processes, a backlog coalesced and nothing lost,
texts split (never cut), a rejected key marks the channel broken and keeps its messages for resend."""

from __future__ import annotations

import json
import threading

import pytest
from redis import Redis
from rq.registry import ScheduledJobRegistry

import delivery.robots
from bot.clients.wecom import split_utf8
from bot.clients.wecom_robot import RobotBudget, broken_info, robot_body
from delivery.outbox import deliver_outbox
from delivery.robots import digest_markdown, flush_robot, robot_health, sweep_robots
from models import Outbox, OutboxStatus, RegionNode, db
from ops.queue import get_queue

KEY = "robot-key-county"
WEBHOOK = "/cgi-bin/webhook/send"
T0 = 1_800_000_000.0


class Clock:
    """The budget's clock: tests move it instead of sleeping."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, fake_api):
    fake = Clock()
    monkeypatch.setattr(delivery.robots, "clock", fake)
    fake_api.clock = fake
    return fake


def add_row(app, index: int, key: str = KEY, content: str | None = None, msgtype: str = "markdown", **extra) -> int:
    with app.app_context():
        row = Outbox(
            channel="wecom_robot",
            recipient=key,
            kind="group_new",
            payload={
                "msgtype": msgtype,
                "content": content or f"**【新工单】事件{index:03d}**\n> 地点：阳光花园",
                **extra,
            },
            dedup_key=f"test:{key}:{index}",
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def statuses(app, key: str = KEY) -> list[str]:
    with app.app_context():
        return list(db.session.execute(db.select(Outbox.status).filter_by(recipient=key).order_by(Outbox.id)).scalars())


def webhook_calls(fake_api, key: str = KEY):
    return [c for c in fake_api.sent(WEBHOOK) if c.args.get("key") == key]


def content_of(call) -> str:
    return call.body["markdown"]["content"] if call.body["msgtype"] == "markdown" else call.body["text"]["content"]


def max_calls_in_any_minute(times: list[float]) -> int:
    return max(sum(1 for t in times if end - 60 < t <= end) for end in times) if times else 0


def test_100_events_in_a_minute_reach_the_robot_as_at_most_20_calls_a_minute_with_nothing_lost(app, fake_api, clock):
    for index in range(100):  # one event every 0.59 s: the whole burst inside one minute
        clock.now = T0 + index * 0.59
        outbox_id = add_row(app, index)
        with app.app_context():
            deliver_outbox(outbox_id)  # what the delivery job does for each event
    with app.app_context():
        assert ScheduledJobRegistry(queue=get_queue("delivery")).count >= 1  # the overflow was re-queued
    for _ in range(100):  # the scheduler's wake-ups, at the moments the flushes asked for
        with app.app_context():
            result = flush_robot(KEY)
        if not result["pending"]:
            break
        clock.now += result["wake_in"]
    calls = webhook_calls(fake_api)
    assert max_calls_in_any_minute([c.at for c in calls]) <= 20
    delivered = "\n".join(content_of(c) for c in calls)
    assert all(f"事件{index:03d}" in delivered for index in range(100))  # nothing lost
    assert statuses(app) == [OutboxStatus.SENT] * 100
    assert 20 < len(calls) < 40  # the backlog went as a few digests, not 80 more calls
    assert all(len(content_of(c).encode()) <= 4096 for c in calls)
    assert clock.now - T0 < 120  # and all of it within two minutes


def test_the_budget_is_shared_by_every_process(app, redis_url):
    """Eight workers, each with its own Redis connection, race for one robot's minute: 20 sends in total."""
    granted = []

    def worker():
        budget = RobotBudget(Redis.from_url(redis_url))
        granted.extend(1 for _ in range(10) if budget.acquire(KEY, T0) == 0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 20
    budget = RobotBudget(Redis.from_url(redis_url))
    assert budget.acquire(KEY, T0 + 30) == pytest.approx(30.0)  # the oldest send leaves the window at T0+60
    assert budget.acquire(KEY, T0 + 60) == 0


def test_a_rejected_key_marks_the_channel_broken_and_keeps_the_messages(app, fake_api, clock, client):
    fake_api.bad_robot_keys.add(KEY)
    ids = [add_row(app, index) for index in range(3)]
    with app.app_context():
        deliver_outbox(ids[0])
        assert broken_info(app.extensions["redis"], KEY)["errcode"] == 93000
        deliver_outbox(ids[1])  # nothing more is tried on a broken channel
    assert len(webhook_calls(fake_api)) == 1
    assert statuses(app) == [OutboxStatus.PENDING] * 3
    health = client.get("/healthz").get_json()["wecom_robots"]
    assert health["broken"][0]["errcode"] == 93000 and health["broken"][0]["pending"] == 3
    # the key is fixed on WeCom's side: the periodic probe finds out and the backlog goes out
    fake_api.bad_robot_keys.clear()
    with app.app_context():
        assert flush_robot(KEY, probe=True)["pending"] == 0
        assert broken_info(app.extensions["redis"], KEY) is None
    assert statuses(app) == [OutboxStatus.SENT] * 3
    assert client.get("/healthz").get_json()["wecom_robots"]["broken"] == []


def test_messages_for_a_replaced_key_follow_the_node_to_its_new_key(region, fake_api, clock):
    fake_api.bad_robot_keys.add("demo-chengguan-robot")
    ids = [add_row(region, index, key="demo-chengguan-robot", node="990101") for index in range(2)]
    with region.app_context():
        deliver_outbox(ids[0])
        node = db.session.execute(db.select(RegionNode).filter_by(code="990101")).scalar_one()
        node.group = {"robot_key": "new-chengguan-key"}  # what re-importing the region with the fixed key does
        db.session.commit()
        assert sweep_robots()["retargeted"] == 2
        assert broken_info(region.extensions["redis"], "demo-chengguan-robot") is None
        flush_robot("new-chengguan-key")
    assert statuses(region, "new-chengguan-key") == [OutboxStatus.SENT] * 2
    assert len(webhook_calls(fake_api, "new-chengguan-key")) == 2


def test_wecoms_own_rate_limit_answer_keeps_the_message_and_retries_later(app, fake_api, clock):
    fake_api.fail_next(WEBHOOK, (200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    outbox_id = add_row(app, 1)
    with app.app_context():
        result = flush_robot(KEY)
    assert result["wake_in"] == 60 and result["pending"] == 1
    assert statuses(app) == [OutboxStatus.PENDING]
    clock.now += 60
    with app.app_context():
        assert flush_robot(KEY)["calls"] == 1
        assert db.session.get(Outbox, outbox_id).status == OutboxStatus.SENT


def test_a_long_markdown_notice_goes_in_parts_that_rejoin_to_the_whole(app, fake_api, clock):
    long_text = "\n".join(f"> 第{line}行：阳光花园3栋楼道灯不亮，居民夜间出行不便。" for line in range(200))
    add_row(app, 1, content=long_text)
    with app.app_context():
        flush_robot(KEY)
    parts = [content_of(c) for c in webhook_calls(fake_api)]
    assert len(parts) > 1 and all(len(p.encode()) <= 4096 for p in parts)
    assert "".join(parts) == long_text
    assert statuses(app) == [OutboxStatus.SENT]


def test_a_long_text_notice_is_split_at_2048_bytes_and_mentions_once(app, fake_api, clock):
    add_row(app, 1, content="路灯不亮。" * 300, msgtype="text", mentioned_list=["zhangwy"])
    with app.app_context():
        flush_robot(KEY)
    calls = webhook_calls(fake_api)
    assert len(calls) == 3 and all(len(c.body["text"]["content"].encode()) <= 2048 for c in calls)
    assert "".join(c.body["text"]["content"] for c in calls) == "路灯不亮。" * 300
    assert [c.body["text"].get("mentioned_list") for c in calls] == [["zhangwy"], None, None]


def test_split_utf8_never_cuts_a_character_and_prefers_line_breaks():
    text = "阳光花园🌙" * 500 + "\n" + "东大街" * 700
    pieces = split_utf8(text, 2048)
    assert "".join(pieces) == text
    assert all(len(p.encode("utf-8")) <= 2048 for p in pieces)
    assert split_utf8("短消息", 2048) == ["短消息"]
    assert split_utf8("第一行\n" * 400, 100)[0].endswith("\n")


def test_robot_bodies_match_the_webhook_format():
    assert robot_body({"msgtype": "text", "content": "hi", "mentioned_list": ["a", "@all"]}) == {
        "msgtype": "text",
        "text": {"content": "hi", "mentioned_list": ["a", "@all"]},
    }
    assert robot_body({"msgtype": "markdown", "content": "**x** <@a>", "mentioned_list": ["a"]}) == {
        "msgtype": "markdown",
        "markdown": {"content": "**x** <@a>"},
    }
    with pytest.raises(ValueError):
        robot_body({"msgtype": "markdown", "content": "长" * 2000})


def test_a_digest_keeps_text_mentions_as_markdown_mentions(app):
    with app.app_context():
        rows = [
            Outbox(payload={"msgtype": "text", "content": "催办 A", "mentioned_list": ["zhangwy"]}),
            Outbox(payload={"msgtype": "markdown", "content": "**新工单 B** <@lixl>"}),
        ]
        text = digest_markdown(rows)
    assert "以下2条" in text and "催办 A\n<@zhangwy>" in text and "**新工单 B** <@lixl>" in text


def test_health_reports_no_broken_robots_normally(client):
    assert client.get("/healthz").get_json()["wecom_robots"] == {"broken": [], "pending": 0}


def test_robot_health_names_the_node_of_a_broken_key(region, fake_api, clock):
    fake_api.bad_robot_keys.add("demo-hexi-robot")
    outbox_id = add_row(region, 1, key="demo-hexi-robot", node="990102")
    with region.app_context():
        deliver_outbox(outbox_id)
        [entry] = robot_health()["broken"]
    assert entry["node"] == "990102" and entry["pending"] == 1 and "demo-hexi-robot" not in str(entry)


def test_the_sweep_probes_a_broken_robot_now_and_then_and_resends_once_it_works(app, fake_api, clock, run_jobs):
    fake_api.bad_robot_keys.add(KEY)
    outbox_id = add_row(app, 1)
    with app.app_context():
        deliver_outbox(outbox_id)
        assert sweep_robots()["probed"] == 0  # just marked: not probed again straight away
        redis = app.extensions["redis"]
        info = broken_info(redis, KEY)
        info["probed"] -= delivery.robots.PROBE_EVERY
        redis.hset("wecom:robots:broken", next(iter(redis.hkeys("wecom:robots:broken"))), json.dumps(info))
        fake_api.bad_robot_keys.clear()  # the key works again
        assert sweep_robots()["probed"] == 1
    run_jobs()
    assert statuses(app) == [OutboxStatus.SENT]
    with app.app_context():
        assert broken_info(app.extensions["redis"], KEY) is None
