"""Ctrl-C to `make run` right after a burst: everything stops, in order, and a quick restart is on time.

The stack is the one `make run` starts (scripts/launch.py: embedded Redis, gunicorn, an RQ worker with its
scheduler), in a session of its own. It is stopped the way a terminal stops it, SIGINT to the whole
process group, while the worker is still draining the burst. Afterwards no process of it may be left and
its port must be free; a second launch started at once must bind the port, take RQ's scheduler locks and
run a job that was scheduled before the stop when it falls due.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from rq import Queue

from config.queues import QueueNames
from tests.support.fakes.wechat_api import FakeWeChatApi
from tests.support.harness import free_port, resident_pushes, wait_for
from tests.support.launched import LaunchedStack, launch_env, port_is_free, record_run, stack_processes

BURST = 120
RESTART_WITHIN = 10.0  # seconds from the old stack gone to the new launcher started
DUE_AFTER_STOP = 45.0  # the scheduled job, made just before Ctrl-C, falls due this long after it
ON_TIME = 5.0  # RQ's scheduler looks every second; a worker picks a queued job up at once


def _burst(port: int) -> list[int]:
    pushes = resident_pushes(BURST, "Stop", first_msg_id=9_100_000)

    def post(push) -> int:
        _, query, body = push
        url = f"http://127.0.0.1:{port}/wechat/mp?{query}"
        return requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=10).status_code

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(post, pushes))


def _stop_like_a_terminal(stack: LaunchedStack) -> float:
    """Ctrl-C; returns when the launcher has exited, having checked nothing of it is left."""
    stack.interrupt()
    code = stack.wait_stopped(timeout=90)
    stopped_at = time.time()
    left = stack_processes(stack.instance)
    assert not left, f"processes left after Ctrl-C: {left}\n{stack.log_tail()}"
    assert port_is_free(stack.port), f"port {stack.port} still taken after Ctrl-C\n{stack.log_tail()}"
    assert code == 0, f"the launcher exited with {code}\n{stack.log_tail()}"
    return stopped_at


@pytest.mark.slow
def test_ctrl_c_after_a_burst_leaves_nothing_and_a_quick_restart_runs_scheduled_jobs_on_time(tmp_path):
    fake_api = FakeWeChatApi().start()
    instance = tmp_path / "instance"
    env = launch_env(instance, free_port(), fake_api.base_url)
    marker = tmp_path / "scheduled-job-ran"
    stacks: list[LaunchedStack] = []
    try:
        first = LaunchedStack(env, tmp_path / "launch-1.log")
        stacks.append(first)
        first.wait_ready()
        assert _burst(first.port) == [200] * BURST
        # A scheduled job (what a delivery retry is to RQ), due after the stop and the restart.
        due = time.time() + DUE_AFTER_STOP
        with first.redis() as redis:
            Queue(QueueNames.WORKFLOW, connection=redis).enqueue_at(
                datetime.fromtimestamp(due, UTC), record_run, str(marker)
            )
        (instance / "redis.url").unlink()  # the restarted Redis writes its own (a new port, the same data)
        stopped_at = _stop_like_a_terminal(first)

        second = LaunchedStack(env, tmp_path / "launch-2.log")
        stacks.append(second)
        assert time.time() - stopped_at < RESTART_WITHIN
        second.wait_ready()
        assert time.time() < due, "the restarted stack came up too late to judge on-time scheduling"
        assert not marker.exists(), "the scheduled job ran before it was due"
        wait_for(marker.exists, DUE_AFTER_STOP + 30, 0.2, "the scheduled job to run")
        late = float(marker.read_text()) - due
        assert late <= ON_TIME, f"the scheduled job ran {late:.1f} s late\n{second.log_tail()}"

        _stop_like_a_terminal(second)
    finally:
        for stack in stacks:
            stack.kill_everything()
        fake_api.stop()
