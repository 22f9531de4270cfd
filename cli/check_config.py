"""`flask check-config`: refuse production settings that must not serve (debug, a default secret, SQLite
behind several web processes), with every reason, exit status 1. Run it before starting (systemd
ExecStartPre); the app itself also refuses to start in production with these settings."""

from __future__ import annotations

import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from config import production_problems


@click.command("check-config")
@click.option("--production", is_flag=True, help="check as production even if APP_ENV is not production")
@with_appcontext
def check_config_command(production: bool) -> None:
    """Check the settings; exit 1 with the reasons when production must not start with them."""
    env = os.environ.get("APP_ENV", "development")
    config = current_app.config
    strict = production or env == "production"
    problems = production_problems(config) if strict else []
    notes = []
    if not config.get("WECHAT_TOKEN"):
        notes.append("WECHAT_TOKEN is empty: /wechat/mp refuses every push")
    elif not config.get("WECHAT_AES_KEY"):
        notes.append("WECHAT_AES_KEY is empty: plaintext mode; the push body is not signed (use safe mode)")
    if not config.get("TRUSTED_PROXIES"):
        notes.append("TRUSTED_PROXIES=0: behind nginx every caller looks like the proxy (rate limits per IP)")
    if not config.get("METRICS_TOKEN"):
        notes.append("METRICS_TOKEN is empty: keep /metrics off the public site (nginx allow/deny)")
    for note in notes:
        click.echo(f"note: {note}")
    if problems:
        report(problems)
        sys.exit(1)
    click.echo(f"configuration OK for {'production' if strict else env}")


def report(problems: list[str]) -> None:
    click.echo("refused: these settings must not serve production:", err=True)
    for problem in problems:
        click.echo(f"  - {problem}", err=True)


def report_if_checking(error: Exception) -> None:
    """Called by create_app when settings are refused: `flask check-config` prints reasons, not a traceback."""
    if "check-config" in sys.argv[1:]:
        click.echo(f"refused: {error}", err=True)
        sys.exit(1)
