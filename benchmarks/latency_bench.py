"""Push → acknowledgement latency at a steady rate: what a resident feels.

    .venv/bin/python -m benchmarks.latency_bench [--rates 50,150] [--seconds 60]

The service as `make run` starts it (gunicorn + RQ worker(s), embedded Redis, SQLite unless DATABASE_URL)
gets signed AES pushes from 3,000 residents at a fixed rate for each rate in turn, paced by the clock
(push i leaves at start + i / rate), with a fake WeChat API on loopback recording each acknowledgement's
arrival. A resident's pushes and acknowledgements are paired in order (their pushes are seconds apart, so
order within a resident is unambiguous), giving each push's latency from the moment it was sent to the
moment its acknowledgement reached the API. Prints p50/p95/p99/max per rate, whether the backlog kept up,
and the machine's load average before and after. Loopback only; every loop is bounded by the run's length
and a drain timeout.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from benchmarks.pipeline_bench import RssSampler  # noqa: E402
from benchmarks.webhook_bench import build_messages, percentile, start_service, stop_service, wait_healthy  # noqa: E402
from tests.support.fakes.wechat_api import FakeWeChatApi  # noqa: E402
from tests.support.wechat_push import encrypted_push, text_xml  # noqa: E402

SENDERS = 8


def paced_send(port: int, pushes: list[tuple[str, bytes]], rate: float) -> tuple[list[float], int, float]:
    """Send push i at start + i / rate from SENDERS keep-alive connections; returns each push's send time
    (time.time()), the number of non-"success" answers and the worst lateness behind the schedule."""
    sent_at = [0.0] * len(pushes)
    errors = [0] * SENDERS
    late = [0.0] * SENDERS
    start = time.time() + 0.5

    def run(lane: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for index in range(lane, len(pushes), SENDERS):
            due = start + index / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            late[lane] = max(late[lane], -delay)
            query, body = pushes[index]
            sent_at[index] = time.time()
            try:
                conn.request("POST", f"/wechat/mp?{query}", body=body, headers={"Content-Type": "text/xml"})
                response = conn.getresponse()
                ok = response.status == 200 and response.read() == b"success"
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            errors[lane] += not ok
        conn.close()

    threads = [threading.Thread(target=run, args=(lane,)) for lane in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent_at, sum(errors), max(late)


def pair_latencies(senders: list[str], sent_at: list[float], acks) -> tuple[list[float], int]:
    """Per resident, the n-th push sent is answered by the n-th acknowledgement received."""
    pushes_by: dict[str, list[float]] = defaultdict(list)
    for sender, at in zip(senders, sent_at, strict=True):
        pushes_by[sender].append(at)
    acks_by: dict[str, list[float]] = defaultdict(list)
    for call in acks:
        acks_by[call.body["touser"]].append(call.at)
    latencies, unmatched = [], 0
    for sender, times in pushes_by.items():
        answered = sorted(acks_by.get(sender, []))
        unmatched += abs(len(times) - len(answered))
        latencies += [ack - push for push, ack in zip(sorted(times), answered, strict=False)]
    return latencies, unmatched


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="50,150", help="pushes per second, comma-separated, run in turn")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--openids", type=int, default=3000)
    parser.add_argument("--drain-timeout", type=float, default=300)
    args = parser.parse_args()

    api = FakeWeChatApi().start()
    service, port, env = start_service(api, "latency-bench-")
    sampler = RssSampler(service.pid)
    try:
        wait_healthy(port)
        sampler.start()
        print(
            f"cores: {os.cpu_count()}  database: {os.environ.get('DATABASE_URL', 'sqlite')}  "
            f"load average before: {load_average()}"
        )
        next_id = int(time.time()) * 1000
        for rate in (float(r) for r in args.rates.split(",")):
            count = int(rate * args.seconds)
            messages = build_messages(count, args.openids)
            pushes = [
                encrypted_push(text_xml(openid, text, msg_id=next_id + index))
                for index, (openid, text) in enumerate(messages)
            ]
            senders = [openid for openid, _ in messages]
            next_id += count
            # Not api.reset(): it also invalidates the access tokens, and the fake records the refused send too.
            before = len(api.sent())
            sent_at, errors, late = paced_send(port, pushes, rate)
            sent_done = time.time()
            deadline = sent_done + args.drain_timeout
            while time.time() < deadline and len(api.sent()) - before < count:
                time.sleep(0.25)
            acks = api.sent()[before:]
            latencies, unmatched = pair_latencies(senders, sent_at, acks)
            backlog_after = (max(c.at for c in acks) - sent_done) if acks else float("nan")
            print(
                f"{rate:.0f} pushes/s for {args.seconds:.0f} s: {count} pushes, {errors} not answered 'success', "
                f"sender at most {late * 1000:.0f} ms behind schedule; {len(acks)} acknowledgements "
                f"({unmatched} unmatched); last one {backlog_after:.1f} s after the last push"
            )
            if latencies:
                print(
                    f"  push → acknowledgement: p50 {percentile(latencies, 0.50):.3f} s  "
                    f"p95 {percentile(latencies, 0.95):.3f} s  p99 {percentile(latencies, 0.99):.3f} s  "
                    f"max {max(latencies):.3f} s"
                )
            health = wait_healthy(port)
            print(f"  unprocessed inbound afterwards: {health.get('inbound_unprocessed')}")
        sampler.stop.set()
        for name, peak in sorted(sampler.peaks.items()):
            print(f"peak RSS {name}: {peak:.0f} MiB  (CPU {sampler.cpu.get(name, 0):.1f} s)")
    finally:
        stop_service(service)
        api.stop()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
