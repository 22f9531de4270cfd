"""Placing a location a resident shares: inside the county or not, then which grid (workflow/rules/geo.py).

Reads the region's nodes and the COUNTY_* / NEAREST_GRID_MAX_KM settings; the geometry itself is pure.
"""

from __future__ import annotations

from flask import current_app

from models import RegionNode, db
from workflow.rules.geo import CountyArea, Placement, place_point, valid_point
from workflow.tickets import grid_nodes

__all__ = ["Placement", "county_area", "locate", "valid_point"]


def county_area() -> CountyArea:
    config = current_app.config
    nodes = db.session.execute(db.select(RegionNode.tier, RegionNode.boundary, RegionNode.lat, RegionNode.lng)).all()
    return CountyArea.from_nodes(
        ({"tier": tier, "boundary": boundary, "lat": lat, "lng": lng} for tier, boundary, lat, lng in nodes),
        margin_km=float(config.get("NEAREST_GRID_MAX_KM") or 3.0),
        bbox=config.get("COUNTY_BBOX") or None,
        center=config.get("COUNTY_CENTER") or None,
        radius_km=float(config.get("COUNTY_RADIUS_KM") or 0) or None,
    )


def locate(lat: float, lng: float) -> Placement:
    """Containment first, the nearest grid only within NEAREST_GRID_MAX_KM, nothing outside the county."""
    max_km = float(current_app.config.get("NEAREST_GRID_MAX_KM") or 3.0)
    return place_point(grid_nodes(), county_area(), lat, lng, max_km)
