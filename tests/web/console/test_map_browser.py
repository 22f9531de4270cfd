"""The grid map in a real browser (headless Chromium, as in test_browser.py): boundaries coloured by their
tickets, ticket points, a grid's team on click, base tiles from the configured URL, a phone's screen; and
the page without boundaries, without tiles, without the map library (the grid list always works)."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest

from models import Ticket, db, utcnow
from regions.importer import import_region
from tests.web.console.helpers import make_user, new_ticket

# The browser and the live server are test_browser.py's fixtures, shared as they are.
from tests.web.console.test_browser import browser_page, live_server, pytestmark, sign_in  # noqa: F401
from web.console.grid_map import library_ready

PROJECT = Path(__file__).resolve().parents[3]
REDRAWN = PROJECT / "tests" / "regions" / "data" / "redrawn_region.yaml"
TILES = "https://tiles.example.test/{z}/{x}/{y}.png"
# Screenshots go to the untracked instance/ folder, where the figures of a test run go too.
SHOTS = PROJECT / "instance" / "screenshots"


@pytest.fixture
def browser_at(live_server, browser_page):  # noqa: F811  (the imported fixtures, by name)
    """(page, base URL): a headless Chromium page and the app on loopback."""
    return browser_page, live_server


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")
    return path


def tile_png() -> bytes:
    """A 256×256 pale tile, so a screenshot shows where the base map would be."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes((228, 236, 224)) * 256 for _ in range(256))
    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def place(app, ticket_id: int, lat: float, lng: float) -> None:
    with app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        ticket.lat, ticket.lng = lat, lng
        db.session.commit()


@pytest.mark.skipif(
    not Path(__import__("config").Config.MAP_LIBRARY_DIR, "leaflet.js").is_file(),
    reason="the map library is installed by `make setup` (python -m scripts.fetch_map_library)",
)
def test_map_draws_grids_by_their_tickets_points_and_a_team_on_click(region, browser_at, tmp_path, monkeypatch):
    page, base = browser_at
    monkeypatch.setitem(region.config, "MAP_TILE_URL", TILES)
    monkeypatch.setitem(region.config, "MAP_TILE_ATTRIBUTION", "测试底图")
    tiles_served = []

    def serve_tile(route):
        tiles_served.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=tile_png())

    page.route(re.compile(r"^https://tiles\.example\.test/.*"), serve_tile)  # never leaves the machine
    now = utcnow()
    late = new_ticket(region, "阳光花园3号楼门口路灯不亮好几天了", now - timedelta(hours=30), "oM1")
    fresh = new_ticket(region, "建设路污水井冒水，路面全是污水", now - timedelta(minutes=20), "oM2")
    new_ticket(region, "幸福里小区5号楼楼道灯坏了", now - timedelta(minutes=5), "oM3")  # no coordinates
    place(region, late, 30.5015, 114.3025)
    place(region, fresh, 30.5050, 114.3030)
    with region.app_context():
        assert library_ready()
        grids = {t.id: t.grid_code for t in db.session.execute(db.select(Ticket)).scalars()}
    assert grids[late] == "990101001001" and grids[fresh] == "990101001002"
    make_user(region, "liuhm", "staff", "990101")
    sign_in(page, base, "liuhm")

    page.click("nav >> text=地图")
    page.wait_for_selector('#grid-map[data-ready="1"]')
    first = page.locator('path.grid-area[data-grid="990101001001"]')
    assert first.count() == 1 and first.get_attribute("data-state") == "overdue"
    assert page.locator('path.grid-area[data-grid="990101001002"]').get_attribute("data-state") == "open"
    assert page.locator('path.grid-centre[data-grid="990101001003"]').get_attribute("data-state") == "clear"
    assert page.locator("path.ticket-point").count() == 2
    assert page.locator("img.leaflet-tile").count() > 0 and tiles_served
    assert all(url.startswith("https://tiles.example.test/") for url in tiles_served)
    assert page.locator('tr[data-grid="990101001001"] .figure-overdue').inner_text() == "1"

    first.click(position={"x": 12, "y": 12})  # a corner: its ticket point sits in the middle
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "东大社区第一网格" in text and "网格员 张维印" in text and "超时 1 件" in text
    page.wait_for_timeout(400)  # the popup fades in (0.2 s): let the screenshot show it whole
    png = shot(page, "map")

    page.set_viewport_size({"width": 390, "height": 844})  # a grid officer's phone
    page.reload()
    page.wait_for_selector('#grid-map[data-ready="1"]')
    box = page.locator("#grid-map").bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] >= 300
    assert page.locator('tr[data-grid="990101001002"]').is_visible()
    phone_png = shot(page, "map-phone")
    for path in (png, phone_png):
        assert path.stat().st_size > 10_000

    # The queue's filters carry over: only urgent ones → no tickets, every grid clear.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/console/?category=城乡建设")
    page.click("#queue-map-link")
    page.wait_for_url(re.compile(r".*/console/map\?.*category=.*"))
    page.wait_for_selector('#grid-map[data-ready="1"]')
    assert page.locator('select[name="category"]').input_value() == "城乡建设"


