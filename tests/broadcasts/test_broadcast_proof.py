"""The issue's proof: a town of 30,000 subscribers and 200 officers, 20% of the platform's answers -1, a
worker SIGKILLed mid-broadcast right after a mass send went out (before it could record it), a fresh
worker: everyone is reached exactly once, as counted by the fake WeChat/WeCom API, and progress ends at 100%.

Run with `-s` to see the figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from config.queues import QueueNames
from models import BatchStatus, BroadcastBatch, db
from ops.queue import get_queue
from tests.support.broadcasts import (
    CHENGGUAN,
    CHENGGUAN_GRIDS,
    WECOM_CONFIG,
    add_officers,
    add_residents,
    auth,
    notice,
    token_for,
)

PROJECT = Path(__file__).resolve().parents[2]
SUBSCRIBERS = 30_000
OFFICERS = 200
MASS_SEND = "/cgi-bin/message/mass/send"
APP_SEND = "/cgi-bin/message/send"
KILL_AT_DELIVERY = 12  # of 30 mass sends
SETTINGS = {
    # Smaller batches than production (10,000 / 1,000) so the faults and the kill hit many calls.
    "BROADCAST_MP_BATCH": 1000,
    "BROADCAST_WECOM_BATCH": 50,
    # Immediate retries: the test must not sleep through the production backoff (10 s, 60 s, …).
    "BROADCAST_RETRY_INTERVALS": [0] * 8,
    **WECOM_CONFIG,
}
PASSED_KEYS = (
    "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL",
    "SECRET_KEY",
    "WECHAT_TOKEN",
    "WECHAT_APPID",
    "WECHAT_SECRET",
    "WECHAT_AES_KEY",
    "WECHAT_API_BASE",
    "WECOM_API_BASE",
)


def test_thirty_thousand_subscribers_each_reached_once_through_faults_and_a_killed_worker(
    region, client, fake_api, run_jobs, monkeypatch
):
    started = time.monotonic()
    for key, value in SETTINGS.items():
        monkeypatch.setitem(region.config, key, value)
    openids = add_residents(region, SUBSCRIBERS, CHENGGUAN_GRIDS)
    userids = add_officers(region, OFFICERS, CHENGGUAN_GRIDS)
    for path in (MASS_SEND, APP_SEND):
        # Half of the -1 answers come after the call took effect: only a clientmsgid (or WeCom's duplicate
        # check) stands between a retry and a second copy.
        fake_api.random_faults.set(path, 0.2, lost_share=0.5, seed=20261124)
    token = token_for(region, "staff", CHENGGUAN)
    created = client.post(
        "/api/broadcasts", json=notice([CHENGGUAN], ["all"], ["mp", "wecom_app", "group"]), headers=auth(token)
    )
    assert created.status_code == 201, created.get_json()
    broadcast_id = created.get_json()["id"]
    accepted_at = time.monotonic()

    # A worker in its own process, SIGKILLed by the fake API right after the 12th mass send went out.
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.broadcast_worker", json.dumps(_worker_settings(region))],
        cwd=PROJECT,
        env=os.environ.copy(),
    )

    def kill_worker(deliveries: int) -> None:
        if deliveries == KILL_AT_DELIVERY:
            os.kill(worker.pid, signal.SIGKILL)

    fake_api.mass.on_delivered = kill_worker
    assert worker.wait(timeout=60) == -signal.SIGKILL, "the worker finished before it could be killed"
    fake_api.mass.on_delivered = None
    with region.app_context():
        at_kill = dict(
            db.session.execute(
                select(BroadcastBatch.status, func.count()).filter_by(broadcast_id=broadcast_id).group_by("status")
            ).all()
        )
    delivered_before = sum(fake_api.mass.delivered.values())
    # SENDING = "the call may have gone out": the batch cut off by the kill, and batches whose last answer
    # was -1 and that wait for their retry.
    assert at_kill.get(BatchStatus.SENDING, 0) >= 1 and at_kill.get(BatchStatus.PENDING, 0) >= 1

    # RQ's maintenance treats a job whose worker stopped heartbeating (job timeout + 60 s) as abandoned
    # and retries it; run that now instead of waiting, then let a fresh worker drain everything.
    connection = region.extensions["redis"]
    registry = StartedJobRegistry(queue=get_queue(QueueNames.BROADCAST, connection))
    abandoned = registry.get_job_ids(cleanup=False)
    assert len(abandoned) == 1  # the batch whose mass send went out just before the kill
    registry.cleanup(timestamp=time.time() + 3600)
    run_jobs()
    elapsed = time.monotonic() - started

    # Counted at the fake API: every subscriber and every officer exactly once, nobody else.
    assert len(fake_api.mass.delivered) == SUBSCRIBERS and set(fake_api.mass.delivered) == set(openids)
    assert set(fake_api.mass.delivered.values()) == {1} and not fake_api.mass.filtered
    reached_officers = set(fake_api.mass.app_delivered)
    assert set(userids) <= reached_officers and set(fake_api.mass.app_delivered.values()) == {1}
    assert len(fake_api.sent("/cgi-bin/webhook/send")) == 1
    assert fake_api.mass.duplicates_refused >= 1  # the killed batch's re-run was refused as already sent

    data = client.get(f"/api/broadcasts/{broadcast_id}", headers=auth(token)).get_json()
    progress = data["progress"]
    assert data["status"] == "done" and progress["percent"] == 100.0
    assert progress["pending"] == 0 and progress["failed"] == 0
    assert progress["channels"]["mp"]["sent"] == SUBSCRIBERS
    assert progress["channels"]["wecom_app"]["sent"] == len(reached_officers) == OFFICERS + 10
    with region.app_context():
        attempts = dict(
            db.session.execute(
                select(BroadcastBatch.channel, func.sum(BroadcastBatch.attempts))
                .filter(BroadcastBatch.broadcast_id == broadcast_id)
                .group_by(BroadcastBatch.channel)
            ).all()
        )
    print(
        "\nbroadcast proof:"
        f" {SUBSCRIBERS} subscribers + {len(reached_officers)} WeCom members + 1 tier group;"
        f" setup {accepted_at - started:.1f} s, worker runs + recovery {elapsed - (accepted_at - started):.1f} s,"
        f" total {elapsed:.1f} s\n"
        f"  mass sends: {len(fake_api.sent(MASS_SEND))} calls for 30 batches;"
        f" {fake_api.random_faults.injected[MASS_SEND]} answered -1"
        f" ({fake_api.random_faults.lost[MASS_SEND]} of them after the send went out);"
        f" {fake_api.mass.duplicates_refused} repeats refused as already sent (45065)\n"
        f"  WeCom app: {len(fake_api.sent(APP_SEND))} calls for 5 batches;"
        f" {fake_api.random_faults.injected[APP_SEND]} answered -1"
        f" ({fake_api.random_faults.lost[APP_SEND]} after delivering);"
        f" {fake_api.mass.app_duplicates} copies dropped by WeCom's duplicate check\n"
        f"  worker SIGKILLed right after mass send #{KILL_AT_DELIVERY} went out: {delivered_before} residents reached"
        f" by then; batches at the kill {at_kill}; abandoned job {abandoned}\n"
        f"  batch attempts by channel {attempts}; messages per resident {set(fake_api.mass.delivered.values())},"
        f" per member {set(fake_api.mass.app_delivered.values())};"
        f" WeChat filtered {sum(fake_api.mass.filtered.values())};"
        f" progress {progress['percent']}% (sent {progress['sent']}, failed {progress['failed']},"
        f" pending {progress['pending']})"
    )


def _worker_settings(app) -> dict:
    settings = {key: app.config[key] for key in PASSED_KEYS}
    settings.update({key: app.config[key] for key in SETTINGS})
    return settings
