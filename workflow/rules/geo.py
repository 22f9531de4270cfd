"""Point-in-boundary and nearest-grid lookups for location messages (GeoJSON order: lng, lat)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


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


def locate_grid(grids: Iterable[dict], lat: float, lng: float, max_km: float | None = None) -> str | None:
    """The grid whose boundary contains the point; else the nearest grid that has coordinates, if it is
    within `max_km` (any distance when None).

    Each grid is {"code", "boundary", "lat", "lng"}.
    """
    grids = list(grids)
    for grid in grids:
        if contains(grid.get("boundary"), lat, lng):
            return grid["code"]
    best, best_km = None, math.inf
    for grid in grids:
        point = _point_of(grid)
        if point:
            km = distance_km(lat, lng, point[0], point[1])
            if km < best_km:
                best, best_km = grid["code"], km
    if max_km is not None and best_km > max_km:
        return None
    return best


def _point_of(node: dict) -> tuple[float, float] | None:
    point = (node["lat"], node["lng"]) if node.get("lat") is not None else centroid(node.get("boundary"))
    return point if point and point[1] is not None else None


def valid_point(lat: object, lng: object) -> tuple[float, float] | None:
    """(lat, lng) as floats when they are a real place; None for junk, and for 0,0, which WeChat clients
    send when the phone has no fix."""
    try:
        lat_f, lng_f = float(lat), float(lng)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat_f) and math.isfinite(lng_f)) or not (-90 <= lat_f <= 90 and -180 <= lng_f <= 180):
        return None
    if abs(lat_f) < 1e-6 and abs(lng_f) < 1e-6:
        return None
    return lat_f, lng_f


@dataclass(frozen=True)
class CountyArea:
    """Where the service's county is, to tell a resident's location from one 800 km away.

    In order of preference: a configured bounding box, a configured circle, the union of the region
    file's boundaries when they cover the county (the county node has one, or every grid has one);
    otherwise the union of the boundaries there are, widened by `margin_km` around every node's point.
    An empty area (no region, nothing configured) contains nothing.
    """

    boundaries: tuple[dict, ...] = ()
    points: tuple[tuple[float, float], ...] = ()
    complete: bool = False
    margin_km: float = 3.0
    bbox: tuple[float, float, float, float] | None = None  # min_lng, min_lat, max_lng, max_lat
    center: tuple[float, float] | None = None  # lat, lng
    radius_km: float | None = None

    def contains(self, lat: float, lng: float) -> bool:
        if self.bbox is not None:
            min_lng, min_lat, max_lng, max_lat = self.bbox
            return min_lng <= lng <= max_lng and min_lat <= lat <= max_lat
        if self.center is not None and self.radius_km:
            return distance_km(lat, lng, *self.center) <= self.radius_km
        if any(contains(boundary, lat, lng) for boundary in self.boundaries):
            return True
        if self.complete:
            return False
        return any(distance_km(lat, lng, p_lat, p_lng) <= self.margin_km for p_lat, p_lng in self.points)

    @classmethod
    def from_nodes(cls, nodes: Iterable[dict], **settings) -> CountyArea:
        """From region nodes {"tier", "boundary", "lat", "lng"}; settings are the dataclass's other fields."""
        nodes = list(nodes)
        boundaries = tuple(n["boundary"] for n in nodes if n.get("boundary"))
        grids = [n for n in nodes if n.get("tier") == "grid"]
        complete = any(n.get("tier") == "county" and n.get("boundary") for n in nodes) or bool(
            grids and all(n.get("boundary") for n in grids)
        )
        points = tuple(p for p in (_point_of(n) for n in nodes) if p)
        return cls(boundaries=boundaries, points=points, complete=complete, **settings)


@dataclass(frozen=True)
class Placement:
    """Where a location puts a resident or a ticket.

    reason: contained (in a grid's boundary) | nearest (a grid's point within reach) | unplaced (in the
    county, no grid near enough: ask where) | outside (not in the county: not used for routing)."""

    grid_code: str | None
    reason: str

    @property
    def inside(self) -> bool:
        return self.reason != "outside"


def place_point(grids: Iterable[dict], area: CountyArea, lat: float, lng: float, max_km: float) -> Placement:
    """Containment first; the nearest grid only within `max_km`; nothing outside the county."""
    if not area.contains(lat, lng):
        return Placement(None, "outside")
    grids = list(grids)
    for grid in grids:
        if contains(grid.get("boundary"), lat, lng):
            return Placement(grid["code"], "contained")
    code = locate_grid(grids, lat, lng, max_km=max_km)
    return Placement(code, "nearest" if code else "unplaced")
