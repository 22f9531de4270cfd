"""Followers: `flask sync-followers` pages through user/get so every follower is a known resident, and
notices reach them: a county-wide one every follower (is_to_all), a regional one every located follower,
with the dry run saying how many followers have no known place."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from jobs.cron import tick
from models import BatchKind, BroadcastBatch, Resident, db, utcnow
from tests.support.broadcasts import CHENGGUAN, CHENGGUAN_GRIDS, add_residents, auth, notice, token_for

COUNTY = "990100"


def _residents(app) -> dict[str, Resident]:
    with app.app_context():
        rows = db.session.execute(select(Resident)).scalars().all()
        db.session.expunge_all()
        return {row.openid: row for row in rows}


def _sync(app) -> dict:
    result = app.test_cli_runner().invoke(args=["sync-followers"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_sync_followers_pages_through_user_get_and_knows_every_follower(region, fake_api):
    old = utcnow() - timedelta(days=30)
    with region.app_context():
        db.session.add_all(
            [
                Resident(openid="oWrote", grid_code=CHENGGUAN_GRIDS[0], last_message_at=old, created_at=old),
                Resident(openid="oBack", subscribed=False, unsubscribed_at=old, created_at=old),
                Resident(openid="oNotListed", subscribed=True, created_at=old),
            ]
        )
        db.session.commit()
    fake_api.mass.followers = ["oWrote", "oBack"] + [f"oOld{i:03d}" for i in range(23)]
    fake_api.mass.followers_page = 10

    counts = _sync(region)

    assert counts == {"followers": 25, "new": 23, "resubscribed": 1, "pages": 3, "total": 25}
    pages = [call.args.get("next_openid", "") for call in fake_api.sent("/cgi-bin/user/get")]
    assert pages == ["", "oOld007", "oOld017", "oOld022"]  # each page after the last openid of the one before
    residents = _residents(region)
    followers = set(fake_api.mass.followers)
    assert {o for o, r in residents.items() if r.subscribed} == followers | {"oNotListed"}
    assert all(residents[o].follower_seen_at is not None for o in followers)
    assert residents["oOld000"].grid_code is None and residents["oWrote"].grid_code == CHENGGUAN_GRIDS[0]
    assert residents["oNotListed"].follower_seen_at is None  # left as it was: an unfollow comes as an event

    again = _sync(region)  # a second pass changes nothing
    assert (again["new"], again["resubscribed"]) == (0, 0)


def test_the_daily_tick_enqueues_the_follower_sync_once_a_day(app, redis):
    from rq import Queue

    now = 1_800_000_000.0
    with app.app_context():
        tick(now)
        tick(now + 60)
    ids = [
        job_id for job_id in Queue("broadcast", connection=redis).job_ids if job_id.startswith("cron-sync_followers")
    ]
    assert ids == [f"cron-sync_followers-{int(now // 86400)}"]
    job = Queue("broadcast", connection=redis).fetch_job(ids[0])
    assert job.timeout == 3600


def test_a_county_wide_notice_reaches_every_follower_with_one_is_to_all_send(region, client, fake_api, run_jobs):
    located = add_residents(region, 6, CHENGGUAN_GRIDS)
    fake_api.mass.followers = [*located, "oNoPlace1", "oNoPlace2", "oNoPlace3"]
    _sync(region)
    fake_api.mass.followers.append("oFollowedSinceSync")  # WeChat knows them; we do not yet
    token = token_for(region, "admin", COUNTY)

    dry = client.post("/api/broadcasts", json=notice([COUNTY], ["resident"], ["mp"], dry_run=True), headers=auth(token))
    assert dry.get_json()["counts"]["mp"]["total"] == 9
    assert dry.get_json()["no_known_place"] == 3

    created = client.post("/api/broadcasts", json=notice([COUNTY], ["resident"], ["mp"]), headers=auth(token))
    assert created.status_code == 201, created.get_json()
    run_jobs()
    [call] = fake_api.sent("/cgi-bin/message/mass/sendall")
    assert call.body["filter"] == {"is_to_all": True} and call.body["clientmsgid"]
    assert not fake_api.sent("/cgi-bin/message/mass/send")
    assert dict(fake_api.mass.delivered) == {openid: 1 for openid in fake_api.mass.followers}
    with region.app_context():
        [batch] = db.session.execute(select(BroadcastBatch)).scalars().all()
        assert (batch.kind, batch.size, batch.status) == (BatchKind.ALL, 9, "sent")
        counts = dict(db.session.execute(select(Resident.openid, Resident.mass_count)).all())
    assert counts["oNoPlace1"] == 1 and counts[located[0]] == 1  # the month's allowance is counted for all


def test_a_county_wide_notice_leaves_out_who_opted_out_by_listing_every_other_follower(
    region, client, fake_api, run_jobs
):
    located = add_residents(region, 4, CHENGGUAN_GRIDS)
    quiet = add_residents(region, 1, CHENGGUAN_GRIDS, prefix="oQuiet", notices=False)
    fake_api.mass.followers = [*located, *quiet, "oNoPlace1", "oNoPlace2"]
    _sync(region)
    token = token_for(region, "admin", COUNTY)
    created = client.post("/api/broadcasts", json=notice([COUNTY], ["resident"], ["mp"]), headers=auth(token))
    assert created.status_code == 201, created.get_json()
    run_jobs()
    assert not fake_api.sent("/cgi-bin/message/mass/sendall")  # is_to_all would reach the one who opted out
    assert set(fake_api.mass.delivered) == {*located, "oNoPlace1", "oNoPlace2"}


def test_a_region_notice_reaches_located_followers_and_the_dry_run_counts_those_without_a_place(
    region, client, fake_api, run_jobs
):
    located = add_residents(region, 5, CHENGGUAN_GRIDS)
    elsewhere = add_residents(region, 2, ["990102001001"], prefix="oHexi")
    fake_api.mass.followers = [*located, *elsewhere, "oNoPlace1", "oNoPlace2"]
    _sync(region)
    token = token_for(region, "staff", CHENGGUAN)
    dry = client.post(
        "/api/broadcasts", json=notice([CHENGGUAN], ["resident"], ["mp"], dry_run=True), headers=auth(token)
    )
    assert dry.get_json()["counts"]["mp"]["total"] == 5 and dry.get_json()["no_known_place"] == 2
    assert dry.get_json()["counts"]["mp"]["whole_account"] is False

    created = client.post("/api/broadcasts", json=notice([CHENGGUAN], ["resident"], ["mp"]), headers=auth(token))
    assert created.status_code == 201, created.get_json()
    run_jobs()
    assert set(fake_api.mass.delivered) == set(located)
    assert not any(call.body["filter"].get("is_to_all") for call in fake_api.sent("/cgi-bin/message/mass/sendall"))
