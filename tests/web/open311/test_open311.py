"""Open311 GeoReport v2: discovery, services from the taxonomy, requests in JSON and XML, POST through the
same intake as WeChat, the spec's error format, region scope and masking."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest

from models import Outbox, Ticket, TicketStatus, db, utcnow
from tests.support.broadcasts import token_for
from tests.web.console.helpers import load, new_ticket

BASE = "/open311/v2"


@pytest.fixture
def key(region) -> str:
    return token_for(region, "staff", "990101")


def post(client, key: str, fmt: str = "json", **form):
    return client.post(f"{BASE}/requests.{fmt}", data={"api_key": key, **form})


def test_discovery_in_json_and_xml(region, client):
    data = client.get(f"{BASE}/discovery.json").get_json()
    endpoint = data["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2/") and "text/xml" in endpoint["formats"]
    response = client.get(f"{BASE}/discovery.xml")
    assert response.mimetype == "text/xml" and response.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.data)
    assert root.tag == "discovery" and root.find("endpoints/endpoint/formats/format").text == "text/xml"


def test_services_are_the_taxonomy(region, client):
    services = client.get(f"{BASE}/services.json").get_json()
    codes = {s["service_code"] for s in services}
    assert "城乡建设/市政设施" in codes
    groups = {s["group"] for s in services}
    assert {"城乡建设", "环境保护", "劳动和社会保障"} <= groups
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in services)
    root = ET.fromstring(client.get(f"{BASE}/services.xml").data)
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert root.find("service/metadata").text == "false"
    assert client.get(f"{BASE}/services.html").status_code == 404


def test_post_creates_a_routed_ticket_through_the_intake(region, client, key):
    response = post(
        client,
        key,
        service_code="城乡建设/市政设施",
        description="阳光花园3号楼门口路灯不亮，联系电话13812345678",
        first_name="伟",
        last_name="张",
        device_id="dev-1",
    )
    assert response.status_code == 201, response.data
    [answer] = response.get_json()
    number = answer["service_request_id"]
    assert "已受理" in answer["service_notice"]
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one()
        assert ticket.channel == "open311" and ticket.grid_code == "990101001001"
        assert (ticket.category, ticket.subcategory) == ("城乡建设", "市政设施")
        assert ticket.reporters[0].channel == "open311" and ticket.reporters[0].phone == "13812345678"
        assert ticket.reporters[0].name == "张伟"
        assert [e.kind for e in ticket.events] == ["created", "assigned"]
        notices = db.session.execute(db.select(Outbox.kind).filter_by(ticket_id=ticket.id)).scalars().all()
    assert set(notices) <= {"group_new"}
    got = client.get(f"{BASE}/requests/{number}.json?api_key={key}").get_json()
    assert len(got) == 1
    request = got[0]
    assert request["status"] == "open" and request["status_notes"].startswith("assigned")
    assert request["service_code"] == "城乡建设/市政设施" and request["agency_responsible"] == "东大社区第一网格"
    assert "13812345678" not in request["description"] and "138****5678" in request["description"]
    assert request["requested_datetime"].endswith("+00:00") and request["expected_datetime"]


def test_post_without_a_place_stays_with_the_callers_node(region, client, key):
    [answer] = post(client, key, description="有人在路边焚烧垃圾，烟很大").get_json()
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=answer["service_request_id"])).scalar_one()
        assert ticket.owner_code == "990101"


def test_post_with_coordinates_finds_the_grid(region, client, key):
    [answer] = post(client, key, description="路灯不亮", lat="30.5012", long="114.3021").get_json()
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=answer["service_request_id"])).scalar_one()
        assert ticket.grid_code == "990101001001" and ticket.lat == pytest.approx(30.5012)


def test_a_duplicate_joins_the_open_ticket(region, client, key):
    first = post(client, key, description="幸福里小区3号楼门口路灯不亮").get_json()[0]["service_request_id"]
    second = post(client, key, description="幸福里小区3号楼门口的路灯坏了不亮", device_id="d2").get_json()[0]
    assert second["service_request_id"] == first and "并入" in second["service_notice"]


@pytest.mark.parametrize(
    ("form", "status", "fragment"),
    [
        ({}, 400, "description"),
        ({"description": "路灯不亮", "service_code": "外星事务"}, 400, "service_code"),
        ({"description": "路灯不亮", "lat": "30.5"}, 400, "lat"),
        ({"description": "路灯不亮", "lat": "north", "long": "1"}, 400, "lat"),
        ({"description": "路灯不亮", "address_id": "990102001001"}, 403, "region"),
        ({"description": "路灯不亮", "address_id": "nowhere"}, 400, "address_id"),
    ],
)
def test_bad_posts_get_georeport_errors(region, client, key, form, status, fragment):
    response = post(client, key, **form)
    assert response.status_code == status
    [error] = response.get_json()
    assert error["code"] == status and fragment in error["description"]
    with region.app_context():
        assert db.session.execute(db.select(Ticket)).first() is None


def test_errors_in_xml_and_a_missing_key(region, client):
    response = client.post(f"{BASE}/requests.xml", data={"description": "路灯不亮"})
    assert response.status_code == 403 and response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "errors" and root.find("error/code").text == "403"
    assert client.get(f"{BASE}/requests.json?api_key=forged").status_code == 403
    viewer = token_for(region, "viewer", "990100")
    assert post(client, viewer, description="路灯不亮").status_code == 403


def test_requests_filters(region, client, key):
    now = utcnow()
    light = load(region, new_ticket(region, "阳光花园路灯不亮", now - timedelta(days=2), "o1")).number
    wages = load(region, new_ticket(region, "东大小学旁工地拖欠农民工工资", now - timedelta(days=1), "o2")).number
    old = load(region, new_ticket(region, "建设路路灯不亮", now - timedelta(days=120), "o3")).number
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=light)).scalar_one()
        ticket.status = TicketStatus.CLOSED
        db.session.commit()

    def numbers(query: str) -> list[str]:
        response = client.get(f"{BASE}/requests.json?api_key={key}&{query}")
        assert response.status_code == 200, response.data
        return [r["service_request_id"] for r in response.get_json()]

    assert numbers("") == [wages, light]  # newest first, the last 90 days by default
    assert numbers("status=open") == [wages]
    assert numbers("status=closed") == [light]
    assert numbers("service_code=劳动和社会保障") == [wages]
    assert numbers(f"service_request_id={old},{light}") == [light, old] or numbers(
        f"service_request_id={old},{light}"
    ) == [old, light]
    start = (now - timedelta(days=200)).isoformat().replace("+00:00", "Z")
    assert set(numbers(f"start_date={start}")) == {light, wages, old}
    end = (now - timedelta(days=1, hours=12)).isoformat()
    assert numbers(f"start_date={start}&end_date={end.replace('+', '%2B')}") == [light, old]
    closed = client.get(f"{BASE}/requests.json?api_key={key}&status=closed").get_json()[0]
    assert closed["status_notes"].startswith("closed") and closed["expected_datetime"] == ""
    for bad in ("start_date=yesterday", "start_date=2026-11-01T00:00:00", "status=pending"):
        response = client.get(f"{BASE}/requests.json?api_key={key}&{bad}")
        assert response.status_code == 400 and response.get_json()[0]["code"] == 400
    root = ET.fromstring(client.get(f"{BASE}/requests.xml?api_key={key}").data)
    assert root.tag == "service_requests" and [r.find("service_request_id").text for r in root] == [wages, light]
