"""RQ's scheduler locks left by a scheduler that is gone are freed when a worker starts; live ones are not."""

from __future__ import annotations

from datetime import timedelta

from rq.scheduler import RQScheduler
from rq.utils import now, utcformat

from config.queues import all_queues
from jobs.worker import release_stale_scheduler_locks


def _hold(redis, queue: str, owner: str, beat_seconds_ago: float | None) -> None:
    redis.set(RQScheduler.get_locking_key(queue), owner, ex=61)
    if beat_seconds_ago is not None:
        beat = utcformat(now() - timedelta(seconds=beat_seconds_ago))
        redis.hset(
            f"rq:scheduler:{owner}",
            mapping={
                "name": owner,
                "hostname": "h",
                "pid": "1",
                "queues": queue,
                "created_at": beat,
                "last_heartbeat": beat,
            },
        )


def test_locks_of_gone_schedulers_are_released_and_live_ones_kept(redis):
    intake, delivery, workflow, broadcast = all_queues()
    _hold(redis, intake, "alive", beat_seconds_ago=1)
    _hold(redis, delivery, "silent", beat_seconds_ago=40)  # Redis stopped before it said goodbye
    _hold(redis, workflow, "vanished", beat_seconds_ago=None)  # its record expired or was deleted
    released = release_stale_scheduler_locks(redis, all_queues())
    assert sorted(released) == sorted([delivery, workflow])
    assert redis.get(RQScheduler.get_locking_key(intake)) == b"alive"
    assert not redis.exists(RQScheduler.get_locking_key(delivery), RQScheduler.get_locking_key(workflow))
    assert release_stale_scheduler_locks(redis, [broadcast]) == []  # nobody held it: nothing to do
