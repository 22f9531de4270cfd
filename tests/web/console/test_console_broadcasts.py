"""The broadcast composer without JavaScript (plain form posts) and its JSON endpoints."""

from __future__ import annotations

import re

from models import Broadcast, Resident, db
from tests.support.broadcasts import CHENGGUAN_GRIDS, add_residents
from tests.web.console.helpers import signed_in

FORM = {"title": "防汛预警", "body": "今明两天有强降雨，请注意防范。", "regions": "990101", "roles": "resident"}


def test_count_then_send_then_watch_progress(region, run_jobs, fake_api):
    add_residents(region, 12, CHENGGUAN_GRIDS)
    add_residents(region, 3, ["990102001001"], prefix="oHexi")
    town, token = signed_in(region, "liuhm", "staff", "990101")
    page = town.get("/console/broadcasts/new").get_data(as_text=True)
    assert "城关镇" in page and "河西街道" not in page  # only my subtree to choose from
    counted = town.post("/console/broadcasts/count", data={**FORM, "csrf_token": token}).get_json()
    assert counted["total"] == 12 and counted["counts"]["mp"]["total"] == 12
    html = town.post("/console/broadcasts", data={**FORM, "csrf_token": token, "intent": "count"})
    assert "12 人" in html.get_data(as_text=True)
    with region.app_context():
        assert db.session.execute(db.select(Broadcast)).first() is None
    response = town.post("/console/broadcasts", data={**FORM, "csrf_token": token, "intent": "send"})
    assert response.status_code == 303
    broadcast_id = int(re.search(r"/broadcasts/(\d+)$", response.headers["Location"]).group(1))
    before = town.get(f"/console/broadcasts/{broadcast_id}/progress").get_json()
    assert before["progress"]["percent"] == 0.0 and not before["final"]
    run_jobs()
    after = town.get(f"/console/broadcasts/{broadcast_id}/progress").get_json()
    assert after["final"] and after["status"] == "done" and after["progress"]["sent"] == 12
    page = town.get(f"/console/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "100.0%" in page and "公众号群发" in page


def test_composer_refusals(region):
    town, token = signed_in(region, "liuhm", "staff", "990101")
    other = town.post("/console/broadcasts", data={**FORM, "regions": "990102", "csrf_token": token, "intent": "send"})
    assert other.status_code == 403
    empty = town.post("/console/broadcasts", data={**FORM, "csrf_token": token, "intent": "send"})
    assert empty.status_code == 400  # nobody in the audience yet
    officer, officer_token = signed_in(region, "zhangwy", "officer", "990101001001")
    page = officer.get("/console/broadcasts/new").get_data(as_text=True)
    assert "只有管理员和工作人员" in page and 'id="broadcast-send"' not in page
    response = officer.post(
        "/console/broadcasts", data={**FORM, "regions": "990101001001", "csrf_token": officer_token, "intent": "send"}
    )
    assert response.status_code == 403
    answer = officer.post(
        "/console/broadcasts/count", data={**FORM, "csrf_token": officer_token}, headers={"Accept": "application/json"}
    )
    assert answer.status_code == 403 and answer.get_json()["error"] == "forbidden"


def test_another_towns_broadcast_is_not_visible(region, fake_api):
    add_residents(region, 2, ["990102001001"], prefix="oHexi")
    hexi, token = signed_in(region, "hexi", "staff", "990102")
    response = hexi.post(
        "/console/broadcasts", data={**FORM, "regions": "990102", "csrf_token": token, "intent": "send"}
    )
    broadcast_id = int(response.headers["Location"].rsplit("/", 1)[1])
    town, town_token = signed_in(region, "liuhm", "staff", "990101")
    assert town.get(f"/console/broadcasts/{broadcast_id}").status_code == 404
    assert town.get(f"/console/broadcasts/{broadcast_id}/progress").status_code == 404
    assert town.post(f"/console/broadcasts/{broadcast_id}/cancel", data={"csrf_token": town_token}).status_code == 404
    assert hexi.post(f"/console/broadcasts/{broadcast_id}/cancel", data={"csrf_token": token}).status_code == 303
    with region.app_context():
        assert db.session.get(Broadcast, broadcast_id).status == "cancelled"


def test_the_count_says_how_many_followers_have_no_known_place(region):
    add_residents(region, 4, CHENGGUAN_GRIDS)
    with region.app_context():
        db.session.add_all([Resident(openid="oNowhere1"), Resident(openid="oNowhere2")])
        db.session.commit()
    town, token = signed_in(region, "liuhm", "staff", "990101")
    counted = town.post("/console/broadcasts/count", data={**FORM, "csrf_token": token}).get_json()
    assert counted["counts"]["mp"]["total"] == 4 and counted["no_known_place"] == 2
    html = town.post("/console/broadcasts", data={**FORM, "csrf_token": token, "intent": "count"}).get_data(
        as_text=True
    )
    assert "2 位关注者位置未知（不在本次范围内）" in html
