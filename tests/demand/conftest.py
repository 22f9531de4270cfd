"""Fixtures for the demand parser tests: the demo region and one shared parser (building it costs ~50 ms)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from demand import DemandParser, Gazetteer

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def region_tree() -> dict:
    return yaml.safe_load((PROJECT_DIR / "config" / "demo_region.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def gazetteer(region_tree: dict) -> Gazetteer:
    return Gazetteer.from_region_tree(region_tree)


@pytest.fixture(scope="session")
def parser(gazetteer: Gazetteer) -> DemandParser:
    return DemandParser(gazetteer=gazetteer)
