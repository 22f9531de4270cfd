"""GET /api/stats?region=CODE&from=&to= — 响应率/解决率/满意率 per child node (the dashboard's numbers)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import g, jsonify, request

from models import node_by_code, utcnow
from reports.stats import region_stats
from web.api import bp


def _moment(name: str, default: datetime) -> datetime:
    value = request.args.get(name)
    if not value:
        return default
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00+08:00")
    return moment


@bp.get("/stats")
def stats():
    code = request.args.get("region") or g.user.region_code
    home, node = node_by_code(g.user.region_code), node_by_code(code)
    if node is None:
        return jsonify(error="not_found", message=f"no region node {code}"), 404
    if home is None or not node.path.startswith(home.path):
        return jsonify(error="forbidden", message="该区域不在您的管辖范围内"), 403
    now = utcnow()
    try:
        end = _moment("to", now)
        start = _moment("from", end - timedelta(days=30))
    except ValueError as exc:
        return jsonify(error="bad_request", message=str(exc)), 400
    if start >= end:
        return jsonify(error="bad_request", message="from must be before to"), 400
    return jsonify(region_stats(code, start, end, now))
