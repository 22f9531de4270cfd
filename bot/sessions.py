"""The cookie session: skipped for platform pushes, and `Secure` only where it can work.

Platform pushes carry no cookies, so the webhooks skip Flask's session (opening one builds its signing
serializer on every request, a few percent of a push's CPU during a burst).

The console's cookie is `Secure` when the request came over HTTPS — directly, or through TRUSTED_PROXIES'
X-Forwarded-Proto — and always when SESSION_COOKIE_SECURE is set (APP_ENV=production). A trial on plain
http (`make run` on a server, opened as http://SERVER-IP:8000/console/) therefore works; in production
over http the login page says why it cannot.
"""

from __future__ import annotations

from flask import has_request_context, request
from flask.sessions import SecureCookieSessionInterface

WEBHOOK_PREFIX = "/wechat/"


class SessionlessWebhooks(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if request.path.startswith(WEBHOOK_PREFIX):
            return self.make_null_session(app)  # never saved: Flask skips saving a null session
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure
