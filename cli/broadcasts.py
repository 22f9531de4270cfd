"""`flask sync-tags`, `flask sync-followers` and `flask recover-broadcasts`: the broadcast machinery's periodic
jobs, run by hand."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from broadcasts.followers import sync_followers
from broadcasts.sending import recover_broadcasts
from broadcasts.tags import sync_mp_tags


@click.command("sync-tags")
@with_appcontext
def sync_tags_command() -> None:
    """Mirror residents' region nodes into official-account user tags now."""
    click.echo(json.dumps(sync_mp_tags(), ensure_ascii=False))


@click.command("sync-followers")
@with_appcontext
def sync_followers_command() -> None:
    """Page through the official account's followers (user/get): every follower becomes a known resident."""
    counts = sync_followers()
    click.echo(json.dumps(counts, ensure_ascii=False))


@click.command("recover-broadcasts")
@with_appcontext
def recover_broadcasts_command() -> None:
    """Re-plan stalled broadcasts, give open batches without a job one, finish what is complete."""
    click.echo(json.dumps(recover_broadcasts(), ensure_ascii=False))
