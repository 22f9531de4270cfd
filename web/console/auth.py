"""Sign in and out of the console."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, g, redirect, render_template, request, session, url_for

from accounts.login import attempt_login, record_logout, session_fingerprint
from models import db, utcnow
from ops import ratelimit
from web.console import bp, csrf, login_required

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _safe_next(target: str | None) -> str:
    """Only paths inside the console (no open redirect to another site)."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.user is not None and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    error = None
    username = ""
    if request.method == "POST":
        if not current_app.config.get("SECRET_KEY"):
            error = "服务器未设置 SECRET_KEY，无法登录"
        elif ratelimit.login_limited(request.form.get("username") or ""):
            # Per IP and per name, before any password hashing: a guessing script gets 429, not scrypt time.
            username = (request.form.get("username") or "").strip()
            error = ratelimit.LOGIN_TOO_MANY
        else:
            username = (request.form.get("username") or "").strip()
            result = attempt_login(username, request.form.get("password") or "", utcnow(), request.remote_addr or "")
            db.session.commit()  # failures and lock-outs are recorded even though the sign-in failed
            if result.user is not None:
                session.clear()
                session.permanent = True
                session["uid"] = result.user.id
                session["fp"] = session_fingerprint(result.user)
                csrf.rotate_token()
                return redirect(_safe_next(request.form.get("next")))
            error = result.error
    plain_http = not request.is_secure and urlsplit("//" + request.host).hostname not in LOCAL_HOSTS
    status = 200 if error is None else 429 if error == ratelimit.LOGIN_TOO_MANY else 401
    return (
        render_template(
            "console/login.html",
            error=error,
            username=username,
            next=request.values.get("next") or "",
            plain_http=plain_http and current_app.config.get("SESSION_COOKIE_SECURE"),
        ),
        status,
    )


@bp.post("/logout")
@login_required
def logout():
    record_logout(g.user, request.remote_addr or "")
    db.session.commit()
    session.clear()
    return redirect(url_for("console.login"))
