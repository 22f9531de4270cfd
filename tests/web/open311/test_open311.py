"""Open311 GeoReport v2: discovery, services and definitions from the taxonomy, requests in JSON and XML,
POST through the same intake as WeChat, public reads, the spec's error format everywhere under
/open311/v2/, region scope and masking. Every JSON answer is validated against schemas/."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest

from models import Outbox, Ticket, TicketStatus, User, db, utcnow
from tests.support.broadcasts import token_for
from tests.web.console.helpers import load, new_ticket
from tests.web.open311.schema_check import checked
from workflow.policy import staff_actor
from workflow.transitions import apply_action

BASE = "/open311/v2"
LIGHTS = "urban.municipal-facilities"
UTILITIES = "urban.utilities"
WAGES = "labour.unpaid-wages"


def county_admin():
    return staff_actor(User(username="t", role="admin", region_code="990100"), "console")


class Api:
    """The test client; every JSON answer is checked against its schema on the way."""

    def __init__(self, client):
        self.client = client

    def _checked(self, method: str, path: str, response):
        if response.mimetype == "application/json":
            response.data_json = checked(method, path, response.status_code, response.content_type, response.data)
        return response

    def get(self, path: str, **kwargs):
        return self._checked("GET", path, self.client.get(f"{BASE}/{path}", **kwargs))

    def post(self, path: str, **kwargs):
        return self._checked("POST", path, self.client.post(f"{BASE}/{path}", **kwargs))

    def open(self, method: str, path: str, **kwargs):
        return self._checked(method, path, self.client.open(f"{BASE}/{path}", method=method, **kwargs))


@pytest.fixture
def api(client) -> Api:
    return Api(client)


@pytest.fixture
def key(region) -> str:
    return token_for(region, "staff", "990101")


def post(api: Api, key: str, fmt: str = "json", **form):
    form.setdefault("service_code", LIGHTS)
    if not {"lat", "address_string", "address_id"} & set(form):
        form["address_string"] = "阳光花园3号楼门口"
    return api.post(f"requests.{fmt}", data={"api_key": key, **form})


def ticket_by(region, number: str) -> Ticket:
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one()
        _ = ticket.events, ticket.reporters
        return ticket


def test_discovery_in_json_and_xml(region, api):
    data = api.get("discovery.json").data_json
    endpoint = data["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2/") and "text/xml" in endpoint["formats"]
    response = api.get("discovery.xml")
    assert response.mimetype == "text/xml" and response.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.data)
    assert root.tag == "discovery" and root.find("endpoints/endpoint/formats/format").text == "text/xml"


def test_services_have_url_safe_codes_and_chinese_names(region, api):
    services = api.get("services.json").data_json
    by_code = {s["service_code"]: s for s in services}
    assert by_code[LIGHTS]["service_name"] == "市政设施" and by_code[LIGHTS]["group"] == "城乡建设"
    assert all(code.isascii() and "/" not in code for code in by_code)
    assert len(by_code) == len(services)  # unique
    assert {"城乡建设", "环境保护", "劳动和社会保障"} <= {s["group"] for s in services}
    assert by_code[UTILITIES]["metadata"] is True and by_code["urban.sanitation"]["metadata"] is False
    root = ET.fromstring(api.get("services.xml").data)
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert {s.find("metadata").text for s in root.findall("service")} == {"true", "false"}
    response = api.get("services.html")
    assert response.status_code == 404 and response.data_json[0]["code"] == 404


def test_service_definition_in_json_and_xml(region, api):
    definition = api.get(f"services/{UTILITIES}.json").data_json
    assert definition["service_code"] == UTILITIES
    [utility, households] = definition["attributes"]
    assert (utility["code"], utility["datatype"], utility["required"], utility["order"]) == (
        "utility",
        "singlevaluelist",
        True,
        1,
    )
    assert {"key": "water", "name": "供水"} in utility["values"]
    assert households["datatype"] == "number" and households["required"] is False
    root = ET.fromstring(api.get(f"services/{UTILITIES}.xml").data)
    assert root.tag == "service_definition"
    assert [a.find("code").text for a in root.findall("attributes/attribute")] == ["utility", "households"]
    assert root.find("attributes/attribute/values/value/key").text == "water"
    assert api.get("services/urban.sanitation.json").data_json["attributes"] == []
    missing = api.get("services/no.such-service.json")
    assert missing.status_code == 404 and "service_code" in missing.data_json[0]["description"]
    assert api.get("services/no.such-service.xml").mimetype == "text/xml"


def test_post_creates_a_routed_ticket_through_the_intake(region, api, key):
    response = post(
        api,
        key,
        description="阳光花园3号楼门口路灯不亮，联系电话13812345678",
        first_name="伟",
        last_name="张",
        device_id="dev-1",
    )
    assert response.status_code == 201, response.data
    [answer] = response.data_json
    number = answer["service_request_id"]
    assert "已受理" in answer["service_notice"]
    ticket = ticket_by(region, number)
    assert ticket.channel == "open311" and ticket.grid_code == "990101001001"
    assert (ticket.category, ticket.subcategory) == ("城乡建设", "市政设施")
    assert ticket.fields["service_code"] == LIGHTS
    assert ticket.reporters[0].channel == "open311" and ticket.reporters[0].phone == "13812345678"
    assert ticket.reporters[0].name == "张伟"
    assert [e.kind for e in ticket.events] == ["created", "assigned"]
    with region.app_context():
        notices = db.session.execute(db.select(Outbox.kind).filter_by(ticket_id=ticket.id)).scalars().all()
    assert set(notices) <= {"group_new"}
    [request] = api.get(f"requests/{number}.json").data_json  # no key: reads are public
    assert request["status"] == "open" and request["status_notes"] == "已受理，待签收"
    assert request["service_code"] == LIGHTS and request["service_name"] == "市政设施"
    assert request["agency_responsible"] == "东大社区第一网格"
    assert "13812345678" not in request["description"] and "138****5678" in request["description"]
    assert request["requested_datetime"].endswith("+00:00") and request["expected_datetime"]
    assert "张" not in str(request) and "dev-1" not in str(request)  # no reporter data


def test_every_field_round_trips(region, api, key):
    description = "第一段：3号楼门口的路灯不亮。\n\n第二段：晚上很黑，老人容易摔倒。"
    response = post(
        api,
        key,
        description=description,
        address_string="阳光花园3号楼门口",
        lat="30.5012",
        long="114.3021",
        media_url="https://photos.example.org/p/1.jpg",
        **{"attribute[facility]": "streetlight", "attribute[report_url]": "https://fms.example.org/report/7"},
    )
    assert response.status_code == 201, response.data
    number = response.data_json[0]["service_request_id"]
    [request] = api.get(f"requests/{number}.json").data_json
    assert request["description"] == description  # blank lines kept, address not folded in
    assert request["address"] == "阳光花园3号楼门口"
    assert request["lat"] == pytest.approx(30.5012) and request["long"] == pytest.approx(114.3021)
    assert request["media_url"] == "https://photos.example.org/p/1.jpg"
    assert request["attributes"] == {"facility": "streetlight", "report_url": "https://fms.example.org/report/7"}
    assert request["zipcode"] is None and request["service_notice"] is None
    root = ET.fromstring(api.get(f"requests/{number}.xml").data)
    item = root.find("request")
    assert item.find("media_url").text == "https://photos.example.org/p/1.jpg"
    assert item.find("attributes/facility").text == "streetlight" and item.find("zipcode").text is None


def test_absent_values_are_null_and_closed_requests_have_no_expected_time(region, api, key):
    number = post(api, key, description="路灯不亮", address_id="990101001001").data_json[0]["service_request_id"]
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one()
        apply_action(ticket, "sign", county_admin(), utcnow())
        apply_action(ticket, "resolve", county_admin(), utcnow(), note="已更换灯泡，联系人13812345678")
        db.session.commit()
    [request] = api.get(f"requests/{number}.json").data_json
    assert request["lat"] is None and request["long"] is None and request["media_url"] is None
    assert request["status"] == "closed" and request["expected_datetime"] is None
    assert request["status_notes"] == "已更换灯泡，联系人138****5678"  # the staff's public note, masked


def test_required_attributes_and_their_types(region, api, key):
    def attempt(**attributes):
        form = {f"attribute[{k}]": v for k, v in attributes.items()}
        return post(api, key, service_code=UTILITIES, description="停水两天了", **form)

    assert attempt().status_code == 400 and "utility" in attempt().data_json[0]["description"]
    assert attempt(utility="wine").status_code == 400
    assert attempt(utility="water", households="many").status_code == 400
    good = attempt(utility="water", households="30")
    assert good.status_code == 201, good.data
    noise = post(
        api,
        key,
        service_code="environment.noise",
        description="工地夜间施工噪声",
        **{"attribute[period][]": ["evening", "night"], "attribute[since]": "2026-11-01T20:00:00+08:00"},
    )
    assert noise.status_code == 201, noise.data
    [request] = api.get(f"requests/{noise.data_json[0]['service_request_id']}.json").data_json
    assert request["attributes"]["period"] == ["evening", "night"]
    bad_time = post(api, key, service_code="environment.noise", **{"attribute[since]": "昨晚"})
    assert bad_time.status_code == 400


@pytest.mark.parametrize(
    ("form", "status", "fragment"),
    [
        ({"service_code": ""}, 400, "service_code is required"),
        ({"service_code": "外星事务"}, 404, "service_code"),
        ({"service_code": "城乡建设/不存在的服务"}, 404, "service_code"),
        ({"address_string": "", "description": "路灯不亮"}, 400, "location"),
        ({"lat": "30.5"}, 400, "lat"),
        ({"lat": "north", "long": "1"}, 400, "lat"),
        ({"lat": "999", "long": "114.3"}, 400, "lat"),
        ({"lat": "30.5", "long": "-181"}, 400, "long"),
        ({"lat": "nan", "long": "114.3"}, 400, "lat"),
        ({"address_id": "990102001001"}, 403, "region"),
        ({"address_id": "nowhere"}, 400, "address_id"),
        ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
        ({"description": "长" * 4001}, 400, "description"),
        ({"attribute[bad name]": "x"}, 400, "attribute"),
    ],
)
def test_bad_posts_get_georeport_errors(region, api, key, form, status, fragment):
    if form.get("address_string") == "":
        form = {"service_code": LIGHTS, "description": "路灯不亮"}
        response = api.post("requests.json", data={"api_key": key, **form})
    else:
        response = post(api, key, **form)
    assert response.status_code == status, response.data
    [error] = response.data_json
    assert error["code"] == status and fragment in error["description"]
    with region.app_context():
        assert db.session.execute(db.select(Ticket)).first() is None


def test_description_is_optional(region, api, key):
    response = post(api, key, address_string="阳光花园3号楼门口")
    assert response.status_code == 201, response.data
    [request] = api.get(f"requests/{response.data_json[0]['service_request_id']}.json").data_json
    assert request["description"] is None and request["service_code"] == LIGHTS


def test_the_former_chinese_codes_still_post(region, api, key):
    response = post(api, key, service_code="城乡建设/市政设施", description="路灯不亮")
    assert response.status_code == 201
    assert ticket_by(region, response.data_json[0]["service_request_id"]).fields["service_code"] == LIGHTS


def test_writes_need_a_key_and_reads_can_be_closed(region, api, client, key):
    response = api.post("requests.xml", data={"service_code": LIGHTS, "address_string": "阳光花园"})
    assert response.status_code == 403 and response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "errors" and root.find("error/code").text == "403"
    assert api.get("requests.json?api_key=forged").status_code == 403  # a bad key is refused, not ignored
    viewer = token_for(region, "viewer", "990100")
    assert post(api, viewer, description="路灯不亮").status_code == 403
    assert api.get("requests.json").status_code == 200
    region.config["OPEN311_READ_REQUIRES_KEY"] = 1
    try:
        closed = api.get("requests.json")
        assert closed.status_code == 403 and "api_key" in closed.data_json[0]["description"]
        assert api.get("services.json").status_code == 403
        assert api.get(f"requests.json?api_key={key}").status_code == 200
    finally:
        region.config["OPEN311_READ_REQUIRES_KEY"] = 0


def test_public_reads_cover_the_county_but_not_reports_about_officials(region, api, key):
    now = utcnow()
    other_town = load(region, new_ticket(region, "西城街道建设路路灯不亮", now - timedelta(hours=2), "o1")).number
    tip = load(region, new_ticket(region, "举报村支书贪污扶贫款", now - timedelta(hours=1), "o2"))
    assert tip.category == "纪检监察"
    public = {r["service_request_id"] for r in api.get("requests.json").data_json}
    assert other_town in public and tip.number not in public
    assert api.get(f"requests/{tip.number}.json").status_code == 404
    county = token_for(region, "staff", "990100")
    assert tip.number in {r["service_request_id"] for r in api.get(f"requests.json?api_key={county}").data_json}


def test_requests_filters(region, api):
    now = utcnow()
    light = load(region, new_ticket(region, "阳光花园路灯不亮", now - timedelta(days=2), "o1")).number
    wages = load(region, new_ticket(region, "东大小学旁工地拖欠农民工工资", now - timedelta(days=1), "o2")).number
    old = load(region, new_ticket(region, "建设路路灯不亮", now - timedelta(days=120), "o3")).number
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=light)).scalar_one()
        ticket.status = TicketStatus.CLOSED
        db.session.commit()

    def numbers(query: str) -> list[str]:
        response = api.get(f"requests.json?{query}")
        assert response.status_code == 200, response.data
        return [r["service_request_id"] for r in response.data_json]

    assert numbers("") == [wages, light]  # newest first, the last 90 days by default
    assert numbers("status=open") == [wages]
    assert numbers("status=closed") == [light]
    assert numbers(f"service_code={WAGES}") == [wages]
    assert numbers(f"service_code={WAGES},{LIGHTS}&status=closed") == [light]
    assert sorted(numbers(f"service_request_id={old},{light}")) == sorted([light, old])
    start = (now - timedelta(days=200)).isoformat().replace("+00:00", "Z")
    assert set(numbers(f"start_date={start}")) == {light, wages, old}
    end = (now - timedelta(days=1, hours=12)).isoformat()
    assert numbers(f"start_date={start}&end_date={end.replace('+', '%2B')}") == [light, old]
    closed = api.get("requests.json?status=closed").data_json[0]
    assert closed["status_notes"] == "已回访" and closed["expected_datetime"] is None
    for bad in ("start_date=yesterday", "start_date=2026-11-01T00:00:00", "status=pending"):
        response = api.get(f"requests.json?{bad}")
        assert response.status_code == 400 and response.data_json[0]["code"] == 400
    assert api.get("requests.json?service_code=no.such").status_code == 404
    root = ET.fromstring(api.get("requests.xml").data)
    assert root.tag == "service_requests" and [r.find("service_request_id").text for r in root] == [wages, light]


def test_a_request_is_inside_the_window_its_shown_time_names(region, api):
    created = utcnow().replace(microsecond=700_000) - timedelta(minutes=5)
    number = load(region, new_ticket(region, "阳光花园路灯不亮", created, "o1")).number
    [shown] = api.get(f"requests/{number}.json").data_json
    moment = shown["requested_datetime"].replace("+", "%2B")
    assert [r["service_request_id"] for r in api.get(f"requests.json?start_date={moment}").data_json] == [number]
    assert [r["service_request_id"] for r in api.get(f"requests.json?end_date={moment}").data_json] == [number]


def test_long_id_lists_can_be_posted(region, api):
    now = utcnow()
    number = load(region, new_ticket(region, "阳光花园路灯不亮", now, "o1")).number
    ids = [f"{9 * 10**11 + i}" for i in range(1500)] + [number]
    response = api.post("requests.json", data={"service_request_id": ",".join(ids)})
    assert response.status_code == 200 and [r["service_request_id"] for r in response.data_json] == [number]
    xml = api.post("requests.xml", data={"service_request_id": ",".join(ids)})
    assert ET.fromstring(xml.data).find("request/service_request_id").text == number


def test_tokens_name_their_request(region, api, key):
    number = post(api, key, description="路灯不亮").data_json[0]["service_request_id"]
    assert api.get(f"tokens/{number}.json").data_json == [{"service_request_id": number, "token": number}]
    root = ET.fromstring(api.get(f"tokens/{number}.xml").data)
    assert root.find("request/service_request_id").text == number
    assert api.get("tokens/nothing.json").status_code == 404


def test_service_request_updates_show_each_step(region, api, key):
    start = utcnow() - timedelta(seconds=1)
    number = post(api, key, description="路灯不亮").data_json[0]["service_request_id"]
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one()
        apply_action(ticket, "sign", county_admin(), utcnow(), note="内部：已派电工")
        apply_action(ticket, "resolve", county_admin(), utcnow(), note="已更换灯泡")
        db.session.commit()
    query = f"start_date={start.isoformat().replace('+', '%2B')}&end_date={utcnow().isoformat().replace('+', '%2B')}"
    updates = api.get(f"servicerequestupdates.json?{query}&api_key=").data_json
    assert [(u["service_request_id"], u["status"]) for u in updates] == [
        (number, "ACTION_SCHEDULED"),
        (number, "FIXED"),
    ]
    assert updates[0]["description"] == "已签收"  # the sign note is internal
    assert updates[1]["description"] == "已更换灯泡" and updates[1]["external_status_code"] == "resolved"
    root = ET.fromstring(api.get(f"servicerequestupdates.xml?{query}").data)
    assert root.tag == "service_request_updates"
    assert [u.find("status").text for u in root.findall("request_update")] == ["ACTION_SCHEDULED", "FIXED"]
    later = utcnow() + timedelta(minutes=1)
    assert api.get(f"servicerequestupdates.json?start_date={later.isoformat().replace('+', '%2B')}").data_json == []


def test_jurisdiction_id_as_fixmystreet_sends_it(region, api, key):
    region.config["OPEN311_JURISDICTION"] = "demo.county"
    try:
        assert api.get("services.json?jurisdiction_id=demo.county").status_code == 200
        assert api.get("services.json?jurisdiction_id=").status_code == 200  # sent empty when unset
        wrong = api.get("requests.json?jurisdiction_id=other.city")
        assert wrong.status_code == 404 and "jurisdiction_id" in wrong.data_json[0]["description"]
        assert post(api, key, description="路灯不亮", jurisdiction_id="demo.county").status_code == 201
        assert post(api, key, description="路灯不亮", jurisdiction_id="other.city").status_code == 404
    finally:
        region.config["OPEN311_JURISDICTION"] = ""


def test_errors_outside_the_handlers_are_in_the_spec_format(region, api, client):
    for path, status in (("nothing.json", 404), ("requests/1/extra.json", 404), ("services.csv", 404)):
        response = api.get(path)
        assert response.status_code == status and response.data_json[0]["code"] == status, path
    xml = api.get("nothing.xml")
    assert xml.status_code == 404 and ET.fromstring(xml.data).find("error/code").text == "404"
    for method in ("PUT", "DELETE", "PATCH"):
        response = api.open(method, "requests.json")
        assert response.status_code == 405 and response.data_json[0]["code"] == 405
        assert "POST" in response.headers["Allow"]
    assert ET.fromstring(api.open("DELETE", "requests.xml").data).tag == "errors"
    assert client.get("/no-such-page").mimetype == "text/html"  # other paths keep the default page
    huge = api.post("requests.json", data={"description": "长" * 1024 * 1024})
    assert huge.status_code == 413 and huge.data_json[0]["code"] == 413


def test_a_body_that_is_not_utf8_gets_a_clear_400(region, api, key):
    body = f"api_key={key}&service_code={LIGHTS}&address_string=%D1%F4%B9%E2&description=abc".encode()
    response = api.post("requests.json", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "UTF-8" in response.data_json[0]["description"]
    raw = api.post(
        "requests.json", data=b"description=\xb5&api_key=x", content_type="application/x-www-form-urlencoded"
    )
    assert raw.status_code == 400 and "UTF-8" in raw.data_json[0]["description"]
    assert api.get("requests.json?status=%FF").status_code == 400


def test_open311_reports_never_merge_across_service_codes(region, api, key):
    first = post(api, key, description="阳光花园3号楼门口路灯不亮，很危险")
    number = first.data_json[0]["service_request_id"]
    same = post(api, key, description="阳光花园3号楼门口的路灯坏了不亮，很危险", device_id="d2").data_json[0]
    assert same["service_request_id"] == number and "并入" in same["service_notice"]
    other = post(
        api,
        key,
        service_code="urban.sanitation",
        description="阳光花园3号楼门口路灯不亮，很危险",
        device_id="d3",
    ).data_json[0]
    assert other["service_request_id"] != number and "已受理" in other["service_notice"]
    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one()
        ticket.subcategory = "物业管理"  # staff re-filed it under another service of the same first level
        db.session.commit()
    refiled = post(api, key, description="阳光花园3号楼门口路灯不亮，很危险", device_id="d4").data_json[0]
    assert refiled["service_request_id"] != number


def test_the_reporters_name_is_masked_where_the_text_repeats_it(region, api, key):
    response = post(api, key, description="我是王小明，家门口路灯不亮\x0b已经三天", first_name="小明", last_name="王")
    number = response.data_json[0]["service_request_id"]
    [request] = api.get(f"requests/{number}.json").data_json
    assert "王小明" not in request["description"] and "王**" in request["description"]
    root = ET.fromstring(api.get(f"requests/{number}.xml").data)  # a control character would break XML
    assert "已经三天" in root.find("request/description").text
