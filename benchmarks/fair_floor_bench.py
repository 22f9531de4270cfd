"""The webhook against the fairest floor: the bare app in its own best gunicorn configuration, driven by wrk.

    .venv/bin/python -m benchmarks.fair_floor_bench [--duration 10] [--connections 16] [--threads 1]

benchmarks/webhook_bench.py compares the service with the bare app under the *service's* gunicorn settings
and a Python load generator sharing the two cores. This one is stricter: the bare app (benchmarks/bare_app.py:
signature, decrypt, parse_message, "success") runs under each of a few gunicorn configurations that suit it
(sync workers, one per core, and threaded variants) and the best of them is the floor; the load comes from
wrk (C, one thread) replaying pre-signed AES pushes from a file. Then the service as `make run` starts it
(scripts/launch.py, so WEB_CONCURRENCY / WEB_THREADS / DATABASE_URL apply) takes the same load, with unique
pushes, and the benchmark waits until its worker has acknowledged every distinct push it stored.

Prints each configuration's requests/s and p50/p99 (wrk's), the ratios of the service to the best bare
configuration, the machine's load average before and after, and the acknowledgement count.
wrk must be installed (`apt-get install wrk`); without it the benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from benchmarks.webhook_bench import build_pushes, start_service, stop_service, wait_healthy  # noqa: E402
from scripts.launch import free_port, gunicorn_settings  # noqa: E402
from tests.support.fakes.wechat_api import FakeWeChatApi  # noqa: E402
from tests.support.wechat_push import AES_KEY, APPID, TOKEN  # noqa: E402

LUA = PROJECT / "benchmarks" / "wrk_pushes.lua"
# Gunicorn configurations the bare app is measured under; the best one is the floor. Sync workers, one per
# core, are what a plain Flask app is usually deployed with; the threaded ones are there in case keep-alive wins.
BARE_CONFIGS = {
    "sync -w 2": ["--workers", "2", "--worker-class", "sync"],
    "sync -w 3": ["--workers", "3", "--worker-class", "sync"],
    "gthread -w 2 --threads 4": ["--workers", "2", "--worker-class", "gthread", "--threads", "4"],
}
# More pushes than the fastest configuration can take in the run: none is replayed (a replay is a platform
# retry to the service, which is cheaper than a new push).
PUSHES_PER_SECOND = 6000
_RESULT = re.compile(r"WRK_RESULT (.*)")


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "wrk is not installed: this benchmark needs it as its load generator (apt-get install wrk). "
            "benchmarks/webhook_bench.py measures with a Python load generator instead."
        )
    return path


def write_pushes(path: Path, count: int, start_id: int, openids: int) -> None:
    with path.open("w") as out:
        for query, body in build_pushes(count, openids, start_id=start_id):
            out.write(f"/wechat/mp?{query}\t{body.decode()}\n")


def run_wrk(port: int, pushes_file: Path, duration: float, connections: int, threads: int) -> dict:
    output = subprocess.run(
        [
            wrk_path(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration:.0f}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
        ],
        env=dict(os.environ, PUSHES_FILE=str(pushes_file), WRK_THREADS=str(threads)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = _RESULT.search(output)
    if match is None:
        raise SystemExit(f"wrk printed no result:\n{output}")
    fields = {key: int(value) for key, value in (item.split("=") for item in match.group(1).split())}
    fields["rps"] = fields["requests"] / (fields["duration_us"] / 1e6)
    fields["errors"] = sum(fields[k] for k in ("connect", "read", "write", "status", "timeout"))
    return fields


def describe(name: str, result: dict) -> str:
    return (
        f"{name:<28} {result['rps']:>7.0f} req/s  p50 {result['p50_us'] / 1000:6.1f} ms  "
        f"p99 {result['p99_us'] / 1000:6.1f} ms  max {result['max_us'] / 1000:6.1f} ms  "
        f"requests {result['requests']}  errors {result['errors']}"
    )


def start_bare(port: int, settings: list[str]) -> subprocess.Popen:
    env = dict(os.environ, WECHAT_TOKEN=TOKEN, WECHAT_AES_KEY=AES_KEY, WECHAT_APPID=APPID)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            *settings,
            "benchmarks.bare_app:create_bare_app()",
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stored_pushes(env: dict) -> int:
    """Distinct pushes the service stored (wrk's count misses requests cut off at the end of the run)."""
    from sqlalchemy import create_engine, text

    url = env.get("DATABASE_URL") or f"sqlite:///{Path(env['INSTANCE_PATH']) / 'civic.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM inbound_messages WHERE channel = 'mp'")).scalar_one()
    finally:
        engine.dispose()


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per measurement")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--openids", type=int, default=3000)
    parser.add_argument("--bare", default=",".join(BARE_CONFIGS), help="comma-separated names of BARE_CONFIGS")
    parser.add_argument("--drain-timeout", type=float, default=600)
    args = parser.parse_args()
    wrk_path()
    folder = Path(tempfile.mkdtemp(prefix="fair-floor-"))
    count = int(PUSHES_PER_SECOND * (args.duration + args.warmup))
    print(
        f"cores: {os.cpu_count()}  wrk -t{args.threads} -c{args.connections} -d{args.duration:.0f}s  "
        f"database: {os.environ.get('DATABASE_URL', 'sqlite (instance)')}  load average before: {load_average()}"
    )

    bare_file = folder / "bare.txt"
    write_pushes(bare_file, count, start_id=1, openids=args.openids)
    best_name, best = None, None
    for name in args.bare.split(","):
        port = free_port()
        bare = start_bare(port, BARE_CONFIGS[name])
        try:
            wait_healthy(port)
            run_wrk(port, bare_file, args.warmup, args.connections, args.threads)
            result = run_wrk(port, bare_file, args.duration, args.connections, args.threads)
        finally:
            bare.terminate()
            bare.wait(timeout=30)
        print(describe(f"bare app, {name}", result))
        if best is None or result["rps"] > best["rps"]:
            best_name, best = name, result

    api = FakeWeChatApi().start()
    service, port, env = start_service(api, "fair-floor-instance-")
    try:
        wait_healthy(port)
        base_id = int(time.time()) * 1000
        warm_file, load_file = folder / "warm.txt", folder / "service.txt"
        write_pushes(warm_file, int(PUSHES_PER_SECOND * args.warmup), start_id=base_id, openids=args.openids)
        write_pushes(load_file, int(PUSHES_PER_SECOND * args.duration), start_id=base_id + 10**7, openids=args.openids)
        run_wrk(port, warm_file, args.warmup, args.connections, args.threads)
        result = run_wrk(port, load_file, args.duration, args.connections, args.threads)
        print(describe(f"service ({' '.join(gunicorn_settings(env)[:6])})", result))
        print(
            f"ratio: throughput {result['rps'] / best['rps']:.2f} of the bare app's best ({best_name}), "
            f"p99 {result['p99_us'] / best['p99_us']:.2f}x its p99"
        )
        stored = stored_pushes(env)
        started = time.time()
        while time.time() - started < args.drain_timeout:
            health = wait_healthy(port)
            if health.get("inbound_unprocessed") == 0 and len(api.sent()) >= stored:
                break
            time.sleep(1)
        acks = api.sent()
        print(
            f"backlog cleared {time.time() - started:.1f} s after the load; pushes stored {stored}, "
            f"acknowledgements sent {len(acks)}, unprocessed {wait_healthy(port).get('inbound_unprocessed')}"
        )
    finally:
        stop_service(service)
        api.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
