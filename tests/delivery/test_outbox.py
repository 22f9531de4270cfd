"""Outbound delivery: one token shared through Redis, one refresh on token errors, retry vs record."""

from __future__ import annotations

import pytest

from bot.clients import PermanentSendError, RetryableSendError
from delivery.outbox import _Window, deliver_many, deliver_outbox, on_delivery_failure
from models import Outbox, OutboxStatus, Ticket, TicketEvent, db, utcnow


def make_outbox(app, with_ticket: bool = True) -> int:
    with app.app_context():
        ticket = None
        if with_ticket:
            ticket = Ticket(channel="mp", number="T1", description="x", created_at=utcnow())
            db.session.add(ticket)
            db.session.flush()
        message = Outbox(
            channel="mp",
            recipient="oX",
            kind="ack",
            payload={"text": "您好"},
            dedup_key="k1",
            ticket_id=ticket.id if ticket else None,
        )
        db.session.add(message)
        db.session.commit()
        return message.id


def outbox_row(app, outbox_id: int) -> Outbox:
    with app.app_context():
        return db.session.get(Outbox, outbox_id)


def test_delivery_sends_once_and_is_idempotent(app, fake_api):
    outbox_id = make_outbox(app)
    with app.app_context():
        assert deliver_outbox(outbox_id) == OutboxStatus.SENT
        assert deliver_outbox(outbox_id) == OutboxStatus.SENT
    assert len(fake_api.sent()) == 1
    assert fake_api.sent()[0].body == {"touser": "oX", "msgtype": "text", "text": {"content": "您好"}}


def test_expired_token_is_refreshed_once_and_the_call_retried(app, fake_api):
    outbox_id = make_outbox(app)
    with app.app_context():
        deliver_outbox(outbox_id)
    fake_api.expire_tokens()
    with app.app_context():
        message = Outbox(channel="mp", recipient="oY", kind="ack", payload={"text": "再次"}, dedup_key="k2")
        db.session.add(message)
        db.session.commit()
        assert deliver_outbox(message.id) == OutboxStatus.SENT
    assert fake_api.tokens_issued == 2
    assert len(fake_api.sent()) == 3  # first send, rejected send, retried send


def test_a_token_that_keeps_failing_is_not_retried_forever(app, fake_api):
    outbox_id = make_outbox(app)
    fake_api.fail_next("/cgi-bin/message/custom/send", *[(200, {"errcode": 40001, "errmsg": "invalid credential"})] * 5)
    with app.app_context():
        status = deliver_outbox(outbox_id)
    assert status == OutboxStatus.FAILED
    assert len(fake_api.sent()) == 2  # one try, one refresh-and-retry, then it is a config problem


@pytest.mark.parametrize("fault", [(200, {"errcode": -1, "errmsg": "system busy"}), (500, None), (502, None)])
def test_retryable_faults_raise_for_rq_to_retry_and_keep_the_message_pending(app, fake_api, fault):
    outbox_id = make_outbox(app)
    fake_api.fail_next("/cgi-bin/message/custom/send", fault)
    with app.app_context(), pytest.raises(RetryableSendError):
        deliver_outbox(outbox_id)
    row = outbox_row(app, outbox_id)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1 and row.last_error
    with app.app_context():
        assert deliver_outbox(outbox_id) == OutboxStatus.SENT


def test_outside_48_hours_is_permanent_and_recorded_on_the_ticket(app, fake_api):
    outbox_id = make_outbox(app)
    fake_api.fail_next(
        "/cgi-bin/message/custom/send", (200, {"errcode": 45015, "errmsg": "response out of time limit"})
    )
    with app.app_context():
        assert deliver_outbox(outbox_id) == OutboxStatus.FAILED
        events = db.session.execute(db.select(TicketEvent)).scalars().all()
    assert [e.kind for e in events] == ["notify_failed"] and events[0].data["errcode"] == 45015
    assert "48小时" in events[0].note and "WECHAT_TEMPLATE_ID" in events[0].note  # in words, for staff


