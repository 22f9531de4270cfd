"""Escalation sweep over 100,000 open tickets.

    .venv/bin/python -m benchmarks.sweep_bench [--tickets 100000] [--due-percent 1]

Creates the demo county and N open tickets in a throwaway database (SQLite in a temp folder, or
DATABASE_URL), a given share of them past their sign or resolve deadlines, then times one sweep (which
reminds/escalates the due ones) and a second sweep for the same moment (which must find nothing).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--due-percent", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="sweep-bench-"))

    from flask_migrate import upgrade

    from app import create_app
    from models import RegionNode, Ticket, db, utcnow
    from regions.importer import import_region
    from workflow.sweep import run_sweep

    app = create_app("production" if os.environ.get("DATABASE_URL") else "development")
    with app.app_context():
        upgrade(directory=str(PROJECT / "migrations"))
        import_region((PROJECT / "config" / "demo_region.yaml").read_text(encoding="utf-8"))
        grids = db.session.execute(db.select(RegionNode.code).filter_by(tier="grid")).scalars().all()
        now = utcnow()
        rng = random.Random(1)
        started = time.perf_counter()
        rows = []
        due_every = max(1, round(100 / args.due_percent)) if args.due_percent else 0
        for index in range(args.tickets):
            grid = rng.choice(grids)
            due = bool(due_every) and index % due_every in (0, 1)  # odd: unsigned (reminders), even: overdue
            rows.append(
                {
                    "number": f"B{index:09d}",
                    "status": "assigned" if index % 2 else "processing",
                    "channel": "mp",
                    "category": "城乡建设",
                    "urgency": "normal",
                    "grid_code": grid,
                    "owner_code": grid,
                    "description": "路灯不亮",
                    "missing": [],
                    "fields": {},
                    "escalation_level": 0,
                    "reopen_count": 0,
                    "created_at": now - timedelta(days=2),
                    "updated_at": now,
                    "step_started_at": now - timedelta(days=2),
                    "sign_due_at": now - timedelta(hours=1) if due else now + timedelta(hours=20),
                    "due_at": now - timedelta(minutes=5) if due and index % 4 == 0 else now + timedelta(days=3),
                }
            )
            if len(rows) == 5000:
                db.session.execute(db.insert(Ticket), rows)
                rows.clear()
        if rows:
            db.session.execute(db.insert(Ticket), rows)
        db.session.commit()
        print(
            f"cores: {os.cpu_count()}  database: {db.engine.dialect.name}  open tickets: {args.tickets}  "
            f"created in {time.perf_counter() - started:.1f} s"
        )
        started = time.perf_counter()
        counts, outbox = run_sweep(now)
        first = time.perf_counter() - started
        started = time.perf_counter()
        again, _ = run_sweep(now)
        second = time.perf_counter() - started
        print(
            f"sweep: {first:.2f} s, acted on {dict(counts)}; same moment again: {second:.2f} s, acted on {dict(again)}"
        )


if __name__ == "__main__":
    main()
