"""GET /api/stats?region=CODE&from=&to= — 响应率/解决率/满意率 per child node (the dashboard's numbers)."""

from __future__ import annotations

from datetime import timedelta

from flask import g, jsonify, request

from models import node_by_code, utcnow
from reports.stats import region_stats
from web.api import bp
from web.inputs import InputError, moment
from workflow.policy import may_export

MAX_PERIOD = timedelta(days=3660)


@bp.get("/stats")
def stats():
    code = (request.args.get("region") or g.user.region_code)[:32]
    node = node_by_code(code)
    if node is None:
        return jsonify(error="not_found", message=f"no region node {code}"), 404
    if not may_export(g.actor, code):
        return jsonify(error="forbidden", message="该区域不在您的管辖范围内"), 403
    now = utcnow()
    try:
        end = moment(request.args, "to") or now
        start = moment(request.args, "from") or end - timedelta(days=30)
    except (InputError, OverflowError) as exc:
        return jsonify(error="bad_request", message=str(exc) or "from/to out of range"), 400
    if start >= end:
        return jsonify(error="bad_request", message="from must be before to"), 400
    if end - start > MAX_PERIOD:
        return jsonify(error="bad_request", message="the period is limited to ten years"), 400
    return jsonify(region_stats(code, start, end, now))
