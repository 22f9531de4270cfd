"""Accounts that can be taken away: server-side sessions (a copied cookie dies with logout, a password reset
or deactivation), tokens that expire and can be revoked, the admin page, throttling without lock-out, and
the session cookie's Secure flag where it can work."""

from __future__ import annotations

from datetime import timedelta

from models import ApiToken, AuditEvent, StaffSession, User, db, utcnow
from tests.support.broadcasts import auth
from tests.web.console.helpers import PASSWORD, csrf_from, login, make_user, signed_in


def _copy_cookie(app, source) -> object:
    """A second browser holding a copy of `source`'s session cookie (a stolen cookie)."""
    thief = app.test_client()
    cookie = source.get_cookie("civic_console", path="/")
    thief.set_cookie("civic_console", cookie.value, path="/")
    return thief


def test_logout_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(region):
    client, token = signed_in(region, "liuhm", "staff", "990101")
    thief = _copy_cookie(region, client)
    assert thief.get("/console/").status_code == 200
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/console/").status_code == 302  # the copy is dead too
    with region.app_context():
        [row] = db.session.execute(db.select(StaffSession)).scalars().all()
        assert row.ended_reason == "logout" and row.ended_at is not None


def test_deactivate_user_ends_sessions_and_revokes_tokens_at_once(region):
    client, _ = signed_in(region, "wangjg", "staff", "990101001")
    runner = region.test_cli_runner()
    token = runner.invoke(args=["create-token", "wangjg"]).output.strip().splitlines()[-1]
    api = region.test_client()
    assert api.get("/api/tickets", headers=auth(token)).status_code == 200
    result = runner.invoke(args=["deactivate-user", "wangjg"])
    assert result.exit_code == 0 and "1 session(s) ended, 1 token(s) revoked" in result.output
    assert client.get("/console/").status_code == 302
    assert api.get("/api/tickets", headers=auth(token)).status_code == 401
    # and the password no longer signs in, with the same message as any wrong password
    response = login(region.test_client(), "wangjg")
    assert response.status_code == 401 and "用户名或密码错误" in response.get_data(as_text=True)


def test_revoke_token_and_expiring_tokens(region):
    make_user(region, "api-bot", "staff", "990101")
    runner = region.test_cli_runner()
    first = runner.invoke(args=["create-token", "api-bot"]).output.strip().splitlines()[-1]
    result = runner.invoke(args=["create-token", "api-bot", "--expires-days", "30"])
    assert "expires in 30 days" in result.output
    second = result.output.strip().splitlines()[-1]
    client = region.test_client()
    assert client.get("/api/tickets", headers=auth(second)).status_code == 200
    with region.app_context():
        row = db.session.execute(db.select(ApiToken).order_by(ApiToken.id.desc())).scalars().first()
        assert row.expires_at - utcnow() > timedelta(days=29)
        row.expires_at = utcnow() - timedelta(seconds=1)  # thirty days later
        db.session.commit()
    assert client.get("/api/tickets", headers=auth(second)).status_code == 401
    assert client.get("/api/tickets", headers=auth(first)).status_code == 200
    assert "revoked 2 token(s)" in runner.invoke(args=["revoke-token", "api-bot"]).output  # the expired one too
    assert client.get("/api/tickets", headers=auth(first)).status_code == 401
    assert client.get(f"/open311/v2/requests.json?api_key={first}").status_code == 403
    assert runner.invoke(args=["create-token", "api-bot", "--expires-days", "0"]).exit_code != 0


def test_the_admin_page_lists_and_takes_access_away(region):
    admin, csrf = signed_in(region, "chenlx", "admin", "990100")
    victim, _ = signed_in(region, "zhaozg", "officer", "990101001002")
    runner = region.test_cli_runner()
    token = runner.invoke(args=["create-token", "zhaozg"]).output.strip().splitlines()[-1]
    region.test_client().get("/api/tickets", headers=auth(token))  # last used: now
    page = admin.get("/console/admin/users").get_data(as_text=True)
    assert 'data-user="zhaozg"' in page and "东大社区第二网格" in page and "最近使用" in page and "从未" not in page
    with region.app_context():
        user = db.session.execute(db.select(User).filter_by(username="zhaozg")).scalar_one()
        user_id, token_id = user.id, user.tokens[0].id
    # reset: a new password shown once, the old sessions end
    response = admin.post(f"/console/admin/users/{user_id}/password", data={"csrf_token": csrf})
    assert response.status_code == 303
    shown = admin.get("/console/admin/users").get_data(as_text=True)
    assert "新密码（只显示这一次）" in shown
    assert victim.get("/console/").status_code == 302
    # revoke the token, then deactivate
    assert (
        admin.post(f"/console/admin/users/{user_id}/tokens/{token_id}/revoke", data={"csrf_token": csrf}).status_code
        == 303
    )
    assert region.test_client().get("/api/tickets", headers=auth(token)).status_code == 401
    assert admin.post(f"/console/admin/users/{user_id}/deactivate", data={"csrf_token": csrf}).status_code == 303
    assert "已停用" in admin.get("/console/admin/users").get_data(as_text=True)
    with region.app_context():
        actions = db.session.execute(db.select(AuditEvent.action).filter_by(actor="staff:chenlx")).scalars().all()
    assert {"user.password_reset", "token.revoked", "user.deactivated"} <= set(actions)


