"""`flask sweep [--now ISO8601]`: the deadline checks as of a moment (the scheduler runs it every minute)."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext
from redis.exceptions import RedisError

from jobs.sweep import sweep_deadlines
from models import utcnow


@click.command("sweep")
@click.option("--now", "now_text", default=None, help="ISO 8601 moment with offset (default: now)")
@with_appcontext
def sweep_command(now_text: str | None) -> None:
    """Run reminders, escalations, overdue checks and rating expiry as of NOW."""
    now = utcnow()
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter("use ISO 8601, e.g. 2026-11-24T09:00:00+08:00", param_hint="--now") from None
        if now.tzinfo is None:
            raise click.BadParameter("needs a UTC offset, e.g. +08:00", param_hint="--now")
    try:
        counts = sweep_deadlines(now.isoformat())
    except RedisError as exc:
        raise click.ClickException(f"the sweep ran but its messages could not be queued: {exc}") from None
    summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "nothing due"
    click.echo(f"sweep as of {now.isoformat()}: {summary}")
