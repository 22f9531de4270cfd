"""One demand parser per process, rebuilt when the region or the trained model changes."""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path

from demand import DemandParser, Gazetteer, Taxonomy, load_taxonomy
from models import RegionNode, db, region_tree

_cache: dict = {"key": None, "parser": None, "checked": 0.0}
# How often a long-running worker looks for a re-imported region or a retrained model (seconds).
RECHECK_SECONDS = 30


def _model_dir(instance_path: str) -> Path:
    return Path(instance_path) / "models"


def _cache_key(instance_path: str) -> tuple:
    count, newest = db.session.execute(db.select(db.func.count(RegionNode.id), db.func.max(RegionNode.id))).one()
    model_dir = _model_dir(instance_path)
    model_mtime = os.path.getmtime(model_dir) if model_dir.exists() else 0
    # An in-place re-import changes no ids; an import writes a marker file beside the database to say so.
    marker = Path(instance_path) / "region.version"
    region_version = marker.read_text().strip() if marker.exists() else ""
    return count, newest, model_mtime, region_version


def get_parser(instance_path: str) -> DemandParser:
    now = time.monotonic()
    if _cache["parser"] is not None and now - _cache["checked"] < RECHECK_SECONDS:
        return _cache["parser"]
    key = _cache_key(instance_path)
    if key != _cache["key"] or _cache["parser"] is None:
        model_dir = _model_dir(instance_path)
        _cache["parser"] = DemandParser(
            gazetteer=Gazetteer.from_region_tree(region_tree()), model_dir=model_dir if model_dir.exists() else None
        )
        _cache["key"] = key
    _cache["checked"] = now
    return _cache["parser"]


def reset_parser_cache() -> None:
    _cache.update(key=None, parser=None, checked=0.0)


@cache
def taxonomy() -> Taxonomy:
    """The county's category tree (config/taxonomy.yaml), loaded once per process for the web layers."""
    return load_taxonomy()
