"""import-region: load a region file; load-demo-region: the demo county on an empty database."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from config import CONFIG_DIR
from models import RegionNode, db
from regions.importer import RegionFileError, import_region


def _mark_region_changed() -> None:
    """Tell long-running workers to rebuild their place index (see handlers.parsing)."""
    (Path(current_app.instance_path) / "region.version").write_text(str(time.time()))


def _import(path: Path) -> None:
    try:
        result = import_region(path.read_text(encoding="utf-8"), actor="cli")
    except RegionFileError as exc:
        click.echo(f"导入失败 / import failed: {path} — nothing was changed:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    _mark_region_changed()
    click.echo(f"imported {path}: {result.created} nodes created, {result.updated} updated, {result.members} members")
    if result.untouched:
        click.echo(
            f"note: {len(result.untouched)} nodes in the database are not in this file and were left as "
            f"they are: {', '.join(result.untouched[:10])}"
        )


@click.command("import-region")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_region_command(file: Path) -> None:
    """Load a region file (YAML); re-importing updates nodes in place by code."""
    _import(file)


@click.command("load-demo-region")
@with_appcontext
def load_demo_command() -> None:
    """Load the demo county, only if no region is imported yet."""
    if db.session.execute(db.select(RegionNode.id).limit(1)).first():
        click.echo("region already present; demo not loaded")
        return
    _import(CONFIG_DIR / "demo_region.yaml")
