"""The JSON staff API (`Authorization: Bearer <token>`), limited by workflow.policy like every channel."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from accounts.tokens import authenticate
from workflow.policy import ActionRefused, staff_actor

bp = Blueprint("api", __name__)
ERRORS = {400: "bad_request", 403: "forbidden", 404: "not_found", 409: "conflict"}


@bp.before_request
def require_token():
    if any("\x00" in value for value in request.args.values()):  # no database text column can hold it
        return jsonify(error="bad_request", message="参数中不能含有 NUL 字符"), 400
    user = authenticate(request.headers.get("Authorization", ""))
    if user is None:
        return jsonify(error="unauthorized", message="需要有效的 API 令牌（Authorization: Bearer <token>）"), 401
    g.user = user
    g.actor = staff_actor(user, "api")
    return None


def refusal(refused: ActionRefused):
    return jsonify(error=ERRORS.get(refused.status, "error"), message=refused.reason), refused.status


@bp.errorhandler(404)
def not_found(_exc):
    return jsonify(error="not_found", message="no such resource, or it is outside your area"), 404


@bp.errorhandler(405)
def not_allowed(_exc):
    return jsonify(error="method_not_allowed", message="this method is not allowed here"), 405


from web.api import actions, broadcasts, stats, tickets  # noqa: E402,F401  (routes register on bp)
