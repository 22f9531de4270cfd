"""import-region: make the database's subtree match a region file; import-members: load a roster
spreadsheet; load-demo-region: the demo county on an empty database."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from config import CONFIG_DIR
from delivery.outbox import enqueue_delivery
from models import RegionNode, db
from ops.map_version import bump_map_version
from regions.importer import RegionFileError, import_region
from regions.members import RosterError, import_members


def _mark_region_changed() -> None:
    """Every web and worker process rebuilds its place index on its next batch (see handlers.parsing)."""
    bump_map_version(current_app.extensions["redis"])


def _import(path: Path, *, dry_run: bool = False) -> None:
    try:
        diff = import_region(path.read_text(encoding="utf-8"), actor="cli", dry_run=dry_run)
    except RegionFileError as exc:
        click.echo(f"导入失败 / import failed: {path} — nothing was changed:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    if not dry_run:
        _mark_region_changed()
        for outbox_id in diff.outbox_ids:  # the new owners' groups hear of the tickets they received
            enqueue_delivery(outbox_id)
    click.echo(f"{path}:")
    for line in diff.summary_lines():
        click.echo(line)


@click.command("import-region")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="print the whole diff and change nothing")
@with_appcontext
def import_region_command(file: Path, dry_run: bool) -> None:
    """Load a region file (YAML): the file is the truth for its subtree (nodes it no longer lists are retired)."""
    _import(file, dry_run=dry_run)


@click.command("import-members")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="check every row and print what would change; change nothing")
@with_appcontext
def import_members_command(file: Path, dry_run: bool) -> None:
    """Load a members roster (网格员花名册, .xlsx or .csv): 姓名, 角色, 网格 (code or name), 企业微信账号, 手机."""
    try:
        result = import_members(file, actor="cli", dry_run=dry_run)
    except RosterError as exc:
        click.echo(f"导入失败，未做任何修改：{file}", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    for line in result.summary_lines():
        click.echo(line)


@click.command("load-demo-region")
@with_appcontext
def load_demo_command() -> None:
    """Load the demo county, only if no region is imported yet."""
    if db.session.execute(db.select(RegionNode.id).limit(1)).first():
        click.echo("region already present; demo not loaded")
        return
    _import(CONFIG_DIR / "demo_region.yaml")
