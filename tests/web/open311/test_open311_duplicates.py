"""Open311 and duplicates: different service codes never join, even at one point; the same code close by
does; a likely one is left to staff as 可能重复."""

from __future__ import annotations

from models import Ticket, db
from tests.support.broadcasts import auth
from tests.web.open311.test_open311 import BASE, Api, key, post  # noqa: F401  (key is a fixture)

POINT = {"lat": "30.5015", "long": "114.3022"}
# The old 一级/二级 codes are still accepted; answers carry the stable ASCII codes.
ASCII = {
    "城乡建设/市政设施": "urban.municipal-facilities",
    "城乡建设/物业管理": "urban.property-management",
    "城乡建设/违章建筑": "urban.illegal-construction",
}


def test_three_service_codes_at_one_point_are_three_requests(region, client, key):  # noqa: F811
    reports = [
        ("城乡建设/市政设施", "路灯坏了", "d1"),
        ("城乡建设/物业管理", "电梯坏了有人被困", "d2"),
        ("城乡建设/违章建筑", "这里有违章搭建", "d3"),
    ]
    answers = [
        post(Api(client), key, service_code=code, description=text, device_id=device, **POINT).get_json()[0]
        for code, text, device in reports
    ]
    numbers = [a["service_request_id"] for a in answers]
    assert len(set(numbers)) == 3 and not any("并入" in a["service_notice"] for a in answers)
    for (code, text, _), number in zip(reports, numbers, strict=True):
        [request] = client.get(f"{BASE}/requests/{number}.json?api_key={key}").get_json()
        assert request["service_code"] == ASCII[code] and request["description"] == text


def test_the_same_code_a_few_metres_away_joins_and_a_split_gives_it_back(region, client, key):  # noqa: F811
    first = post(
        Api(client), key, service_code="城乡建设/市政设施", description="路灯坏了 晚上很黑", device_id="d1", **POINT
    )
    number = first.get_json()[0]["service_request_id"]
    second = post(
        Api(client),
        key,
        service_code="城乡建设/市政设施",
        description="路灯不亮了",
        device_id="d2",
        lat="30.50152",
        long="114.30223",
    ).get_json()[0]
    assert second["service_request_id"] == number and "并入" in second["service_notice"]
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one()
        ticket_id, joined = ticket.id, ticket.reporters[1].id
    response = client.post(
        f"/api/tickets/{ticket_id}/actions", json={"action": "split", "reporter": joined}, headers=auth(key)
    )
    assert response.status_code == 200, response.get_json()
    own = response.get_json()["events"][-1]["data"]["split_to"]
    [request] = client.get(f"{BASE}/requests/{own}.json?api_key={key}").get_json()
    assert request["service_code"] == ASCII["城乡建设/市政设施"] and request["description"] == "路灯不亮了"
    assert request["lat"] == 30.50152 and request["status"] == "open"


def test_the_same_words_far_apart_are_two_requests(region, client, key):  # noqa: F811
    first = post(Api(client), key, service_code="城乡建设/市政设施", description="路灯不亮", device_id="d1", **POINT)
    second = post(
        Api(client),
        key,
        service_code="城乡建设/市政设施",
        description="路灯不亮",
        device_id="d2",
        lat="30.5062",
        long="114.3022",
    )
    assert first.get_json()[0]["service_request_id"] != second.get_json()[0]["service_request_id"]
