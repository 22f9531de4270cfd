"""Webhook benchmark: signed, AES-encrypted official-account pushes against the service as `make run` starts it.

    .venv/bin/python -m benchmarks.webhook_bench [--requests 4000] [--connections 16]

First measures a bare Flask app that does only what WeChat requires (benchmarks/bare_app.py) under the
same gunicorn settings, then the service as the real launcher starts it (gunicorn + RQ worker + embedded
Redis + SQLite in a temporary folder, or DATABASE_URL/REDIS_URL if set) with a fake WeChat API on
loopback. Both get unique pushes from a few thousand openids over keep-alive connections; it prints
requests/s, p50/p99 and the ratios, then waits for the worker to turn every push into a ticket and an
acknowledgement.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from scripts.launch import free_port, gunicorn_settings  # noqa: E402
from tests.support.fakes.wechat_api import FakeWeChatApi  # noqa: E402
from tests.support.wechat_push import AES_KEY, APPID, TOKEN, encrypted_push, text_xml  # noqa: E402

PLACES = [
    "阳光花园",
    "幸福里小区",
    "东大菜市场",
    "西环路",
    "滨河小区",
    "书香苑",
    "锦绣家园",
    "杨庄小学",
    "东大花园",
    "建设路",
]
MATTERS = [
    "路灯不亮好几天了",
    "垃圾堆了一周没人清运",
    "下水道堵了污水漫到路上",
    "楼道里堆满杂物有消防隐患",
    "广场舞噪音太大影响休息",
    "井盖松动晚上很危险",
    "电梯经常停运老人上下楼困难",
    "路面有个大坑电动车摔了",
    "小区门口占道经营很拥堵",
    "自来水发黄没法用",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_messages(count: int, openids: int) -> list[tuple[str, str]]:
    """(openid, text) of `count` varied resident reports from `openids` residents, the same every run."""
    rng = random.Random(7)
    messages = []
    for _ in range(count):
        text = f"{rng.choice(PLACES)}{rng.randint(1, 20)}号楼{rng.choice(MATTERS)}"
        messages.append((f"oBench{rng.randrange(openids):05d}", text))
    return messages


def build_pushes(count: int, openids: int, start_id: int) -> list[tuple[str, bytes]]:
    return [
        encrypted_push(text_xml(openid, text, msg_id=start_id + index))
        for index, (openid, text) in enumerate(build_messages(count, openids))
    ]


def fire(port: int, pushes: list[tuple[str, bytes]], connections: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    cursor = iter(range(len(pushes)))

    def run() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, bad = [], 0
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            query, body = pushes[index]
            started = time.perf_counter()
            try:
                conn.request("POST", f"/wechat/mp?{query}", body=body, headers={"Content-Type": "text/xml"})
                response = conn.getresponse()
                ok = response.read() == b"success" and response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine.append(time.perf_counter() - started)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=run) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def wait_healthy(port: int, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.5)
    raise SystemExit("service did not become healthy")


def start_service(api: FakeWeChatApi, prefix: str) -> tuple[subprocess.Popen, int, dict]:
    """The service exactly as `make run` starts it, in a throwaway instance folder, pointed at `api`."""
    port = free_port()
    env = dict(
        os.environ,
        INSTANCE_PATH=tempfile.mkdtemp(prefix=prefix),
        PORT=str(port),
        WECHAT_TOKEN=TOKEN,
        WECHAT_APPID=APPID,
        WECHAT_SECRET="benchsecret",
        WECHAT_AES_KEY=AES_KEY,
        WECHAT_API_BASE=api.base_url,
    )
    service = subprocess.Popen(
        [sys.executable, "-m", "scripts.launch"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return service, port, env


def stop_service(service: subprocess.Popen) -> None:
    """Ctrl-C, as a user would; the launcher stops its children."""
    service.send_signal(signal.SIGINT)
    try:
        service.wait(timeout=30)
    except subprocess.TimeoutExpired:
        service.kill()


def start_bare(env: dict, port: int) -> subprocess.Popen:
    """The bare app under the same gunicorn settings as the launcher uses for the service."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            *gunicorn_settings(env),
            "benchmarks.bare_app:create_bare_app()",
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(port: int, pushes, connections: int) -> tuple[float, float, float, int]:
    fire(port, build_pushes(200, 50, start_id=int(time.time() * 1000) % 10**9), connections)  # warm-up
    latencies, errors, elapsed = fire(port, pushes, connections)
    return len(latencies) / elapsed, percentile(latencies, 0.50), percentile(latencies, 0.99), errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--openids", type=int, default=3000)
    parser.add_argument("--drain-timeout", type=float, default=600)
    args = parser.parse_args()

    api = FakeWeChatApi().start()
    service, port, env = start_service(api, "bench-instance-")
    bare_port = free_port()
    bare = start_bare(env, bare_port)
    try:
        wait_healthy(port)
        wait_healthy(bare_port)
        print(
            f"cores: {os.cpu_count()}  connections: {args.connections}  requests: {args.requests}  "
            f"database: {os.environ.get('DATABASE_URL', 'sqlite (instance)')}"
        )
        base_id = int(time.time()) * 1000
        bare_rps, bare_p50, bare_p99, bare_errors = measure(
            bare_port, build_pushes(args.requests, args.openids, start_id=base_id), args.connections
        )
        print(
            f"bare app: {bare_rps:.0f} req/s  p50 {bare_p50 * 1000:.1f} ms  p99 {bare_p99 * 1000:.1f} ms  "
            f"errors {bare_errors}"
        )
        bare.terminate()
        rps, p50, p99, errors = measure(
            port, build_pushes(args.requests, args.openids, start_id=base_id + args.requests), args.connections
        )
        print(
            f"service:  {rps:.0f} req/s  p50 {p50 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms  errors {errors}  "
            f"(stores and queues every push while its worker processes them)"
        )
        print(f"ratio: throughput {rps / bare_rps:.2f} of the bare app, p99 {p99 / bare_p99:.2f}x the bare app's")
        total = args.requests + 200
        started = time.time()
        while time.time() - started < args.drain_timeout:
            health = wait_healthy(port)
            if health.get("inbound_unprocessed") == 0 and len(api.sent()) >= total:
                break
            time.sleep(1)
        print(
            f"backlog cleared {time.time() - started:.1f} s after the burst; pushes {total}, "
            f"acknowledgements sent {len(api.sent())}, unprocessed {wait_healthy(port).get('inbound_unprocessed')}"
        )
    finally:
        bare.kill()
        stop_service(service)
        api.stop()


if __name__ == "__main__":
    main()
