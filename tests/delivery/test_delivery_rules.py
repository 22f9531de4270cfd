"""Delivery that follows WeChat's rules, end to end: a resident writes through the real webhook (wechatpy
crypto), the fake API answers custom/send with WeChat's error codes, and we see what staff and residents get."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rq.registry import ScheduledJobRegistry

from config.queues import QueueNames
from delivery.rules import QUOTA_TZ, explain, next_quota_reset
from models import Outbox, OutboxStatus, Resident, TicketEvent, db
from ops.queue import get_queue
from tests.handlers.test_intake_flow import push, tickets
from tests.support.wechat_push import event_xml, text_xml
from tests.web.console.helpers import csrf_from, signed_in

CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"


def outbox(app) -> list[Outbox]:
    """The messages to residents (group-robot notices to officers are left out)."""
    with app.app_context():
        query = db.select(Outbox).filter(Outbox.channel.in_(["mp", "mp_template"])).order_by(Outbox.id)
        return db.session.execute(query).scalars().all()


def events(app, kind: str) -> list[TicketEvent]:
    with app.app_context():
        return db.session.execute(db.select(TicketEvent).filter_by(kind=kind)).scalars().all()


def report(client, openid: str, msg_id: int, text: str = "幸福里小区3号楼门口路灯不亮") -> None:
    push(client, text_xml(openid, text, msg_id))


def test_outside_the_48_hour_window_the_template_message_carries_the_reply(
    region, client, fake_api, run_jobs, monkeypatch
):
    monkeypatch.setitem(region.config, "WECHAT_TEMPLATE_ID", "TPL-progress")
    fake_api.fail_next(CUSTOM, (200, {"errcode": 45015, "errmsg": "response out of time limit"}))
    report(client, "oWindow", 41001)
    run_jobs()
    [ticket] = tickets(region)
    [sent] = fake_api.sent(TEMPLATE)
    assert sent.body["touser"] == "oWindow" and sent.body["template_id"] == "TPL-progress"
    assert sent.body["data"]["keyword1"]["value"] == ticket.number
    assert ticket.number in sent.body["data"]["keyword2"]["value"]
    [row] = outbox(region)
    assert row.status == OutboxStatus.SENT and row.channel == "mp_template" and row.errcode == 45015
    [fallback] = events(region, "notify_fallback")
    assert "已改用模板消息" in fallback.note


def test_over_the_per_user_limit_falls_back_too_and_a_single_job_does_it_as_well(
    region, client, fake_api, run_jobs, monkeypatch
):
    from delivery.outbox import deliver_outbox

    monkeypatch.setitem(region.config, "WECHAT_TEMPLATE_ID", "TPL-progress")
    with region.app_context():
        message = Outbox(channel="mp", recipient="oLimit", kind="update", payload={"text": "进展"}, dedup_key="lim1")
        db.session.add(message)
        db.session.commit()
        fake_api.fail_next(CUSTOM, (200, {"errcode": 45047, "errmsg": "out of response count limit"}))
        assert deliver_outbox(message.id) == OutboxStatus.SENT
    assert len(fake_api.sent(CUSTOM)) == 1 and len(fake_api.sent(TEMPLATE)) == 1


def test_without_a_template_the_failure_is_shown_in_chinese_and_staff_resend_it(region, client, fake_api, run_jobs):
    fake_api.fail_next(CUSTOM, (200, {"errcode": 45047, "errmsg": "out of response count limit hint: [x]"}))
    report(client, "oResend", 41101)
    run_jobs()
    [ticket] = tickets(region)
    [row] = outbox(region)
    assert row.status == OutboxStatus.FAILED and row.errcode == 45047
    staff, _ = signed_in(region, "resender", "staff", "990101")
    page = staff.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "通知未送达" in page and "客服消息已达上限" in page and "WECHAT_TEMPLATE_ID" in page
    assert "out of response count limit" not in page  # no raw English errmsg for staff
    assert "重新发送" in page
    token = csrf_from(page)
    response = staff.post(f"/console/tickets/{ticket.id}/notifications/{row.id}/resend", data={"csrf_token": token})
    assert response.status_code == 303
    run_jobs()
    [row] = outbox(region)
    assert row.status == OutboxStatus.SENT and row.errcode is None
    assert len(fake_api.sent(CUSTOM)) == 2
    assert [e.actor for e in events(region, "notify_resent")] == ["staff:resender"]
    # once sent, the message is no longer listed, and a second resend is refused
    page = staff.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "通知未送达" not in page
    again = staff.post(f"/console/tickets/{ticket.id}/notifications/{row.id}/resend", data={"csrf_token": token})
    assert again.status_code == 409


def test_a_viewer_cannot_resend(region, client, fake_api, run_jobs):
    fake_api.fail_next(CUSTOM, (200, {"errcode": 45015, "errmsg": "response out of time limit"}))
    report(client, "oViewer", 41201)
    run_jobs()
    [ticket] = tickets(region)
    [row] = outbox(region)
    viewer, token = signed_in(region, "lookonly", "viewer", "990100")
    page = viewer.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "通知未送达" in page and "重新发送</button>" not in page
    response = viewer.post(f"/console/tickets/{ticket.id}/notifications/{row.id}/resend", data={"csrf_token": token})
    assert response.status_code == 403
    assert outbox(region)[0].status == OutboxStatus.FAILED


def test_the_daily_quota_is_retried_after_beijing_midnight_by_the_scheduler(region, client, fake_api, run_jobs, redis):
    fake_api.fail_next(CUSTOM, (200, {"errcode": 45009, "errmsg": "reach max api daily quota limit"}))
    report(client, "oQuota", 41301)
    run_jobs()
    [row] = outbox(region)
    assert row.status == OutboxStatus.PENDING and row.errcode == 45009
    [deferred] = events(region, "notify_deferred")
    assert "零点" in deferred.note
    registry = ScheduledJobRegistry(queue=get_queue(QueueNames.DELIVERY, redis))
    [job_id] = registry.get_job_ids()
    when = datetime.fromtimestamp(registry.connection.zscore(registry.key, job_id), UTC)
    local = when.astimezone(QUOTA_TZ)
    assert (local.hour, local.minute // 10) == (0, 0) and when > datetime.now(UTC)
    assert local.date() > datetime.now(QUOTA_TZ).date()
    # The recovery sweep does not send it before the reset (it keeps the one scheduled job).
    with region.app_context():
        from delivery.outbox import recover_outbox

        recover_outbox(older_than_seconds=0)
    run_jobs()
    assert len(fake_api.sent(CUSTOM)) == 1 and registry.get_job_ids() == [job_id]
    # Midnight comes: the scheduler moves the job to the queue and the message goes out.
    redis.zadd(registry.key, {job_id: time.time() - 1})
    run_jobs(with_scheduler=True)
    [row] = outbox(region)
    assert row.status == OutboxStatus.SENT and len(fake_api.sent(CUSTOM)) == 2


def test_next_quota_reset_is_the_next_beijing_midnight():
    # 23:30 Beijing time on Dec 4 → Dec 5 00:01 (+ spread); 00:30 on Dec 5 → Dec 6.
    late = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
    early = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    assert next_quota_reset(late, 0).astimezone(QUOTA_TZ) == datetime(2026, 12, 5, 0, 1, tzinfo=QUOTA_TZ)
    assert next_quota_reset(early, 0).astimezone(QUOTA_TZ) == datetime(2026, 12, 6, 0, 1, tzinfo=QUOTA_TZ)
    assert next_quota_reset(late, 60).astimezone(QUOTA_TZ) == datetime(2026, 12, 5, 0, 2, tzinfo=QUOTA_TZ)


def test_nothing_is_sent_to_a_resident_who_unsubscribed(region, client, fake_api, run_jobs):
    report(client, "oGone", 41401)
    run_jobs()
    [ticket] = tickets(region)
    push(client, event_xml("oGone", "unsubscribe", create_time=int(time.time())))
    run_jobs()
    staff, token = signed_in(region, "signer", "staff", "990101")
    before = len(fake_api.sent(CUSTOM))
    response = staff.post(f"/console/tickets/{ticket.id}/actions", data={"action": "sign", "csrf_token": token})
    assert response.status_code == 303
    run_jobs()
    assert len(fake_api.sent(CUSTOM)) == before  # nothing went out
    skipped = [row for row in outbox(region) if row.status == OutboxStatus.SKIPPED]
    assert skipped and all(row.recipient == "oGone" for row in skipped)
    assert events(region, "notify_skipped")


def test_43004_marks_the_resident_unsubscribed_and_the_message_skipped(region, client, fake_api, run_jobs):
    fake_api.fail_next(CUSTOM, (200, {"errcode": 43004, "errmsg": "require subscribe"}))
    report(client, "oLeft", 41501)
    run_jobs()
    [row] = outbox(region)
    assert row.status == OutboxStatus.SKIPPED
    with region.app_context():
        assert db.session.execute(db.select(Resident.subscribed).filter_by(openid="oLeft")).scalar_one() is False


def test_an_expired_token_is_refreshed_and_the_reply_still_goes_out(region, client, fake_api, run_jobs):
    report(client, "oToken1", 41601)
    run_jobs()
    fake_api.expire_tokens()
    report(client, "oToken2", 41602, "东大花园路灯不亮")
    run_jobs()
    assert [row.status for row in outbox(region)] == [OutboxStatus.SENT, OutboxStatus.SENT]
    assert fake_api.tokens_issued == 2


def test_every_send_error_has_words_for_staff():
    for errcode in (-1, 40001, 40003, 42001, 43004, 45009, 45015, 45047, 48001, 99999):
        text = explain(errcode, "mp")
        assert text and not any(
            "a" <= ch <= "z"
            for ch in text.replace("access_token", "")
            .replace("openid", "")
            .replace("AppSecret", "")
            .replace("WECHAT_TEMPLATE_ID", "")
            .replace("IP", "")
        )
