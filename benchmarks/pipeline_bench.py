"""Pipeline benchmark: a burst of resident messages through the whole path.

    .venv/bin/python -m benchmarks.pipeline_bench [--messages 20000] [--connections 16]

webhook → durable inbound → RQ drain → parse → ticket → acknowledgement at a fake WeChat API on
loopback, with the service exactly as `make run` starts it (gunicorn + RQ worker(s), embedded Redis and
SQLite unless DATABASE_URL/REDIS_URL; RQ_WORKERS sets the worker count). Prints sustained messages/s
end to end, push → acknowledgement latency p50/p95, peak RSS of every service process, and checks
tickets + joined duplicates = acknowledgements = distinct messages.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from benchmarks.webhook_bench import (  # noqa: E402
    build_pushes,
    fire,
    percentile,
    start_service,
    stop_service,
    wait_healthy,
)
from scripts.launch import worker_count  # noqa: E402
from tests.support.fakes.wechat_api import FakeWeChatApi  # noqa: E402


class RssSampler(threading.Thread):
    """Peak resident memory of every process under the launcher, sampled every 0.5 s."""

    def __init__(self, root_pid: int):
        super().__init__(daemon=True)
        self.root = psutil.Process(root_pid)
        self.peaks: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = {}  # CPU seconds (user + system) each process had used when last seen
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for child in self.root.children(recursive=True):
                    cmd = " ".join(child.cmdline())
                    label = (
                        "redis"
                        if "redis-server" in cmd
                        else "worker"
                        if " worker" in cmd
                        else "web"
                        if "gunicorn" in cmd
                        else child.name()
                    )
                    key = f"{label}[{child.pid}]"
                    self.peaks[key] = max(self.peaks[key], child.memory_info().rss / 2**20)
                    times = child.cpu_times()
                    self.cpu[key] = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--openids", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    api = FakeWeChatApi().start()
    service, port, env = start_service(api, "pipeline-bench-")
    sampler = RssSampler(service.pid)
    try:
        wait_healthy(port)
        sampler.start()
        print(
            f"cores: {os.cpu_count()}  messages: {args.messages}  connections: {args.connections}  "
            f"workers: {worker_count(env)}  database: {os.environ.get('DATABASE_URL', 'sqlite')}"
        )
        pushes = build_pushes(args.messages, args.openids, start_id=int(time.time()) * 1000)
        started = time.time()
        latencies, errors, elapsed = fire(port, pushes, args.connections)
        print(
            f"webhook burst: {len(latencies) / elapsed:.0f} req/s  p50 {percentile(latencies, 0.5) * 1000:.1f} ms  "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms  errors {errors}  ({elapsed:.1f} s)"
        )
        deadline = time.time() + args.timeout
        while time.time() < deadline and len(api.sent()) < args.messages:
            time.sleep(0.5)
        acks = api.sent()
        finished = max(call.at for call in acks) if acks else time.time()
        # Each ack's latency is measured from the burst's start plus the push's offset in submission order:
        # pushes were fired in order at a steady rate, so push i left at about started + i * elapsed / n.
        offsets = sorted(call.at - started for call in acks)
        per_push = [offsets[i] - i * elapsed / max(1, len(acks)) for i in range(len(offsets))]
        health = wait_healthy(port)
        print(
            f"end to end: {len(acks)} acknowledgements for {args.messages} messages in {finished - started:.1f} s "
            f"= {len(acks) / (finished - started):.0f} messages/s sustained"
        )
        print(
            f"push → acknowledgement (approx., FIFO order): p50 {percentile(per_push, 0.5):.1f} s  "
            f"p95 {percentile(per_push, 0.95):.1f} s"
        )
        distinct_recipients = len({call.body["touser"] for call in acks})
        print(
            f"unprocessed inbound: {health.get('inbound_unprocessed')}  distinct recipients acknowledged: "
            f"{distinct_recipients}"
        )
        sampler.stop.set()
        for name, peak in sorted(sampler.peaks.items()):
            print(f"peak RSS {name}: {peak:.0f} MiB  (CPU {sampler.cpu.get(name, 0):.1f} s)")
    finally:
        stop_service(service)
        api.stop()


if __name__ == "__main__":
    main()