def test_only_admins_of_the_area_manage_accounts(region):
    staff, staff_csrf = signed_in(region, "liuhm", "staff", "990101")
    assert staff.get("/console/admin/users").status_code == 403
    town_admin, csrf = signed_in(region, "hexiadmin", "admin", "990102")
    make_user(region, "chenlx", "admin", "990100")
    with region.app_context():
        county_admin = db.session.execute(db.select(User).filter_by(username="chenlx")).scalar_one().id
        liuhm = db.session.execute(db.select(User).filter_by(username="liuhm")).scalar_one().id
    assert 'data-user="chenlx"' not in town_admin.get("/console/admin/users").get_data(as_text=True)
    for user_id in (county_admin, liuhm):  # above it, or in another town: as if they did not exist
        response = town_admin.post(f"/console/admin/users/{user_id}/deactivate", data={"csrf_token": csrf})
        assert response.status_code == 404
    assert staff.post(f"/console/admin/users/{liuhm}/password", data={"csrf_token": staff_csrf}).status_code == 403
    with region.app_context():
        assert all(u.active for u in db.session.execute(db.select(User)).scalars())


def test_a_stranger_hammering_a_name_cannot_keep_its_owner_out(region, monkeypatch):
    from accounts import throttle
    from ops import ratelimit

    clock = [2_000_000.0]
    monkeypatch.setattr(throttle, "clock", lambda: clock[0])
    monkeypatch.setattr(ratelimit, "clock", lambda: clock[0])
    make_user(region, "liuhm", "staff", "990101")
    owner = region.test_client()
    assert login(owner, "liuhm").status_code == 302  # her own browser: it now carries the device cookie
    owner.post("/console/logout", data={"csrf_token": csrf_from(owner.get("/console/").get_data(as_text=True))})
    stranger = region.test_client()
    statuses = [login(stranger, "liuhm", "guess").status_code for _ in range(9)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # slowed down, not locked
    assert login(owner, "liuhm").status_code == 302  # her browser is not held by the name's wait
    # a new browser waits at most LOGIN_MAX_DELAY, then gets in
    clock[0] += region.config["LOGIN_MAX_DELAY"] + 1
    assert login(region.test_client(), "liuhm").status_code == 302


def test_every_failed_login_reads_the_same(region):
    make_user(region, "sunlj", "officer", "990101001003")
    with region.app_context():
        db.session.add(User(username="gone", role="staff", region_code="990101", password_hash=None, active=False))
        db.session.commit()
    answers = {
        login(region.test_client(), name, password).get_data(as_text=True).split('id="login-error">')[1][:30]
        for name, password in (("sunlj", "wrong"), ("nobody", PASSWORD), ("gone", PASSWORD))
    }
    assert len(answers) == 1 and "用户名或密码错误" in answers.pop()


def test_the_cookie_is_secure_in_production_and_the_login_page_says_why_http_cannot_work(region, monkeypatch):
    monkeypatch.setitem(region.config, "SESSION_COOKIE_SECURE", True)
    page = region.test_client().get("/console/login", base_url="http://192.0.2.10:8000")
    assert 'id="https-needed"' in page.get_data(as_text=True)
    page = region.test_client().get("/console/login", base_url="https://grid.example")
    assert 'id="https-needed"' not in page.get_data(as_text=True)


def test_behind_a_trusted_proxy_https_comes_from_x_forwarded_proto(database_url, redis_url, fake_api):
    from app import create_app
    from tests.conftest import settings_for_tests

    proxied = create_app(
        "test", overrides=settings_for_tests(database_url, redis_url, fake_api.base_url, TRUSTED_PROXIES=1)
    )
    response = proxied.test_client().get("/console/login", headers={"X-Forwarded-Proto": "https"})
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("civic_console="))
    assert "Secure" in cookie
    response = proxied.test_client().get("/console/login")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("civic_console="))
    assert "Secure" not in cookie


def test_next_with_crlf_or_spaces_falls_back_to_the_queue(region, client):
    make_user(region, "sunlj", "officer", "990101001003")
    token = csrf_from(client.get("/console/login?next=/console/%0d%0aSet-Cookie:x=1").get_data(as_text=True))
    for target in ("/console/\r\nSet-Cookie: x=1", "/console/ x", "/console/\x00"):
        response = client.post(
            "/console/login", data={"username": "sunlj", "password": PASSWORD, "csrf_token": token, "next": target}
        )
        assert response.status_code in (302, 429) and "\n" not in response.headers.get("Location", "")
        if response.status_code == 302:
            assert response.headers["Location"].endswith("/console/")
            client.post(
                "/console/logout", data={"csrf_token": csrf_from(client.get("/console/").get_data(as_text=True))}
            )
            token = csrf_from(client.get("/console/login").get_data(as_text=True))
