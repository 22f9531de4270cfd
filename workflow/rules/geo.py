"""Point-in-boundary and nearest-grid lookups for location messages (GeoJSON order: lng, lat)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def _in_ring(lng: float, lat: float, ring: list) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=False):
        if (y1 > lat) != (y2 > lat):
            cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lng < cross:
                inside = not inside
    return inside


def contains(boundary: dict | None, lat: float, lng: float) -> bool:
    """True when the point lies in a GeoJSON Polygon/MultiPolygon (holes respected)."""
    if not boundary:
        return False
    kind = boundary.get("type")
    polygons = [boundary.get("coordinates") or []] if kind == "Polygon" else boundary.get("coordinates") or []
    if kind not in ("Polygon", "MultiPolygon"):
        return False
    for rings in polygons:
        if rings and _in_ring(lng, lat, [tuple(p[:2]) for p in rings[0]]):
            if not any(_in_ring(lng, lat, [tuple(p[:2]) for p in hole]) for hole in rings[1:]):
                return True
    return False


def centroid(boundary: dict | None) -> tuple[float, float] | None:
    """A rough centre (lat, lng) of a boundary's outer ring, for nodes without explicit coordinates."""
    if not boundary or boundary.get("type") != "Polygon" or not boundary.get("coordinates"):
        return None
    ring = boundary["coordinates"][0]
    if not ring:
        return None
    return sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring)


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    rlat1, rlat2 = math.radians(lat1), math.radians(lat2)
    dlat, dlng = rlat2 - rlat1, math.radians(lng2 - lng1)
    a = math.sin(dlat / 2) ** 2 + math.cos(rlat1) * math.cos(rlat2) * math.sin(dlng / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def locate_grid(grids: Iterable[dict], lat: float, lng: float) -> str | None:
    """The grid whose boundary contains the point; else the nearest grid that has coordinates.

    Each grid is {"code", "boundary", "lat", "lng"}.
    """
    grids = list(grids)
    for grid in grids:
        if contains(grid.get("boundary"), lat, lng):
            return grid["code"]
    best, best_km = None, math.inf
    for grid in grids:
        point = (grid["lat"], grid["lng"]) if grid.get("lat") is not None else centroid(grid.get("boundary"))
        if point and point[1] is not None:
            km = distance_km(lat, lng, point[0], point[1])
            if km < best_km:
                best, best_km = grid["code"], km
    return best