def test_map_without_boundaries_or_tiles_and_the_clean_list_view(region, browser_at):
    page, base = browser_at
    bare = re.sub(r"\n\s+(boundary|lat|lng): .*", "", REDRAWN.read_text(encoding="utf-8"))
    with region.app_context():
        import_region(bare)
    new_ticket(region, "东大小学门口路灯坏了", utcnow() - timedelta(hours=30), "oB1")
    make_user(region, "liuhm", "staff", "990101")
    sign_in(page, base, "liuhm")

    page.goto(f"{base}/console/map")
    note = page.locator("#map-note")
    note.wait_for()
    assert page.locator("#grid-map").is_hidden()
    with region.app_context():
        ready = library_ready()
    if ready:
        assert "还没有边界或坐标" in note.inner_text()
    # Exactly the new map's active grids, with figures: retired demo grids are not listed.
    codes = [row.get_attribute("data-grid") for row in page.locator("tr[data-grid]").all()]
    assert codes == ["990101001001", "990101001004", "990101002001"]
    assert page.locator('tr[data-grid="990101001004"] .figure-tickets').inner_text() == "1"
    assert page.locator('tr[data-grid="990101001004"] .figure-overdue').inner_text() == "1"
    shot(page, "map-no-boundaries")

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.click("#to-list")
    page.wait_for_url(re.compile(r".*view=list.*"))
    assert page.locator("#grid-map").count() == 0 and page.locator("tr[data-grid]").count() == 3
    assert not [url for url in requests if "leaflet" in url or "map.js" in url]
    shot(page, "map-list-view")


def test_map_says_so_when_the_library_is_missing_and_still_lists_the_grids(region, browser_at, tmp_path, monkeypatch):
    page, base = browser_at
    monkeypatch.setitem(region.config, "MAP_LIBRARY_DIR", str(tmp_path / "no-leaflet-here"))
    make_user(region, "liuhm", "staff", "990101")
    sign_in(page, base, "liuhm")
    page.goto(f"{base}/console/map")
    assert "未安装" in page.locator("#map-note").inner_text() and "make setup" in page.locator("#map-note").inner_text()
    assert page.locator("#grid-map").count() == 0
    assert page.locator("tr[data-grid]").count() == 5  # the demo town's grids, each with its figures


def test_dashboard_ranking_links_each_unit_to_its_area_on_the_map(region, browser_at):
    page, base = browser_at
    new_ticket(region, "阳光花园3号楼门口路灯不亮", utcnow() - timedelta(hours=3), "oD1")
    new_ticket(region, "幸福里小区5号楼楼道灯坏了", utcnow() - timedelta(hours=2), "oD2")
    new_ticket(region, "西环路农贸市场门口垃圾没人清理", utcnow() - timedelta(hours=2), "oD3")
    make_user(region, "chenlx", "staff", "990100")
    sign_in(page, base, "chenlx")
    page.goto(f"{base}/console/dashboard")
    page.click('#ranking tr:has-text("河西街道") a.map-link')
    page.wait_for_url(re.compile(r".*/console/map\?.*area=990102.*"))
    assert "河西街道" in page.locator("h1").inner_text()
    assert page.locator("tr[data-grid]").count() == 2
    assert page.locator('tr[data-grid="990102001001"] .figure-tickets').inner_text() == "1"
