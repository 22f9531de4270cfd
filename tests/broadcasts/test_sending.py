"""Broadcast planning and sending: streaming, resumable planning; exactly-once batches (45065, WeCom's duplicate
check); retry vs record; recovery of lost jobs; official-account tags; WeChat's MASSSENDJOBFINISH report."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.clients import RetryableSendError
from broadcasts.audience import expand_roles
from broadcasts.compose import BroadcastRequest, cancel_broadcast, create_broadcast, progress
from broadcasts.planning import PlanSettings, plan_batches
from broadcasts.sending import (
    batch_job_id,
    enqueue_batch,
    enqueue_fan_out,
    fan_out_broadcast,
    on_batch_failure,
    recover_broadcasts,
    send_broadcast_batch,
)
from broadcasts.tags import sync_mp_tags
from models import (
    AuditEvent,
    BatchKind,
    BatchStatus,
    Broadcast,
    BroadcastBatch,
    BroadcastStatus,
    MpTag,
    Resident,
    db,
    utcnow,
)
from ops.queue import get_queue
from tests.support.broadcasts import CHENGGUAN, CHENGGUAN_GRIDS, WECOM_CONFIG, add_officers, add_residents
from tests.support.wechat_push import encrypted_push, event_xml

MASS_SEND = "/cgi-bin/message/mass/send"
SENDALL = "/cgi-bin/message/mass/sendall"


def new_broadcast(app, roles=("resident",), channels=("mp",), regions=(CHENGGUAN,), queue=False, **extra) -> int:
    """A broadcast accepted as the API would; with `queue`, its fan-out job is enqueued too."""
    request = BroadcastRequest(
        title="疫苗接种日",
        body="本周六上午在社区卫生服务站接种流感疫苗，请携带身份证。",
        link=None,
        regions=tuple(regions),
        roles=expand_roles(roles),
        tags=tuple(extra.pop("tags", ())),
        channels=tuple(channels),
        **extra,
    )
    with app.app_context():
        broadcast, _ = create_broadcast(
            request, actor="staff:test", caller_role="admin", caller_region="990100", now=utcnow(), limit=4
        )
        db.session.commit()
        if queue:
            enqueue_fan_out(broadcast.id)
        return broadcast.id


def batches(app, broadcast_id: int) -> list[BroadcastBatch]:
    with app.app_context():
        rows = db.session.execute(
            select(BroadcastBatch)
            .filter_by(broadcast_id=broadcast_id)
            .order_by(BroadcastBatch.channel, BroadcastBatch.seq)
        ).scalars()
        return list(rows)


@pytest.fixture
def small_batches(app, monkeypatch):
    monkeypatch.setitem(app.config, "BROADCAST_MP_BATCH", 4)
    monkeypatch.setitem(app.config, "BROADCAST_RETRY_INTERVALS", (0, 0, 0))


def test_planning_never_leaves_a_batch_of_one(region, small_batches):
    add_residents(region, 9, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    with region.app_context():
        fan_out_broadcast(broadcast_id)
    assert [b.size for b in batches(region, broadcast_id)] == [4, 3, 2]


def test_planning_killed_mid_way_resumes_without_duplicates_or_gaps(region, small_batches):
    openids = add_residents(region, 22, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    with region.app_context():
        steps = plan_batches(broadcast_id, PlanSettings(mp_batch=4))
        next(steps), next(steps)
        steps.close()  # the worker dies here: two batches committed, the rest not planned
        db.session.remove()
    assert len(batches(region, broadcast_id)) == 2
    with region.app_context():
        fan_out_broadcast(broadcast_id)
        status = db.session.get(Broadcast, broadcast_id).status
        reserved = dict(db.session.execute(select(Resident.openid, Resident.mass_count)).all())
    planned = batches(region, broadcast_id)
    recipients = [openid for batch in planned for openid in batch.recipients]
    assert sorted(recipients) == sorted(openids) and len(recipients) == len(set(recipients))
    assert [b.seq for b in planned] == list(range(len(planned)))
    assert set(reserved.values()) == {1}  # each resident's month counted once, not once per attempt
    assert status == BroadcastStatus.DONE or status == BroadcastStatus.SENDING


def test_a_repeat_of_a_sent_mass_send_is_recorded_as_sent_not_sent_twice(region, fake_api, small_batches):
    add_residents(region, 3, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    with region.app_context():
        list(plan_batches(broadcast_id, PlanSettings(mp_batch=4)))
    [batch] = batches(region, broadcast_id)
    fake_api.mass.by_clientmsgid[batch.clientmsgid] = 777  # it went out; the answer was lost
    with region.app_context():
        assert send_broadcast_batch(broadcast_id, batch.id) == BatchStatus.SENT
    [batch] = batches(region, broadcast_id)
    assert batch.msg_id == "777" and fake_api.mass.duplicates_refused == 1 and not fake_api.mass.delivered


def test_a_permanent_error_is_recorded_with_its_errcode_and_the_month_given_back(region, fake_api, small_batches):
    add_residents(region, 3, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    fake_api.fail_next(MASS_SEND, (200, {"errcode": 48001, "errmsg": "api unauthorized"}))
    with region.app_context():
        fan_out_broadcast(broadcast_id)
        [batch] = db.session.execute(select(BroadcastBatch)).scalars().all()
        assert send_broadcast_batch(broadcast_id, batch.id) == BatchStatus.FAILED
        db.session.refresh(batch)
        broadcast = db.session.get(Broadcast, broadcast_id)
        summary = progress(broadcast)
        counts = set(db.session.execute(select(Resident.mass_count)).scalars())
        audited = db.session.execute(select(AuditEvent).filter_by(action="broadcast.batch_failed")).scalar_one()
    assert batch.errcode == 48001 and "48001" in batch.error and not batch.reserved
    assert broadcast.status == BroadcastStatus.DONE
    assert summary["channels"]["mp"]["failed"] == 3 and summary["percent"] == 100.0
    assert counts == {0} and audited.data["errcode"] == 48001


@pytest.mark.parametrize("errcode", [-1, 45066, 45011])
def test_retryable_errors_raise_for_rq_and_the_last_failure_is_recorded(region, fake_api, small_batches, errcode):
    add_residents(region, 3, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    fake_api.fail_next(MASS_SEND, (200, {"errcode": errcode, "errmsg": "busy"}))
    with region.app_context():
        fan_out_broadcast(broadcast_id)
        batch_id = db.session.execute(select(BroadcastBatch.id)).scalar_one()
        with pytest.raises(RetryableSendError):
            send_broadcast_batch(broadcast_id, batch_id)

    class FakeJob:
        args = (broadcast_id, batch_id)
        retries_left = 2

    with region.app_context():
        on_batch_failure(FakeJob, None, RetryableSendError, RetryableSendError("busy", errcode), None)
        assert db.session.get(BroadcastBatch, batch_id).status == BatchStatus.SENDING  # a retry is coming
        FakeJob.retries_left = 0
        on_batch_failure(FakeJob, None, RetryableSendError, RetryableSendError("busy", errcode), None)
        row = db.session.get(BroadcastBatch, batch_id)
        # Given up, but the reservation stays: a lost answer may still have delivered it.
        assert row.status == BatchStatus.FAILED and row.errcode == errcode and row.reserved


def test_batch_jobs_have_deterministic_ids_and_the_production_backoff(region):
    add_residents(region, 3, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    with region.app_context():
        list(plan_batches(broadcast_id, PlanSettings()))
        batch_id = db.session.execute(select(BroadcastBatch.id)).scalar_one()
        assert enqueue_batch(broadcast_id, batch_id) is True
        assert enqueue_batch(broadcast_id, batch_id) is False  # unique=True: never a second copy queued
        job = get_queue("broadcast").fetch_job(batch_job_id(broadcast_id, batch_id))
    assert job.id == f"broadcast-{broadcast_id}-batch-{batch_id}"
    assert job.retries_left == 5 and job.retry_intervals == [10, 60, 300, 900, 3600]


def test_a_lost_job_is_given_back_to_its_batch_by_recovery(region, fake_api, redis, run_jobs, small_batches):
    openids = add_residents(region, 8, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    with region.app_context():
        list(plan_batches(broadcast_id, PlanSettings(mp_batch=4)))  # planned, jobs never enqueued
        assert recover_broadcasts()["batches"] == 2
        assert recover_broadcasts()["batches"] == 0  # their jobs are queued: nothing more to do
    run_jobs()
    assert sorted(fake_api.mass.delivered) == sorted(openids) and set(fake_api.mass.delivered.values()) == {1}
    with region.app_context():
        assert db.session.get(Broadcast, broadcast_id).status == BroadcastStatus.DONE


def test_wecom_batches_ask_for_the_duplicate_check_so_a_lost_answer_is_not_a_second_copy(
    region, fake_api, run_jobs, monkeypatch
):
    for key, value in WECOM_CONFIG.items():
        monkeypatch.setitem(region.config, key, value)
    monkeypatch.setitem(region.config, "BROADCAST_RETRY_INTERVALS", (0,))
    userids = add_officers(region, 30, CHENGGUAN_GRIDS)
    fake_api.random_faults.set("/cgi-bin/message/send", 1.0, lost_share=1.0)  # delivered, answered -1
    broadcast_id = new_broadcast(region, roles=("officers",), channels=("wecom_app",))
    with region.app_context():
        fan_out_broadcast(broadcast_id)
        [batch] = db.session.execute(select(BroadcastBatch)).scalars().all()
        with pytest.raises(RetryableSendError):
            send_broadcast_batch(broadcast_id, batch.id)
        fake_api.random_faults.clear()
        assert send_broadcast_batch(broadcast_id, batch.id) == BatchStatus.SENT
    body = fake_api.sent("/cgi-bin/message/send")[0].body
    assert body["enable_duplicate_check"] == 1 and body["duplicate_check_interval"] == 4 * 3600
    assert set(userids) <= set(fake_api.mass.app_delivered) and set(fake_api.mass.app_delivered.values()) == {1}
    assert fake_api.mass.app_duplicates == 40  # the second call's 30 + the demo's 10 were dropped by WeCom


def test_inactive_members_and_members_without_wecom_are_skipped_and_counted(region, monkeypatch):
    add_officers(region, 3, CHENGGUAN_GRIDS, active=False)
    with region.app_context():
        broadcast, counts = create_broadcast(
            BroadcastRequest("t", "b", None, (CHENGGUAN,), frozenset({"grid_officer"}), (), ("wecom_app",)),
            actor="staff:test",
            caller_role="admin",
            caller_region="990100",
            now=utcnow(),
            limit=4,
        )
    assert counts["wecom_app"] == {"total": 5, "skipped": {"inactive": 3, "no_wecom_userid": 0}}


def test_a_region_with_a_clean_tag_gets_one_tag_mass_send(region, fake_api, run_jobs):
    openids = add_residents(region, 40, CHENGGUAN_GRIDS, mp_tag_dirty=True)
    add_residents(region, 5, ["990102001001"], prefix="oHexi", mp_tag_dirty=True)
    with region.app_context():
        result = sync_mp_tags()
        tags = dict(db.session.execute(select(MpTag.node_code, MpTag.tag_id)).all())
        dirty = db.session.execute(select(func.count()).filter(Resident.mp_tag_dirty.is_(True))).scalar()
    assert result["tags_created"] == len(tags) and dirty == 0
    assert fake_api.mass.tag_members[tags[CHENGGUAN]] == set(openids)
    assert fake_api.mass.tag_members[tags["990100"]] == set(openids) | {f"oHexi{i:07d}" for i in range(5)}

    broadcast_id = new_broadcast(region, queue=True)
    run_jobs()
    [batch] = batches(region, broadcast_id)
    assert batch.kind == BatchKind.TAG and batch.size == 40 and batch.status == BatchStatus.SENT
    [call] = fake_api.sent(SENDALL)
    assert call.body["filter"] == {"is_to_all": False, "tag_id": tags[CHENGGUAN]} and call.body["clientmsgid"]
    assert sorted(fake_api.mass.delivered) == sorted(openids)


def test_a_region_whose_tag_mirror_is_stale_falls_back_to_openid_lists(region, fake_api, run_jobs):
    openids = add_residents(region, 12, CHENGGUAN_GRIDS, mp_tag_dirty=True)
    with region.app_context():
        sync_mp_tags()
        quiet = db.session.execute(select(Resident).filter_by(openid=openids[0])).scalar_one()
        quiet.notices = False  # opted out: the tag still holds them until the next sync
        db.session.commit()
    broadcast_id = new_broadcast(region, queue=True)
    run_jobs()
    assert [b.kind for b in batches(region, broadcast_id)] == [BatchKind.OPENIDS]
    assert openids[0] not in fake_api.mass.delivered and len(fake_api.mass.delivered) == 11
    with region.app_context():
        sync_mp_tags()
    tag_members = set().union(*fake_api.mass.tag_members.values())
    assert openids[0] not in tag_members


def test_the_mass_send_report_is_stored_against_its_batch(region, client, fake_api, run_jobs, small_batches):
    add_residents(region, 3, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region, queue=True)
    run_jobs()
    [batch] = batches(region, broadcast_id)
    xml = event_xml(
        "oMassHelper",
        "MASSSENDJOBFINISH",
        MsgID=int(batch.msg_id),
        Status="send success",
        TotalCount=3,
        FilterCount=3,
        SentCount=3,
        ErrorCount=0,
    )
    query, body = encrypted_push(xml)
    assert client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").get_data(as_text=True) == "success"
    run_jobs()
    with region.app_context():
        broadcast = db.session.get(Broadcast, broadcast_id)
        row = db.session.get(BroadcastBatch, batch.id)
    assert row.report == {"status": "send success", "total": 3, "filtered": 3, "sent": 3, "errors": 0}
    assert broadcast.report == {"jobs": 1, "total": 3, "filtered": 3, "sent": 3, "errors": 0}


def test_moving_or_opting_out_marks_the_tag_mirror_stale(region):
    add_residents(region, 1, CHENGGUAN_GRIDS)
    with region.app_context():
        resident = db.session.execute(select(Resident)).scalar_one()
        assert not resident.mp_tag_dirty
        resident.grid_code = "990102001001"
        assert resident.mp_tag_dirty
        resident.mp_tag_dirty = False
        resident.notices = False
        assert resident.mp_tag_dirty
        db.session.rollback()


def test_cancelling_while_planning_stops_the_planner(region, small_batches):
    add_residents(region, 20, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    with region.app_context():
        steps = plan_batches(broadcast_id, PlanSettings(mp_batch=4))
        next(steps)
        cancel_broadcast(broadcast_id, actor="staff:test", now=utcnow())
        db.session.commit()
        assert list(steps) == []  # the next step sees the cancellation
        broadcast = db.session.get(Broadcast, broadcast_id)
        summary = progress(broadcast)
    assert [b.status for b in batches(region, broadcast_id)] == [BatchStatus.CANCELLED]
    assert summary["channels"]["mp"]["cancelled"] == 20 and summary["pending"] == 0


def test_mass_sends_wait_for_the_accounts_minute_budget(region, fake_api, small_batches, monkeypatch):
    import broadcasts.sending

    monkeypatch.setitem(region.config, "BROADCAST_MASS_PER_MINUTE", 1)
    monkeypatch.setattr(broadcasts.sending, "MASS_SLOT_WAIT", 0.0)
    add_residents(region, 8, CHENGGUAN_GRIDS)
    broadcast_id = new_broadcast(region)
    with region.app_context():
        list(plan_batches(broadcast_id, PlanSettings(mp_batch=4)))
        first, second = db.session.execute(select(BroadcastBatch.id).order_by(BroadcastBatch.seq)).scalars().all()
        assert send_broadcast_batch(broadcast_id, first) == BatchStatus.SENT
        with pytest.raises(RetryableSendError, match="budget"):
            send_broadcast_batch(broadcast_id, second)
    assert len(fake_api.sent(MASS_SEND)) == 1  # the second never reached WeChat


def test_a_node_wechat_refuses_a_tag_for_uses_openid_lists(region, fake_api, run_jobs, monkeypatch):
    monkeypatch.setitem(region.config, "MP_TAG_TIERS", ("town",))
    openids = add_residents(region, 6, CHENGGUAN_GRIDS, mp_tag_dirty=True)
    fake_api.fail_next("/cgi-bin/tags/create", (200, {"errcode": -1, "errmsg": "busy"}))
    with region.app_context(), pytest.raises(RetryableSendError):
        sync_mp_tags()  # a retryable refusal is RQ's to retry, not recorded
    # The account's 100 tags are used up: recorded, and the town's broadcasts use openid lists.
    fake_api.fail_next("/cgi-bin/tags/create", (200, {"errcode": 45056, "errmsg": "too many tags"}))
    with region.app_context():
        sync_mp_tags()
        town = db.session.execute(select(MpTag).filter_by(node_code=CHENGGUAN)).scalar_one()
    assert town.tag_id is None and "45056" in town.error
    broadcast_id = new_broadcast(region, queue=True)
    run_jobs()
    assert [b.kind for b in batches(region, broadcast_id)] == [BatchKind.OPENIDS]
    assert sorted(fake_api.mass.delivered) == sorted(openids)
