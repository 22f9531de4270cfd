"""The staff web console (/console/): work queue, ticket page, 研判 dashboard, exports, broadcast composer.

Auth is declared here, where the blueprint is built: every endpoint but the login page and the static
files needs a signed-in staff user (a server-side session, accounts.sessions; the cookie is HttpOnly,
SameSite=Lax, and Secure over HTTPS and in production), every unsafe request needs the CSRF token, and
every response carries the security headers. What a user may see and do is workflow.policy's answer,
through `g.actor`.
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from accounts.login import session_user
from models import utcnow
from web.console import csrf
from workflow.policy import staff_actor
from workflow.queue import local

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static")

PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static", "console.map_library"})
ROLE_LABELS = {"admin": "管理员", "staff": "工作人员", "officer": "网格员", "department": "职能部门", "viewer": "只读"}
# No inline script or style anywhere: everything comes from /console/static/.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self)",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def login_required(view):
    """Views say so themselves too (the before_request hook below is the safety net)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


@bp.before_request
def load_user_and_check_csrf():
    g.user = session_user(session.get("sid"), utcnow(), session.get("fp")) if "sid" in session else None
    g.actor = staff_actor(g.user, "console") if g.user is not None else None
    if g.user is None and "sid" in session:
        session.clear()  # signed out elsewhere, deactivated, re-passworded or expired
    if request.endpoint in ("console.static", "console.map_library"):
        return None
    csrf.protect()
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.accept_mimetypes.best == "application/json" or request.is_json:
            return {"error": "unauthorized", "message": "请先登录"}, 401
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint not in ("console.static", "console.map_library"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_global()
def csrf_token() -> str:
    return csrf.csrf_token()


@bp.app_template_filter("localtime")
def localtime_filter(moment) -> str:
    return local(moment)


@bp.app_template_global()
def query_string(values: dict) -> str:
    return urlencode(values)


@bp.context_processor
def console_globals() -> dict:
    return {"current_user": g.get("user"), "role_labels": ROLE_LABELS}


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return {"error": exc.name.lower().replace(" ", "_"), "message": exc.description}, exc.code
    titles = {400: "请求无效", 403: "无权访问", 404: "未找到", 405: "不支持的操作"}
    message = exc.description if exc.code in (400, 403) else "页面不存在，或该工单不在您的管辖范围内"
    return render_template("console/error.html", title=titles.get(exc.code, "出错了"), message=message), exc.code


from web.console import (  # noqa: E402,F401  (routes register on bp)
    admin,
    auth,
    broadcasts,
    grid_map,  # the map page; after views, whose helpers it shares
    views,
)
