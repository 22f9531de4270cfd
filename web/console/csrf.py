"""CSRF protection for the console's forms and fetch() calls: one random token per session, sent back
in a hidden `csrf_token` field (or the X-CSRF-Token header) and compared in constant time. A request
whose Origin names another site is refused as well."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlparse

from flask import abort, request, session

SESSION_KEY = "_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    """The session's token (made on first use); templates call it for every form."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def rotate_token() -> str:
    """A fresh token, e.g. after signing in (the anonymous session's token must not carry over)."""
    session.pop(SESSION_KEY, None)
    return csrf_token()


def protect() -> None:
    """Abort with 400 unless an unsafe request carries the session's token (and no foreign Origin)."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.host:
        abort(403, description="跨站请求已被拒绝")
    expected = session.get(SESSION_KEY)
    given = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(400, description="页面已过期或缺少安全令牌（CSRF），请刷新页面后重试")
