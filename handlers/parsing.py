"""One demand parser per process, rebuilt when the region or the trained model changes.

An import or a retraining bumps the map version in Redis (ops.map_version); each call here reads it once
(one GET per batch of messages) and rebuilds on a change, so the next message is routed by the new map.
When Redis cannot be read, a slower check of the tree in the database every RECHECK_SECONDS takes over.
"""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path

from flask import current_app

from demand import DemandParser, Gazetteer, Taxonomy, load_taxonomy
from models import RegionNode, db, region_tree
from ops.map_version import read_map_version

_cache: dict = {"key": None, "parser": None, "checked": 0.0, "version": None}
# The safety net's period: how often a process without Redis compares the tree and model on disk (seconds).
RECHECK_SECONDS = 30


def _model_dir(instance_path: str) -> Path:
    return Path(instance_path) / "models"


def _cache_key(instance_path: str) -> tuple:
    count, newest, retired = db.session.execute(
        db.select(db.func.count(RegionNode.id), db.func.max(RegionNode.id), db.func.count(RegionNode.retired_at))
    ).one()
    model_dir = _model_dir(instance_path)
    model_mtime = os.path.getmtime(model_dir) if model_dir.exists() else 0
    return count, newest, retired, model_mtime


def _map_version() -> str | None:
    redis = current_app.extensions.get("redis") if current_app else None
    return read_map_version(redis) if redis is not None else None


def get_parser(instance_path: str) -> DemandParser:
    version = _map_version()
    now = time.monotonic()
    if _cache["parser"] is not None:
        if version is not None and version == _cache["version"]:
            return _cache["parser"]
        if version is None and now - _cache["checked"] < RECHECK_SECONDS:
            return _cache["parser"]
    key = _cache_key(instance_path)
    changed = version is not None and version != _cache["version"]
    if changed or key != _cache["key"] or _cache["parser"] is None:
        model_dir = _model_dir(instance_path)
        _cache["parser"] = DemandParser(
            gazetteer=Gazetteer.from_region_tree(region_tree()), model_dir=model_dir if model_dir.exists() else None
        )
        _cache["key"] = key
    _cache["version"] = version
    _cache["checked"] = now
    return _cache["parser"]


def parser_version() -> str | None:
    """The map version the cached parser was built for (None: not built yet, or built without Redis)."""
    return _cache["version"]


def reset_parser_cache() -> None:
    _cache.update(key=None, parser=None, checked=0.0, version=None)


@cache
def taxonomy() -> Taxonomy:
    """The county's category tree (config/taxonomy.yaml), loaded once per process for the web layers."""
    return load_taxonomy()
