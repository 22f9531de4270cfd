"""The console in a real browser: headless Chromium (Debian's `chromium` package) driven by Playwright's
Python package through `executable_path` — no browser download. The app runs on loopback against the
test database. Screenshots of the queue, a ticket and the dashboard are saved under pytest's tmp dir.

Needs: `apt-get install -y chromium fonts-wqy-zenhei` and `pip install playwright==1.65.2`
(never `playwright install`). Without them these tests are skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import threading
from datetime import timedelta

import pytest
from werkzeug.serving import make_server

from handlers.parsing import get_parser
from models import Ticket, TicketStatus, db, utcnow
from tests.support.broadcasts import CHENGGUAN_GRIDS, add_residents
from tests.web.console.helpers import PASSWORD, load, make_user, new_ticket
from workflow.duplicates import record_suggestions
from workflow.tickets import create_ticket, find_duplicate

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_missing = [
    what
    for what, present in (
        (f"{CHROMIUM} (apt-get install -y chromium)", os.path.exists(CHROMIUM)),
        ("the playwright package (pip install playwright==1.65.2)", importlib.util.find_spec("playwright") is not None),
    )
    if not present
]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(_missing), reason="browser tests need " + " and ".join(_missing)),
]
TIMEOUT_MS = 15_000


@pytest.fixture
def live_server(region):
    """The app on a free loopback port, in a thread, for the length of one test."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # one access-log line per request drowns the test output
    server = make_server("127.0.0.1", port, region, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)
    quiet.setLevel(level)


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
        browser.close()
        assert not errors, f"browser console errors (a CSP violation shows up here too): {errors}"


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/console/$"))


