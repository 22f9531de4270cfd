"""POST/GET /api/broadcasts and cancel: validation, region scope, the monthly limit, dry runs, progress."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEvent, Broadcast, BroadcastBatch, Resident, db
from tests.support.broadcasts import (
    CHENGGUAN,
    CHENGGUAN_GRIDS,
    WECOM_CONFIG,
    add_residents,
    auth,
    notice,
    token_for,
)


@pytest.fixture
def wecom(app, monkeypatch):
    for key, value in WECOM_CONFIG.items():
        monkeypatch.setitem(app.config, key, value)


def post(client, token, body):
    return client.post("/api/broadcasts", json=body, headers=auth(token))


def test_a_notice_reaches_residents_officers_and_groups_and_reports_progress(region, client, fake_api, run_jobs, wecom):
    openids = add_residents(region, 25, CHENGGUAN_GRIDS)
    add_residents(region, 3, CHENGGUAN_GRIDS, prefix="oGone", subscribed=False)
    add_residents(region, 2, CHENGGUAN_GRIDS, prefix="oQuiet", notices=False)
    add_residents(region, 4, ["990102001001"], prefix="oHexi")  # another town: not in the audience
    token = token_for(region, "staff", CHENGGUAN)

    answer = post(client, token, notice([CHENGGUAN], ["all"], ["mp", "wecom_app", "group"]))
    assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    assert created["counts"]["mp"]["total"] == 25
    assert created["counts"]["mp"]["skipped"] == {"unsubscribed": 3, "opted_out": 2, "over_limit": 0}
    assert created["counts"]["wecom_app"]["total"] == 10  # town staff and department, cadres, grid officers
    assert created["counts"]["group"]["total"] == 1  # 城关镇's robot; its communities have none

    run_jobs()
    data = client.get(f"/api/broadcasts/{created['id']}", headers=auth(token)).get_json()
    assert data["status"] == "done"
    assert data["progress"]["percent"] == 100.0 and data["progress"]["pending"] == 0
    assert {"total": 25, "sent": 25, "failed": 0, "skipped": 5}.items() <= data["progress"]["channels"]["mp"].items()
    assert data["progress"]["channels"]["wecom_app"]["sent"] == 10
    assert data["progress"]["channels"]["group"]["sent"] == 1
    assert set(fake_api.mass.delivered) == set(openids) and set(fake_api.mass.delivered.values()) == {1}
    sent = fake_api.sent("/cgi-bin/message/mass/send")[0].body
    assert sent["clientmsgid"] and sent["text"]["content"].startswith("【防汛预警】")
    robot = fake_api.sent("/cgi-bin/webhook/send")
    assert len(robot) == 1 and robot[0].args["key"] == "demo-chengguan-robot"
    with region.app_context():
        actions = set(db.session.execute(select(AuditEvent.action)).scalars())
        counts = dict(db.session.execute(select(Resident.openid, Resident.mass_count)).all())
    assert {"broadcast.created", "broadcast.planned", "broadcast.batch_sent", "broadcast.finished"} <= actions
    assert counts[openids[0]] == 1 and counts["oGone0000000"] == 0 and counts["oHexi0000000"] == 0


def test_dry_run_counts_without_recording_anything(region, client, fake_api):
    add_residents(region, 7, CHENGGUAN_GRIDS)
    token = token_for(region, "admin", "990100")
    answer = post(client, token, notice([CHENGGUAN], ["resident"], ["mp"], dry_run=True))
    assert answer.status_code == 200
    assert answer.get_json()["counts"]["mp"]["total"] == 7 and answer.get_json()["dry_run"] is True
    with region.app_context():
        assert db.session.execute(select(Broadcast)).first() is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"title": "", "body": "x", "audience": {"regions": ["990101"], "roles": ["resident"]}}, "title"),
        ({"title": "t", "body": "x", "audience": {"regions": [], "roles": ["resident"]}}, "regions"),
        ({"title": "t", "body": "x", "audience": {"regions": ["990101"], "roles": ["mayor"]}}, "role"),
        (
            {
                "title": "t",
                "body": "x",
                "audience": {"regions": ["990101"], "roles": ["resident"]},
                "channels": ["sms"],
            },
            "channels",
        ),
        (
            {
                "title": "t",
                "body": "x",
                "link": "javascript:alert(1)",
                "audience": {"regions": ["990101"], "roles": ["resident"]},
            },
            "link",
        ),
        ({"title": "t", "body": "x", "audience": {"regions": ["123456"], "roles": ["resident"]}}, "unknown region"),
    ],
)
def test_bad_requests_are_400_with_the_reason(region, client, body, fragment):
    answer = post(client, token_for(region, "admin", "990100"), body)
    assert answer.status_code == 400 and fragment in answer.get_json()["message"]


def test_outside_the_callers_region_is_403_and_viewers_may_not_publish(region, client):
    add_residents(region, 3, ["990102001001"])
    answer = post(client, token_for(region, "staff", CHENGGUAN), notice(["990102"], ["resident"], ["mp"]))
    assert answer.status_code == 403 and "990102" in answer.get_json()["message"]
    answer = post(client, token_for(region, "viewer", "990100"), notice([CHENGGUAN], ["resident"], ["mp"]))
    assert answer.status_code == 403


def test_a_fifth_mass_send_in_a_month_is_refused_with_the_reason_unless_skipped(region, client, run_jobs, fake_api):
    add_residents(region, 6, CHENGGUAN_GRIDS)
    add_residents(region, 2, CHENGGUAN_GRIDS, prefix="oFull")
    token = token_for(region, "admin", "990100")
    with region.app_context():
        from broadcasts.audience import month_of
        from models import utcnow

        month = month_of(utcnow())
        db.session.execute(
            Resident.__table__.update().where(Resident.openid.like("oFull%")).values(mass_month=month, mass_count=4)
        )
        db.session.commit()
    refused = post(client, token, notice([CHENGGUAN], ["resident"], ["mp"]))
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["error"] == "over_monthly_limit" and body["over_limit"] == 2 and "skip_over_limit" in body["message"]

    accepted = post(client, token, notice([CHENGGUAN], ["resident"], ["mp"], skip_over_limit=True))
    assert accepted.status_code == 201
    assert accepted.get_json()["counts"]["mp"]["total"] == 6
    assert accepted.get_json()["counts"]["mp"]["skipped"]["over_limit"] == 2
    run_jobs()
    assert not any(openid.startswith("oFull") for openid in fake_api.mass.delivered)
    assert len(fake_api.mass.delivered) == 6 and not fake_api.mass.filtered


def test_four_broadcasts_fill_the_month_and_the_fifth_is_refused(region, client, run_jobs, fake_api):
    add_residents(region, 3, CHENGGUAN_GRIDS)
    token = token_for(region, "admin", "990100")
    for _ in range(4):
        assert post(client, token, notice([CHENGGUAN], ["resident"], ["mp"])).status_code == 201
    # Reserved when planned, so the fifth is refused even before the four have gone out.
    run_jobs()
    assert post(client, token, notice([CHENGGUAN], ["resident"], ["mp"])).status_code == 409
    assert set(fake_api.mass.delivered.values()) == {4}


def test_cancel_stops_pending_batches_and_gives_the_month_back(region, client, run_jobs, fake_api, monkeypatch):
    monkeypatch.setitem(region.config, "BROADCAST_MP_BATCH", 4)
    add_residents(region, 12, CHENGGUAN_GRIDS)
    token = token_for(region, "staff", CHENGGUAN)
    created = post(client, token, notice([CHENGGUAN], ["resident"], ["mp"])).get_json()
    with region.app_context():  # plan only: the fan-out job, not the batch jobs
        from broadcasts.sending import fan_out_broadcast

        fan_out_broadcast(created["id"])
        first = (
            db.session.execute(
                select(BroadcastBatch).filter_by(broadcast_id=created["id"]).order_by(BroadcastBatch.seq)
            )
            .scalars()
            .first()
        )
        from broadcasts.sending import send_broadcast_batch

        send_broadcast_batch(created["id"], first.id)
    answer = client.post(f"/api/broadcasts/{created['id']}/cancel", headers=auth(token))
    assert answer.status_code == 200
    data = answer.get_json()
    assert data["status"] == "cancelled"
    assert {"total": 12, "sent": 4, "cancelled": 8, "pending": 0}.items() <= data["progress"]["channels"]["mp"].items()
    run_jobs()  # queued batch jobs find their batch cancelled; the release job gives the month back
    assert sum(fake_api.mass.delivered.values()) == 4
    with region.app_context():
        counts = sorted(db.session.execute(select(Resident.mass_count)).scalars())
    assert counts == [0] * 8 + [1] * 4
    assert client.post(f"/api/broadcasts/{created['id']}/cancel", headers=auth(token)).status_code == 409


def test_get_is_scoped_to_the_callers_region(region, client):
    add_residents(region, 3, CHENGGUAN_GRIDS)
    created = post(client, token_for(region, "admin", "990100"), notice([CHENGGUAN], ["resident"], ["mp"])).get_json()
    other = token_for(region, "staff", "990102")
    assert client.get(f"/api/broadcasts/{created['id']}", headers=auth(other)).status_code == 404
    assert client.get("/api/broadcasts/999999", headers=auth(other)).status_code == 404
