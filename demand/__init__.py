"""The demand parser: free text from residents and officers → a structured, routable demand.

Framework-free (no Flask, no database): the service hands it text and a region tree, and gets back
`Demand` objects. See DemandParser for the order of work and `get_parser` for the per-process cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from demand.contacts import Contact, find_contacts, mask_id_card, mask_name, mask_phone, mask_text
from demand.gazetteer import Gazetteer
from demand.normalize import clean_text, normalize
from demand.parser import MISSING_LOCATION, MISSING_MATTER, Demand, DemandParser, Location
from demand.taxonomy import Taxonomy, TaxonomyError, load_taxonomy
from demand.urgency import detect_urgency

__all__ = [
    "MISSING_LOCATION",
    "MISSING_MATTER",
    "Contact",
    "Demand",
    "DemandParser",
    "Gazetteer",
    "Location",
    "Taxonomy",
    "TaxonomyError",
    "clean_text",
    "detect_urgency",
    "find_contacts",
    "get_parser",
    "load_taxonomy",
    "mask_id_card",
    "mask_name",
    "mask_phone",
    "mask_text",
    "model_dir_for",
    "normalize",
    "reset_parsers",
]

_cache: dict[tuple[str, str], DemandParser] = {}
_lock = threading.Lock()


def model_dir_for(instance_path: str | os.PathLike) -> Path:
    """Where trained models live for an app instance (`<instance>/models`)."""
    return Path(instance_path) / "models"


def get_parser(instance_path: str | os.PathLike | None, region_tree: dict | None) -> DemandParser:
    """A DemandParser for this instance folder and region, built once per process and reused.

    The region tree is fingerprinted, so importing a changed region gives a fresh parser; a retrained
    model is picked up by the parser itself (it watches the model folder).
    """
    fingerprint = hashlib.sha1(
        json.dumps(region_tree, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    key = (str(instance_path or ""), fingerprint)
    with _lock:
        parser = _cache.get(key)
        if parser is None:
            model_dir = model_dir_for(instance_path) if instance_path else None
            parser = DemandParser(gazetteer=Gazetteer.from_region_tree(region_tree), model_dir=model_dir)
            # Keep one parser per instance: an old region's parser is garbage once the region changes.
            for old in [k for k in _cache if k[0] == key[0]]:
                del _cache[old]
            _cache[key] = parser
        return parser


def reset_parsers() -> None:
    """Forget every cached parser (tests; after replacing the taxonomy file)."""
    with _lock:
        _cache.clear()