def shot(page, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")
    return str(path)


def test_work_a_ticket_from_queue_to_resolution_and_open_the_dashboard(region, live_server, browser_page, tmp_path):
    page, base = browser_page, live_server
    now = utcnow()
    light = new_ticket(region, "阳光花园3号楼门口路灯不亮好几天了，晚上很黑", now - timedelta(hours=30), "oW1")
    new_ticket(region, "幸福里小区5号楼有很浓的煤气味，怕是漏气了", now - timedelta(minutes=5), "oW2")
    new_ticket(region, "东大小学旁工地老板拖欠农民工工资三个月", now - timedelta(hours=3), "oW3")
    new_ticket(region, "建设路污水井冒水，路面全是污水", now - timedelta(hours=5), "oW4")
    new_ticket(region, "西环路农贸市场门口垃圾没人清理", now - timedelta(hours=2), "oW5")  # another town
    make_user(region, "liuhm", "staff", "990101")
    number = load(region, light).number
    with region.app_context():
        buildings = db.session.execute(
            db.select(db.func.count()).filter(Ticket.category == "城乡建设", Ticket.owner_code.startswith("990101"))
        ).scalar_one()

    sign_in(page, base, "liuhm")
    assert page.locator("tr[data-ticket]").count() == 4
    page.select_option('select[name="category"]', "城乡建设")  # filters apply on change (console.js)
    page.wait_for_url(re.compile(r".*category=.*"))
    assert page.locator("tr[data-ticket]").count() == buildings
    page.check('input[name="overdue"]')
    page.wait_for_url(re.compile(r".*overdue=1.*"))
    rows = page.locator("tr[data-ticket]")
    assert rows.count() == 1 and rows.first.get_attribute("data-ticket") == number
    assert "超时" in rows.first.inner_text()
    page.goto(f"{base}/console/?category=城乡建设")
    queue_png = shot(page, tmp_path, "queue")
    page.set_viewport_size({"width": 390, "height": 844})  # a grid officer's phone
    shot(page, tmp_path, "queue-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click(f'tr[data-ticket="{number}"] a')
    page.wait_for_url(re.compile(rf".*/console/tickets/{light}$"))
    events_before = page.locator("ol.timeline > li").count()
    assert "阳光花园3号楼门口路灯不亮" in page.locator(".words").first.inner_text()
    page.click('form[data-action="sign"] button[type="submit"]')
    page.wait_for_selector("text=已签收")
    page.click('details:has(form[data-action="resolve"]) > summary')
    page.fill('form[data-action="resolve"] textarea[name="note"]', "已联系供电所更换灯泡，今晚恢复照明")
    page.click('form[data-action="resolve"] button[type="submit"]')
    page.wait_for_selector("#ticket-status:has-text('已办结')")
    timeline = page.locator("ol.timeline > li")
    assert timeline.count() == events_before + 2
    assert "已联系供电所更换灯泡" in timeline.last.inner_text()
    ticket_png = shot(page, tmp_path, "ticket")
    assert load(region, light).status == TicketStatus.RESOLVED

    page.click("nav >> text=研判")
    page.wait_for_selector("#ranking")
    assert "东大社区" in page.locator("#ranking").inner_text()
    assert page.locator("svg.chart rect.bar").count() > 0
    dashboard_png = shot(page, tmp_path, "dashboard")
    for path in (queue_png, ticket_png, dashboard_png):
        assert os.path.getsize(path) > 10_000


def test_compose_a_broadcast_and_watch_it_reach_one_hundred_percent(
    region, live_server, browser_page, tmp_path, run_jobs, fake_api
):
    page, base = browser_page, live_server
    add_residents(region, 25, CHENGGUAN_GRIDS)
    make_user(region, "liuhm", "staff", "990101")
    sign_in(page, base, "liuhm")
    page.click("nav >> text=政策通知")
    page.fill('input[name="title"]', "防汛预警")
    page.fill('textarea[name="body"]', "今明两天有强降雨，请低洼地带居民注意防范。")
    page.wait_for_selector("#audience-total:has-text('合计 25')")  # counted before sending
    shot(page, tmp_path, "broadcast-compose")
    page.click("#broadcast-send")
    page.wait_for_url(re.compile(r".*/console/broadcasts/\d+$"))
    assert page.locator("#broadcast-percent").inner_text() == "0.0%"  # nothing sent before the worker runs
    run_jobs()  # the RQ worker: fan-out, then the mass-send batches
    page.wait_for_selector("#broadcast-percent:has-text('100.0%')")
    assert page.locator("#broadcast-bar").evaluate("bar => bar.value") == 100
    assert page.locator("#broadcast-status").inner_text() == "已完成"
    assert page.locator("#broadcast-cancel").count() == 0
    assert "25" in page.locator('#broadcast-report tr[data-channel="mp"]').inner_text()
    shot(page, tmp_path, "broadcast")


def test_an_admin_takes_a_colleagues_access_away_and_their_open_browser_is_signed_out(
    region, live_server, browser_page, tmp_path
):
    """The admin page in Chromium: the account list, then deactivate; the colleague's own signed-in
    browser (a second context) is bounced to the login page at its next click."""
    from playwright.sync_api import sync_playwright  # noqa: F401  (the fixture already started it)

    page, base = browser_page, live_server
    make_user(region, "chenlx", "admin", "990100")
    make_user(region, "zhaozg", "officer", "990101001002")
    colleague = page.context.browser.new_context(locale="zh-CN")
    other = colleague.new_page()
    sign_in(other, base, "zhaozg")
    sign_in(page, base, "chenlx")
    page.click("nav >> text=账号")
    page.wait_for_selector('tr[data-user="zhaozg"]')
    row = page.locator('tr[data-user="zhaozg"]')
    assert "东大社区第二网格" in row.inner_text() and "1 个" in row.inner_text()  # one live session
    shot(page, tmp_path, "admin-users")
    row.locator('button[data-action="deactivate"]').click()
    page.wait_for_selector('tr[data-user="zhaozg"] td.state:has-text("已停用")')
    assert "已停用 zhaozg" in page.locator(".flash").first.inner_text()
    other.goto(f"{base}/console/")
    other.wait_for_url(re.compile(r".*/console/login.*"))
    colleague.close()
    with region.app_context():
        from models import User

        assert db.session.execute(db.select(User).filter_by(username="zhaozg")).scalar_one().active is False


def test_a_possible_duplicate_shows_on_the_ticket_page_and_merges_with_one_click(region, live_server, browser_page):
    page, base = browser_page, live_server
    now = utcnow()
    older = new_ticket(region, "幸福里小区路灯不亮", now - timedelta(hours=2), "oP1")
    with region.app_context():  # the second report, as the intake takes it: not certain, so suggested
        demand = get_parser(region.instance_path).parse("幸福里小区3号楼门口路灯坏了")
        found = find_duplicate(demand, demand.location.grid, now)
        assert found.ticket is None and [t.id for t, _ in found.suggestions] == [older]
        ticket = create_ticket(
            demand=demand, channel="mp", now=now, reporter_channel="mp", reporter_id="oP2", actor="resident:oP2"
        )
        record_suggestions(ticket, found.suggestions, now)
        db.session.commit()
        newer = ticket.id
    make_user(region, "dupviewer", "staff", "990101")
    number = load(region, older).number

    sign_in(page, base, "dupviewer")
    assert page.locator(f'.possible[data-possible="{number}"]').count() == 1  # in the queue
    page.goto(f"{base}/console/tickets/{newer}")
    box = page.locator("#possible-duplicates")
    assert box.is_visible() and "可能重复" in box.inner_text() and number in box.inner_text()
    page.click(f"#possible-duplicates button:has-text('合并到 {number}')")
    page.wait_for_selector("#ticket-status:has-text('已结案')")
    assert page.locator("#possible-duplicates").count() == 0
    assert load(region, newer).merged_into_id == older


def test_review_an_unsure_ticket_from_the_review_tab(region, live_server, browser_page, tmp_path):
    page, base = browser_page, live_server
    now = utcnow()
    unsure = new_ticket(region, "阳光花园那个事情到底有没有人管啊，说了好久了", now - timedelta(hours=1), "oR1")
    new_ticket(region, "阳光花园3号楼门口路灯不亮好几天了，晚上很黑", now - timedelta(hours=2), "oR2")
    make_user(region, "liuhm", "staff", "990101")
    number = load(region, unsure).number

    sign_in(page, base, "liuhm")
    assert "1" in page.locator("#tab-review").inner_text()
    page.click("#tab-review")
    page.wait_for_url(re.compile(r".*review=1.*"))
    rows = page.locator("tr[data-ticket]")
    assert rows.count() == 1 and rows.first.get_attribute("data-ticket") == number
    assert "建议" in rows.first.inner_text()
    shot(page, tmp_path, "review-queue")

    page.click(f'tr[data-ticket="{number}"] a')
    page.wait_for_selector("#needs-review")
    page.select_option("#correct-category", "城乡建设")
    page.click('#correct button[type="submit"]')
    page.wait_for_selector("text=待分类已处理")
    assert page.locator("#needs-review").count() == 0
    page.goto(f"{base}/console/?review=1")
    assert page.locator("tr[data-ticket]").count() == 0
    assert load(region, unsure).category == "城乡建设"
