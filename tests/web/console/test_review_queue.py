"""The 待分类 queue: tickets whose category the parser was unsure of wait for a person, who confirms or
corrects the suggestion; the API says which tickets wait, the dashboard shows the share that abstained,
and the ticket page names why a ticket was judged urgent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.parsing import get_parser
from models import db, utcnow
from tests.web.api.test_tickets_api import get, token_for
from tests.web.console.helpers import load, new_ticket, signed_in
from tests.web.console.test_console import queue_numbers
from workflow.tickets import create_ticket

UNSURE = "阳光花园那个事情到底有没有人管啊，说了好久了"
UNSURE_TOO = "幸福里小区的事情到底有没有人管啊"


@pytest.fixture
def tickets(region):
    now = utcnow()
    return {
        "unsure": new_ticket(region, UNSURE, now - timedelta(hours=1), "oU1"),
        "unsure_too": new_ticket(region, UNSURE_TOO, now - timedelta(hours=2), "oU2"),
        "light": new_ticket(region, "阳光花园3号楼门口路灯不亮好几天了", now - timedelta(hours=3), "oL"),
        "gas": new_ticket(region, "幸福里小区5号楼有很浓的煤气味，怕是漏气了", now - timedelta(minutes=10), "oG"),
    }


def test_unsure_tickets_are_marked_and_listed_under_their_own_tab(region, tickets):
    assert load(region, tickets["unsure"]).fields["review"] == "pending"
    assert "review" not in load(region, tickets["light"]).fields
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    numbers = {key: load(region, ticket_id).number for key, ticket_id in tickets.items()}
    assert set(queue_numbers(town, "?review=1")) == {numbers["unsure"], numbers["unsure_too"]}
    assert len(queue_numbers(town)) == 4  # the main queue still lists them
    html = town.get("/console/?review=1").get_data(as_text=True)
    assert 'id="tab-review"' in html and '待分类 <span class="tag">2</span>' in html
    assert "建议：" in html and load(region, tickets["unsure"]).category in html
    # the tab keeps its filter while other filters change
    assert 'name="review" value="1"' in html
    assert queue_numbers(town, "?review=1&q=幸福里") == [numbers["unsure_too"]]


def test_the_review_tab_counts_only_my_region(region, tickets):
    other_town, _ = signed_in(region, "hexi", "staff", "990102")
    assert queue_numbers(other_town, "?review=1") == []
    assert '待分类 <span class="tag">0</span>' in other_town.get("/console/").get_data(as_text=True)


def test_confirming_the_suggestion_takes_the_ticket_out_of_review(region, tickets):
    town, token = signed_in(region, "liuhm", "staff", "990101")
    before = load(region, tickets["unsure"])
    page = town.get(f"/console/tickets/{tickets['unsure']}").get_data(as_text=True)
    assert 'id="needs-review"' in page and 'id="review-hint"' in page
    form = {
        "csrf_token": token,
        "category": before.category,
        "subcategory": before.subcategory or "",
        "urgency": before.urgency,
        "grid": before.grid_code,
    }
    url = f"/console/tickets/{tickets['unsure']}/correct"
    assert town.post(url, data=form).status_code == 303
    after = load(region, tickets["unsure"])
    assert after.fields["review"] == "done" and after.category == before.category and after.confidence == 1.0
    event = after.events[-1]
    assert event.kind == "corrected" and event.data["changes"] == {}
    assert event.data["reviewed"] == {"suggested": before.category, "category": before.category}
    assert load(region, tickets["unsure"]).number not in queue_numbers(town, "?review=1")
    page = town.get(f"/console/tickets/{tickets['unsure']}").get_data(as_text=True)
    assert 'id="needs-review"' not in page and "待分类已处理" in page
    # once reviewed, an unchanged form is nothing to correct again
    assert town.post(url, data=form).status_code == 400


def test_correcting_the_category_takes_it_out_of_review_and_feeds_the_export(region, tickets):
    town, token = signed_in(region, "liuhm", "staff", "990101")
    ticket = load(region, tickets["unsure_too"])
    form = {"csrf_token": token, "category": "城乡建设", "urgency": "normal", "grid": ticket.grid_code}
    assert town.post(f"/console/tickets/{tickets['unsure_too']}/correct", data=form).status_code == 303
    after = load(region, tickets["unsure_too"])
    assert after.fields["review"] == "done" and after.category == "城乡建设"
    assert after.events[-1].data["changes"]["category"]["to"] == "城乡建设"
    export = town.get("/console/export/corrections.csv").get_data(as_text=True)
    assert f"{UNSURE_TOO},城乡建设" in export


def test_the_api_says_which_tickets_need_review(region, client, tickets):
    token = token_for(region, "staff", "990100")
    assert get(client, f"/api/tickets/{tickets['unsure']}", token).get_json()["needs_review"] is True
    assert get(client, f"/api/tickets/{tickets['light']}", token).get_json()["needs_review"] is False
    listed = {t["id"]: t["needs_review"] for t in get(client, "/api/tickets", token).get_json()["tickets"]}
    assert listed[tickets["unsure"]] is True and listed[tickets["gas"]] is False


def test_the_share_that_abstained_is_on_the_dashboard_and_in_the_stats(region, client, tickets):
    token = token_for(region, "admin", "990100")
    stats = get(client, "/api/stats?region=990100", token).get_json()
    assert stats["total"]["abstained"] == 2 and stats["total"]["abstain_rate"] == 0.5
    # reviewing a ticket does not change how many abstained
    town, csrf = signed_in(region, "liuhm", "staff", "990101")
    ticket = load(region, tickets["unsure"])
    form = {"csrf_token": csrf, "category": "城乡建设", "urgency": "normal", "grid": ticket.grid_code}
    assert town.post(f"/console/tickets/{tickets['unsure']}/correct", data=form).status_code == 303
    assert get(client, "/api/stats?region=990100", token).get_json()["total"]["abstained"] == 2
    county, _ = signed_in(region, "chenlx", "admin", "990100")
    html = county.get("/console/dashboard").get_data(as_text=True)
    assert "待人工分类占比" in html and "50.0%" in html


def test_the_ticket_page_names_the_urgency_reason(region, tickets):
    grid, _ = signed_in(region, "zhangwy", "officer", "990101002001")
    gas = load(region, tickets["gas"])
    assert gas.urgency == "urgent" and gas.urgency_reason
    html = grid.get(f"/console/tickets/{tickets['gas']}").get_data(as_text=True)
    assert "紧急判断依据" in html and gas.urgency_reason in html


def test_an_ambiguous_place_lists_its_candidates_on_the_ticket_page(region):
    with region.app_context():
        demand = get_parser(region.instance_path).parse("东大社区的路灯坏了")
        # a name shared by two grids of the community (the parser's Location.candidates)
        demand.location.grid, demand.location.candidates = None, ["990101001001", "990101001002"]
        ticket = create_ticket(
            demand=demand, channel="mp", now=utcnow(), reporter_channel="mp", reporter_id="oAmb", actor="resident:oAmb"
        )
        db.session.commit()
        ticket_id, grid_code = ticket.id, ticket.grid_code
    assert grid_code is None  # not guessed
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    html = town.get(f"/console/tickets/{ticket_id}").get_data(as_text=True)
    assert 'id="place-candidates"' in html and "东大社区第一网格" in html and "东大社区第二网格" in html
    assert "place_candidates" not in html
