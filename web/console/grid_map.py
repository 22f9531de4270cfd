"""The console map (/console/map): grids coloured by their tickets, ticket points, a grid's team and
figures on click; the queue's filters; a clean list view without tiles or boundaries.

The map library (Leaflet) is served from MAP_LIBRARY_DIR, which `make setup` fills from PyPI: nothing is
loaded from a CDN, and without the library the page says so and shows its grid list.
"""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, g, render_template, request, send_from_directory, url_for

from models import utcnow
from web.console import bp, login_required
from web.console.views import _status_choices, taxonomy
from workflow.grid_map import grid_map, map_area
from workflow.queue import URGENCY_LABELS, QueueFilters
from workflow.scope import in_scope, region_choices

LIBRARY_FILES = ("leaflet.js", "leaflet.css")


def library_ready() -> bool:
    folder = Path(current_app.config["MAP_LIBRARY_DIR"])
    return all((folder / name).is_file() for name in LIBRARY_FILES)


@bp.get("/vendor/leaflet/<path:filename>")
def map_library(filename: str):
    """Leaflet's own files, from the folder `make setup` installed them in."""
    return send_from_directory(current_app.config["MAP_LIBRARY_DIR"], filename, max_age=86400)


def _tiles() -> dict:
    config = current_app.config
    return {
        "urls": (config.get("MAP_TILE_URL") or "").split(),
        "subdomains": config.get("MAP_TILE_SUBDOMAINS") or "",
        "attribution": config.get("MAP_TILE_ATTRIBUTION") or "",
    }


@bp.get("/map")
@login_required
def map_page():
    filters = QueueFilters.from_args(request.args)
    if filters.grid and not in_scope(g.user, filters.grid):
        filters.grid = ""
    area = map_area(g.user, (request.args.get("area") or "").strip())
    if area is None:
        abort(404)
    view = "list" if request.args.get("view") == "list" else "map"
    data = grid_map(g.user, filters, area, utcnow())
    shared = filters.as_args(page=1)
    shared.pop("page", None)
    grids = []
    for grid in data.grids:
        item = grid.as_json()
        item["queue_url"] = url_for("console.queue", **(shared | {"grid": grid.code}))
        grids.append(item)
    for point in data.points:
        point["url"] = url_for("console.ticket", ticket_id=point["id"])
    ready = library_ready()
    areas = [n for n in region_choices(g.user) if n.tier != "grid"] or [area]  # an officer of one grid
    return render_template(
        "console/map.html",
        data=data,
        grids=grids,
        area=area,
        areas=areas,
        view=view,
        library=ready,
        filters=filters,
        shared=shared,
        statuses=_status_choices(),
        categories=taxonomy().names,
        urgencies=URGENCY_LABELS,
        grid_choices=region_choices(g.user, ("grid",)),
        map_json={
            "grids": grids if view == "map" else [],
            "points": data.points if view == "map" else [],
            "tiles": _tiles() if view == "map" else {"urls": []},
        },
    )
