"""The JSON staff API (`Authorization: Bearer <token>`), scoped to the caller's region subtree."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from accounts.tokens import authenticate

bp = Blueprint("api", __name__)


@bp.before_request
def require_token():
    user = authenticate(request.headers.get("Authorization", ""))
    if user is None:
        return jsonify(error="unauthorized", message="需要有效的 API 令牌（Authorization: Bearer <token>）"), 401
    g.user = user
    return None


@bp.errorhandler(404)
def not_found(_exc):
    return jsonify(error="not_found"), 404


from web.api import actions, broadcasts, stats, tickets  # noqa: E402,F401  (routes register on bp)