def test_timeouts_are_retryable(app):
    import socket

    from bot.clients.wechat import WeChatApi

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers: a read timeout
    try:
        api = WeChatApi(f"http://127.0.0.1:{silent.getsockname()[1]}", "wxA", "s", app.extensions["redis"], timeout=0.2)
        api.redis.set(api._token_key, "cached")
        with pytest.raises(RetryableSendError, match="Timeout"):
            api.post("/cgi-bin/message/custom/send", {})
    finally:
        silent.close()


def test_the_last_failed_attempt_marks_the_message_failed(app):
    outbox_id = make_outbox(app)

    class FakeJob:
        args = [outbox_id]
        retries_left = 1

    with app.app_context():
        on_delivery_failure(FakeJob, None, RetryableSendError, RetryableSendError("busy"), None)
    assert outbox_row(app, outbox_id).status == OutboxStatus.PENDING
    FakeJob.retries_left = 0
    with app.app_context():
        on_delivery_failure(FakeJob, None, RetryableSendError, RetryableSendError("busy"), None)
    assert outbox_row(app, outbox_id).status == OutboxStatus.FAILED


def test_unconfigured_account_is_a_permanent_error(app):
    from bot.clients import get_client

    with app.test_request_context():
        app.config["WECHAT_SECRET"] = ""
        try:
            with pytest.raises(PermanentSendError):
                get_client("mp")
        finally:
            app.config["WECHAT_SECRET"] = "appsecret"


def make_batch(app, count: int) -> list[int]:
    with app.app_context():
        rows = [
            Outbox(channel="mp", recipient=f"oB{i}", kind="ack", payload={"text": "收到"}, dedup_key=f"b{i}")
            for i in range(count)
        ]
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def test_a_batch_is_sent_once_and_each_outcome_recorded(app, fake_api):
    ids = make_batch(app, 30)
    fake_api.fail_next(
        "/cgi-bin/message/custom/send",
        (200, {"errcode": 45015, "errmsg": "response out of time limit"}),
        (502, None),
    )
    with app.app_context():
        assert deliver_many(ids) == 28
        rows = db.session.execute(db.select(Outbox).order_by(Outbox.id)).scalars().all()
        statuses = [row.status for row in rows]
        assert statuses.count(OutboxStatus.SENT) == 28 and statuses.count(OutboxStatus.FAILED) == 1
        (pending,) = [row for row in rows if row.status == OutboxStatus.PENDING]
        assert pending.last_error.startswith("RetryableSendError")
        assert deliver_many(ids) == 1  # only the one left PENDING (the 502) is picked up, and sent, again
        db.session.expire_all()
        attempts = sorted(row.attempts for row in db.session.execute(db.select(Outbox)).scalars())
    assert attempts == [1] * 29 + [2]
    assert len(fake_api.sent()) == 30 + 1


def test_recording_outcomes_leaves_the_pooled_connection_as_it_was(app):
    """PostgreSQL: outcomes commit with synchronous_commit off, for their own transaction only."""
    ids = make_batch(app, 5)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("synchronous_commit is a PostgreSQL setting")
        assert deliver_many(ids) == 5
        assert db.session.execute(db.text("SHOW synchronous_commit")).scalar_one() == "on"


def test_the_send_window_grows_to_cover_a_slow_api():
    window = _Window(8)
    assert window.size == 2
    for _ in range(20):
        window.observe([0.050, 0.052])  # a distant API: every send takes about as long as the fastest
    assert window.size == 8


def test_the_send_window_shrinks_when_sends_only_queue_here():
    window = _Window(8)
    window.observe([0.001] * 10)  # alone, a send takes 1 ms
    for _ in range(20):
        window.observe([0.001])
    assert window.size == 8
    for _ in range(40):
        window.observe([0.010])  # ten times that: waiting on this process, not on the API
    assert window.size == 2  # never below two: one answer recorded while the next send is out
    for _ in range(64):
        window.observe([0.010])  # the fast samples age out: 10 ms is the API's latency now
    for _ in range(10):
        window.observe([0.010])
    assert window.size > 2


def test_a_window_of_one_stays_one():
    window = _Window(1)
    window.observe([0.001, 0.010])
    assert window.size == 1
