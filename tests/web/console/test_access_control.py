"""A town's staff cannot see or act on another town's ticket through the console, the API or Open311,
and every console form is refused without its CSRF token."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models import TicketStatus, db, utcnow
from tests.support.broadcasts import auth, token_for
from tests.web.console.helpers import csrf_from, load, login, make_user, new_ticket, signed_in


@pytest.fixture
def hexi_ticket(region) -> int:
    """A ticket of 河西街道 (990102)."""
    ticket_id = new_ticket(region, "西环路农贸市场门口垃圾没人清理", utcnow() - timedelta(hours=1), "oHexi")
    assert load(region, ticket_id).owner_code.startswith("990102")
    return ticket_id


def test_console_hides_and_protects_another_towns_ticket(region, hexi_ticket):
    chengguan, token = signed_in(region, "liuhm", "staff", "990101")
    number = load(region, hexi_ticket).number
    assert chengguan.get(f"/console/tickets/{hexi_ticket}").status_code == 404
    assert f'data-ticket="{number}"' not in chengguan.get("/console/?status=all").get_data(as_text=True)
    assert f'data-ticket="{number}"' not in chengguan.get(f"/console/?q={number}").get_data(as_text=True)
    for form in ({"action": "sign"}, {"action": "close", "note": "关了"}, {"action": "escalate"}):
        assert (
            chengguan.post(f"/console/tickets/{hexi_ticket}/actions", data={"csrf_token": token, **form}).status_code
            == 404
        )
    correction = {"csrf_token": token, "category": "环境保护", "urgency": "normal"}
    assert chengguan.post(f"/console/tickets/{hexi_ticket}/correct", data=correction).status_code == 404
    assert chengguan.get("/console/dashboard?region=990102").status_code == 403
    assert chengguan.get("/console/export/ledger.xlsx?region=990102").status_code == 403
    ticket = load(region, hexi_ticket)
    assert ticket.status == TicketStatus.ASSIGNED and [e.kind for e in ticket.events] == ["created", "assigned"]
    hexi, _ = signed_in(region, "hexi", "staff", "990102")
    assert hexi.get(f"/console/tickets/{hexi_ticket}").status_code == 200


def test_api_hides_and_refuses_another_towns_ticket(region, client, hexi_ticket):
    chengguan = auth(token_for(region, "staff", "990101"))
    assert client.get(f"/api/tickets/{hexi_ticket}", headers=chengguan).status_code == 404
    listed = client.get("/api/tickets?limit=200", headers=chengguan).get_json()["tickets"]
    assert hexi_ticket not in [t["id"] for t in listed]
    response = client.post(f"/api/tickets/{hexi_ticket}/actions", json={"action": "sign"}, headers=chengguan)
    assert response.status_code == 404  # as if it did not exist
    assert load(region, hexi_ticket).status == TicketStatus.ASSIGNED


def test_open311_hides_another_towns_requests(region, client, hexi_ticket):
    key = token_for(region, "staff", "990101")
    number = load(region, hexi_ticket).number
    response = client.get(f"/open311/v2/requests/{number}.json?api_key={key}")
    assert response.status_code == 404 and response.get_json()[0]["code"] == 404
    listed = client.get(f"/open311/v2/requests.json?api_key={key}").get_json()
    assert number not in [r["service_request_id"] for r in listed]
    listed = client.get(f"/open311/v2/requests.json?api_key={key}&service_request_id={number}").get_json()
    assert listed == []
    # and cannot file one into 河西街道 either
    response = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "urban.sanitation",
            "address_string": "西环路农贸市场门口",
            "description": "西环路农贸市场门口垃圾没人清理",
        },
    )
    assert response.status_code == 403 and "region" in response.get_json()[0]["description"]
    hexi_key = token_for(region, "staff", "990102")
    assert client.get(f"/open311/v2/requests/{number}.json?api_key={hexi_key}").status_code == 200


def _console_post_rules(app) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.") and "POST" in (rule.methods or ())
    )


def test_every_console_form_is_refused_without_its_csrf_token(region, hexi_ticket):
    make_user(region, "chenlx", "admin", "990100")
    client = region.test_client()
    login_page = client.get("/console/login").get_data(as_text=True)
    # signing in itself needs the token (no login CSRF)
    response = client.post("/console/login", data={"username": "chenlx", "password": "x"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert login(client, "chenlx").status_code == 302
    token = csrf_from(client.get("/console/").get_data(as_text=True))
    rules = _console_post_rules(region)
    assert len(rules) >= 7, rules
    filled = {"ticket_id": str(hexi_ticket), "broadcast_id": "1", "outbox_id": "1", "user_id": "1", "token_id": "1"}
    for rule in rules:
        url = rule
        for name, value in filled.items():
            url = url.replace(f"<int:{name}>", value)
        form = {"action": "close", "note": "x", "category": "环境保护", "title": "t", "body": "b"}
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            response = client.post(url, data=form, headers=headers)
            assert response.status_code in (400, 403), (url, response.status_code)
        response = client.post(url, data={**form, "csrf_token": token + "x"})
        assert response.status_code in (400, 403), url
    # another site's page posting with the right token is refused by its Origin too
    response = client.post(
        f"/console/tickets/{hexi_ticket}/actions",
        data={"csrf_token": token, "action": "close", "note": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    ticket = load(region, hexi_ticket)
    assert ticket.status == TicketStatus.ASSIGNED and len(ticket.events) == 2
    # the anonymous session's token does not survive signing in
    assert csrf_from(login_page) != token


def test_a_token_from_another_session_is_refused(region, hexi_ticket):
    first, first_token = signed_in(region, "chenlx", "admin", "990100")
    second, _ = signed_in(region, "liuhm", "staff", "990102")
    response = second.post(
        f"/console/tickets/{hexi_ticket}/actions", data={"csrf_token": first_token, "action": "sign"}
    )
    assert response.status_code == 400
    with region.app_context():
        db.session.remove()
    assert load(region, hexi_ticket).status == TicketStatus.ASSIGNED
