"""Platform pushes carry no cookies, so the webhooks skip Flask's session.

Opening a cookie session builds its signing serializer on every request (about 9 µs), a few percent of a
push's CPU during a burst; the console, the only user of sessions, keeps Flask's behaviour unchanged.
"""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

WEBHOOK_PREFIX = "/wechat/"


class SessionlessWebhooks(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if request.path.startswith(WEBHOOK_PREFIX):
            return self.make_null_session(app)  # never saved: Flask skips saving a null session
        return super().open_session(app, request)
