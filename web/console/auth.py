"""Sign in and out of the console."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, redirect, render_template, request, session, url_for

from accounts import throttle
from accounts.login import attempt_login, record_logout, session_fingerprint, sign_in
from models import db, utcnow
from ops import ratelimit
from web.console import bp, csrf, login_required


def _safe_next(target: str | None) -> str:
    """Only paths inside the console (no open redirect to another site, no header injection)."""
    if (
        target
        and len(target) <= 500
        and target.startswith("/console/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
        and not any(ch.isspace() for ch in target)
    ):
        return target
    return url_for("console.queue")


def cookie_cannot_work() -> bool:
    """The session cookie will be Secure but this request came over plain http: the browser drops it."""
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) and not request.is_secure


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.user is not None and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    error = None
    status = 200
    username = (request.form.get("username") or "").strip()[:64]
    if request.method == "POST":
        if not current_app.config.get("SECRET_KEY"):
            error, status = "服务器未设置 SECRET_KEY，无法登录", 503
        elif ratelimit.login_limited(
            username, trusted := throttle.trusted_device(request.cookies.get(throttle.DEVICE_COOKIE), username)
        ):
            # Per IP and per name, before any password hashing: a guessing script gets 429, not scrypt time.
            error, status = ratelimit.LOGIN_TOO_MANY, 429
        else:
            now = utcnow()
            source = ratelimit.client_ip()
            result = attempt_login(username, request.form.get("password") or "", now, source, trusted)
            if result.user is not None:
                lifetime = timedelta(seconds=int(current_app.config["PERMANENT_SESSION_LIFETIME"]))
                sid = sign_in(result.user, now, lifetime, source)
                db.session.commit()
                session.clear()
                session.permanent = True
                session["sid"] = sid
                session["fp"] = session_fingerprint(result.user)
                csrf.rotate_token()
                response = redirect(_safe_next(request.form.get("next")))
                response.set_cookie(
                    throttle.DEVICE_COOKIE,
                    throttle.device_cookie_value(username),
                    max_age=throttle.DEVICE_MAX_AGE,
                    path="/console/",
                    secure=current_app.session_interface.get_cookie_secure(current_app),
                    httponly=True,
                    samesite="Lax",
                )
                return response
            db.session.commit()  # the failure's audit row
            error, status = result.error, 429 if result.wait else 401
    return (
        render_template(
            "console/login.html",
            error=error,
            username=username,
            next=_safe_next(request.values.get("next")) if request.values.get("next") else "",
            cookie_cannot_work=cookie_cannot_work(),
        ),
        status,
    )


@bp.post("/logout")
@login_required
def logout():
    record_logout(g.user, session.get("sid"), utcnow(), ratelimit.client_ip())
    db.session.commit()
    session.clear()
    return redirect(url_for("console.login"))
