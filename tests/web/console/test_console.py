"""The console end to end through Flask's test client: sign-in and lock-out, the queue, the ticket page,
actions with the workflow's refusals, corrections, the dashboard and the exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook

from models import AuditEvent, TicketStatus, User, db, utcnow
from tests.handlers.test_intake_flow import push
from tests.handlers.test_intake_flow import tickets as all_tickets
from tests.support.wechat_push import message_xml, text_xml
from tests.web.console.helpers import PASSWORD, csrf_from, load, login, make_user, new_ticket, signed_in

CST = timezone(timedelta(hours=8))


def now_minus(**delta) -> datetime:
    return utcnow() - timedelta(**delta)


def audit_actions(app, subject: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.execute(
                db.select(AuditEvent.action).filter_by(subject=subject).order_by(AuditEvent.id)
            ).scalars()
        )


# --- signing in ------------------------------------------------------------------------------------------


def test_pages_need_a_signed_in_user(region, client):
    response = client.get("/console/")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]
    assert client.get("/console/tickets/1").status_code == 302


def _session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("civic_console="))


def test_sign_in_sets_an_httponly_samesite_cookie_secure_over_https_and_is_audited(region, client):
    make_user(region, "liuhm", "staff", "990101")
    secure_client = region.test_client()
    token = csrf_from(secure_client.get("/console/login", base_url="https://localhost").get_data(as_text=True))
    response = secure_client.post(
        "/console/login",
        data={"username": "liuhm", "password": PASSWORD, "csrf_token": token},
        base_url="https://localhost",
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/")
    cookie = _session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert audit_actions(region, "user:liuhm") == ["login.succeeded"]
    # a trial on plain http (make run on a server, opened by its IP) works: the cookie is not Secure there
    response = login(client, "liuhm")
    cookie = _session_cookie(response)
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/console/")
    assert page.status_code == 200 and "工单队列" in page.get_data(as_text=True)


def test_wrong_passwords_slow_down_but_never_lock_the_account(region, client, monkeypatch):
    from accounts import throttle

    clock = [1_000_000.0]
    monkeypatch.setattr(throttle, "clock", lambda: clock[0])
    make_user(region, "zhaozg", "officer", "990101001002")
    for _ in range(5):  # LOGIN_FREE_FAILURES: no wait yet
        response = login(client, "zhaozg", "wrong")
        assert response.status_code == 401 and "用户名或密码错误" in response.get_data(as_text=True)
    response = login(client, "zhaozg")  # the next try waits 1 s, even with the right password
    assert response.status_code == 429 and "秒后再试" in response.get_data(as_text=True)
    clock[0] += 1.5
    assert login(client, "zhaozg").status_code == 302  # no lock-out: a second and a half later it works
    assert audit_actions(region, "user:zhaozg") == ["login.failed"] * 5 + ["login.throttled", "login.succeeded"]


def test_unknown_users_get_the_same_answer_and_are_audited(region, client):
    response = login(client, "nobody", "whatever")
    assert response.status_code == 401 and "用户名或密码错误" in response.get_data(as_text=True)
    assert audit_actions(region, "user:nobody") == ["login.failed"]


def test_a_password_change_ends_existing_sessions(region):
    client, _ = signed_in(region, "wangjg", "staff", "990101001")
    with region.app_context():
        user = db.session.execute(db.select(User).filter_by(username="wangjg")).scalar_one()
        user.password_hash = user.password_hash + "x"
        db.session.commit()
    assert client.get("/console/").status_code == 302


def test_logout_needs_the_csrf_token_and_ends_the_session(region):
    client, token = signed_in(region, "chenlx", "admin", "990100")
    assert client.post("/console/logout").status_code == 400
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_login_redirects_only_inside_the_console(region, client):
    make_user(region, "sunlj", "officer", "990101001003")
    token = csrf_from(client.get("/console/login").get_data(as_text=True))
    response = client.post(
        "/console/login",
        data={"username": "sunlj", "password": PASSWORD, "csrf_token": token, "next": "https://evil.example/"},
    )
    assert response.headers["Location"].endswith("/console/")


def test_console_responses_carry_security_headers(region, client):
    response = client.get("/console/login")
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["Cache-Control"] == "no-store"
    static = client.get("/console/static/console.js")
    assert static.status_code == 200 and static.headers["X-Content-Type-Options"] == "nosniff"
    html = response.get_data(as_text=True)
    assert "<script>" not in html and "style=" not in html


# --- the queue -------------------------------------------------------------------------------------------


@pytest.fixture
def tickets(region):
    """Three tickets in 城关镇, one in 河西街道, one in 柳林镇, at known moments."""
    now = utcnow()
    return {
        "light": new_ticket(region, "阳光花园3号楼门口路灯不亮好几天了", now - timedelta(hours=30), "oA"),
        "gas": new_ticket(region, "幸福里小区5号楼有很浓的煤气味，怕是漏气了", now - timedelta(minutes=10), "oB"),
        "wages": new_ticket(region, "东大小学旁工地老板拖欠农民工工资", now - timedelta(hours=2), "oC"),
        "hexi": new_ticket(region, "西环路农贸市场门口垃圾没人清理", now - timedelta(hours=3), "oD"),
        "liulin": new_ticket(region, "杨庄小学门口路面坑洼", now - timedelta(hours=4), "oE"),
    }


def queue_numbers(client, query: str = "") -> list[str]:
    html = client.get(f"/console/{query}").get_data(as_text=True)
    return [line.split('data-ticket="')[1].split('"')[0] for line in html.splitlines() if 'data-ticket="' in line]


def test_the_queue_shows_my_area_soonest_deadline_first(region, tickets):
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    numbers = {key: load(region, ticket_id).number for key, ticket_id in tickets.items()}
    shown = queue_numbers(town)
    assert set(shown) == {numbers["light"], numbers["gas"], numbers["wages"]}
    assert shown[0] == numbers["light"]  # its sign limit passed six hours ago
    html = town.get("/console/").get_data(as_text=True)
    assert "超时" in html and "共 3 件" in html
    county, _ = signed_in(region, "chenlx", "admin", "990100")
    assert len(queue_numbers(county)) == 5


def test_queue_filters_and_search(region, tickets):
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    numbers = {key: load(region, ticket_id).number for key, ticket_id in tickets.items()}
    assert queue_numbers(town, "?overdue=1") == [numbers["light"]]
    assert queue_numbers(town, "?urgency=urgent") == [numbers["gas"]]
    assert queue_numbers(town, "?category=劳动和社会保障") == [numbers["wages"]]
    assert queue_numbers(town, "?grid=990101001001") == [numbers["light"]]
    assert queue_numbers(town, "?q=煤气") == [numbers["gas"]]
    assert queue_numbers(town, f"?q={numbers['wages']}") == [numbers["wages"]]
    assert queue_numbers(town, "?status=resolved") == []
    today = utcnow().astimezone(CST).date()
    assert len(queue_numbers(town, f"?date_from={today - timedelta(days=2)}&date_to={today}")) == 3
    # a grid outside my area is ignored rather than obeyed
    assert len(queue_numbers(town, "?grid=990102001001")) == 3
    assert "已忽略" in town.get("/console/?date_from=yesterday").get_data(as_text=True)


def test_queue_pages(region):
    base = utcnow() - timedelta(hours=1)
    for index in range(7):
        new_ticket(region, f"阳光花园{index + 1}号楼路灯不亮", base + timedelta(minutes=index), f"oP{index}")
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    first, second = queue_numbers(town, "?per_page=5"), queue_numbers(town, "?per_page=5&page=2")
    assert len(first) == 5 and len(second) == 2 and not set(first) & set(second)
    assert "第 1 / 2 页" in town.get("/console/?per_page=5").get_data(as_text=True)


# --- the ticket page and actions -------------------------------------------------------------------------


def test_ticket_page_shows_demand_words_deadlines_and_timeline(region, tickets):
    grid, _ = signed_in(region, "zhangwy", "officer", "990101001001")
    html = grid.get(f"/console/tickets/{tickets['light']}").get_data(as_text=True)
    for expected in ("结构化诉求", "城乡建设", "东大社区第一网格", "签收时限", "已超时", "时间线", "受理", "派单"):
        assert expected in html, expected
    assert 'data-action="sign"' in html and 'data-action="resolve"' not in html


def test_original_words_and_images_from_the_official_account(region, client, fake_api, run_jobs):
    push(client, text_xml("oPic", "幸福里小区2号楼下水道堵了，污水漫到路上，电话13812345678", 91001))
    run_jobs()
    push(
        client,
        message_xml("oPic", "image", {"PicUrl": "https://mmbiz.qpic.cn/demo/pic1.jpg", "MediaId": "m1"}, msg_id=91002),
    )
    run_jobs()
    [ticket] = all_tickets(region)
    staff, _ = signed_in(region, "zhouht", "staff", "990101002")
    html = staff.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "居民原话" in html and "13812345678" in html  # staff call residents back
    assert '<img src="https://mmbiz.qpic.cn/demo/pic1.jpg"' in html
    dept, _ = signed_in(region, "dept", "department", "990101")
    html = dept.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "13812345678" not in html and "138****5678" in html


def test_sign_then_resolve_with_a_note_grows_the_timeline(region, tickets):
    grid, token = signed_in(region, "zhangwy", "officer", "990101001001")
    url = f"/console/tickets/{tickets['light']}/actions"
    response = grid.post(url, data={"csrf_token": token, "action": "sign"})
    assert response.status_code == 303
    response = grid.post(url, data={"csrf_token": token, "action": "resolve", "note": "已更换灯泡"})
    assert response.status_code == 303
    ticket = load(region, tickets["light"])
    assert ticket.status == TicketStatus.RESOLVED
    assert [e.kind for e in ticket.events][-2:] == ["sign", "resolve"]
    assert ticket.events[-1].actor == "staff:zhangwy" and ticket.events[-1].note == "已更换灯泡"
    html = grid.get(f"/console/tickets/{tickets['light']}").get_data(as_text=True)
    assert "已办结" in html and "已更换灯泡" in html and "已办结" in html


def test_actions_are_refused_like_the_api(region, tickets):
    grid, token = signed_in(region, "zhangwy", "officer", "990101001001")
    url = f"/console/tickets/{tickets['light']}/actions"
    response = grid.post(url, data={"csrf_token": token, "action": "resolve", "note": "好了"})
    assert response.status_code == 409 and "不能执行" in response.get_data(as_text=True)
    grid.post(url, data={"csrf_token": token, "action": "sign"})
    response = grid.post(url, data={"csrf_token": token, "action": "resolve"})
    assert response.status_code == 400 and "note" in response.get_data(as_text=True)
    assert grid.post(url, data={"csrf_token": token, "action": "fly"}).status_code == 400
    viewer, viewer_token = signed_in(region, "viewer", "viewer", "990100")
    assert viewer.post(url, data={"csrf_token": viewer_token, "action": "start"}).status_code == 403
    assert "data-action=" not in viewer.get(f"/console/tickets/{tickets['light']}").get_data(as_text=True)
    assert [e.kind for e in load(region, tickets["light"]).events] == ["created", "assigned", "sign"]


def test_assign_and_summon_from_the_page(region, tickets):
    town, token = signed_in(region, "liuhm", "staff", "990101")
    url = f"/console/tickets/{tickets['wages']}/actions"
    response = town.post(url, data={"csrf_token": token, "action": "assign", "node": "990101001002", "note": "转网格"})
    assert response.status_code == 303
    assert load(region, tickets["wages"]).owner_code == "990101001002"
    response = town.post(url, data={"csrf_token": token, "action": "assign", "node": "990102"})
    assert response.status_code == 403
    response = town.post(url, data={"csrf_token": token, "action": "summon", "node": "990101002", "role": "co"})
    assert response.status_code == 303
    assert [h.node_code for h in load(region, tickets["wages"]).handlers] == ["990101002"]


def test_corrections_are_events_and_feed_the_training_export(region, tickets):
    town, token = signed_in(region, "liuhm", "staff", "990101")
    url = f"/console/tickets/{tickets['light']}/correct"
    form = {
        "csrf_token": token,
        "category": "环境保护",
        "subcategory": "",
        "urgency": "urgent",
        "grid": "990101001002",
        "note": "其实是光污染",
    }
    assert town.post(url, data=form).status_code == 303
    ticket = load(region, tickets["light"])
    assert (ticket.category, ticket.urgency, ticket.grid_code) == ("环境保护", "urgent", "990101001002")
    event = ticket.events[-1]
    assert event.kind == "corrected" and event.actor == "staff:liuhm"
    assert event.data["changes"]["category"] == {"from": "城乡建设", "to": "环境保护"}
    assert event.data["changes"]["grid"] == {"from": "990101001001", "to": "990101001002"}
    assert "人工更正" in town.get(f"/console/tickets/{tickets['light']}").get_data(as_text=True)
    assert town.post(url, data={**form, "category": "外星事务"}).status_code == 400
    assert town.post(url, data={**form, "subcategory": "市政设施"}).status_code == 400  # not under 环境保护
    assert town.post(url, data={**form, "grid": "990102001001"}).status_code == 403
    assert town.post(url, data=form).status_code == 400  # nothing left to change

    export = town.get("/console/export/corrections.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows == [["text", "label"], ["阳光花园3号楼门口路灯不亮好几天了", "环境保护"]]
    other_town, _ = signed_in(region, "hexi", "staff", "990102")
    assert list(csv.reader(io.StringIO(other_town.get("/console/export/corrections.csv").get_data(as_text=True)))) == [
        ["text", "label"]
    ]


# --- dashboard and ledger -----------------------------------------------------------------------------------


def test_dashboard_ranks_children_and_lists_overdue(region, tickets):
    county, _ = signed_in(region, "chenlx", "admin", "990100")
    response = county.get("/console/dashboard")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for expected in ("红黑榜", "城关镇", "河西街道", "柳林镇", "响应率", "类别分布", "超时未办", "热点", "<svg"):
        assert expected in html, expected
    assert load(region, tickets["light"]).number in html  # overdue list
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    assert town.get("/console/dashboard?region=990102").status_code == 403
    assert "东大社区" in town.get("/console/dashboard").get_data(as_text=True)


def test_ledger_export_is_an_xlsx_with_masked_personal_data(region, tickets):
    phone_ticket = new_ticket(region, "阳光花园有人=HYPERLINK(1) 占道经营，联系电话13912345678", utcnow(), "oLedger")
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    response = town.get("/console/export/ledger.xlsx")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert "台账" in rows[0][0] and rows[1][0] == "工单号"
    numbers = {row[0] for row in rows[2:]}
    assert numbers == {
        load(region, t).number for t in (tickets["light"], tickets["gas"], tickets["wages"], phone_ticket)
    }
    text = "".join(str(cell) for row in rows for cell in row if cell is not None)
    assert "13912345678" not in text and "139****5678" in text
    assert all(sheet.cell(row=r, column=c).data_type != "f" for r in range(1, sheet.max_row + 1) for c in range(1, 20))
    assert audit_actions(region, "region:990101") == ["export.ledger"]
    assert town.get("/console/export/ledger.xlsx?region=990103").status_code == 403
