"""The map page's figures without a browser: scope, masking, the queue's filters, the cut for huge areas,
and the map library's route."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from models import utcnow
from tests.web.console.helpers import new_ticket, signed_in

MAP_DATA = re.compile(r'<script type="application/json" id="map-data">(.*?)</script>', re.S)


def map_data(html: str) -> dict:
    match = MAP_DATA.search(html)
    assert match, "no map data on the page"
    return json.loads(match.group(1))


def test_figures_follow_the_queue_filters_and_stay_in_scope(region):
    now = utcnow()
    new_ticket(region, "阳光花园3号楼门口路灯不亮好几天了", now - timedelta(hours=30), "oP1")
    new_ticket(region, "阳光花园工地老板拖欠农民工工资三个月", now - timedelta(hours=1), "oP2")
    new_ticket(region, "西环路农贸市场门口垃圾没人清理", now - timedelta(hours=2), "oP3")  # another town
    client, _ = signed_in(region, "cg", "staff", "990101")
    grids = {g["code"]: g for g in map_data(client.get("/console/map").get_data(as_text=True))["grids"]}
    assert set(grids) == {"990101001001", "990101001002", "990101001003", "990101002001", "990101002002"}
    assert (grids["990101001001"]["tickets"], grids["990101001001"]["overdue"]) == (2, 1)
    assert grids["990101001001"]["state"] == "overdue" and grids["990101001003"]["state"] == "clear"
    filtered = map_data(client.get("/console/map?category=城乡建设").get_data(as_text=True))["grids"]
    assert next(g for g in filtered if g["code"] == "990101001001")["tickets"] == 1
    # Another town's area is outside this user's scope: the page falls back to their own.
    html = client.get("/console/map?area=990102").get_data(as_text=True)
    assert "城关镇" in html and "990102001001" not in html


def test_a_viewer_sees_team_names_masked(region):
    client, _ = signed_in(region, "v", "viewer", "990101")
    grids = map_data(client.get("/console/map").get_data(as_text=True))["grids"]
    team = next(g for g in grids if g["code"] == "990101001001")["team"]
    assert {"name": "张**", "role": "网格员"} in team
    assert "张维印" not in client.get("/console/map?view=list").get_data(as_text=True)


def test_a_huge_area_shows_the_grids_with_most_trouble_first(region, monkeypatch):
    monkeypatch.setattr("workflow.grid_map.MAX_GRIDS", 2)
    new_ticket(region, "幸福里小区5号楼楼道灯坏了", utcnow() - timedelta(hours=30), "oH1")
    new_ticket(region, "阳光花园门口路灯坏了", utcnow() - timedelta(minutes=5), "oH2")
    client, _ = signed_in(region, "big", "staff", "990101")
    html = client.get("/console/map").get_data(as_text=True)
    assert [g["code"] for g in map_data(html)["grids"]] == ["990101002001", "990101001001"]
    assert "本区域共 5 个网格" in html


def test_the_page_needs_a_login_and_the_library_is_served_cacheable(region, client):
    assert client.get("/console/map").status_code == 302
    response = client.get("/console/vendor/leaflet/../../app.py")
    assert response.status_code == 404
    response = client.get("/console/vendor/leaflet/leaflet.css")
    if response.status_code == 200:  # installed by `make setup`
        assert "max-age" in response.headers["Cache-Control"] and ".leaflet-pane" in response.get_data(as_text=True)


def test_an_officer_of_one_grid_sees_that_grid(region):
    client, _ = signed_in(region, "gy", "officer", "990101001001")
    html = client.get("/console/map").get_data(as_text=True)
    assert [g["code"] for g in map_data(html)["grids"]] == ["990101001001"]
    assert '<option value="990101001001" selected>' in html
