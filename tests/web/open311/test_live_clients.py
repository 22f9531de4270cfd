"""Open311 as a third-party developer meets it: the real `georeport` client from PyPI (and `requests` for
what georeport cannot do: it has no POST) against the service under gunicorn with the launcher's settings,
on loopback. Every JSON answer is validated against schemas/."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
import requests
from georeport import GeoReport

from models import Ticket, User, db, utcnow
from scripts.launch import gunicorn_settings
from tests.support.broadcasts import token_for
from tests.support.harness import BIN, PROJECT, free_port, wait_for, worker_env
from tests.web.open311.schema_check import validate
from workflow.policy import staff_actor
from workflow.transitions import apply_action

LIGHTS = "urban.municipal-facilities"
UTILITIES = "urban.utilities"


def county_admin():
    return staff_actor(User(username="t", role="admin", region_code="990100"), "console")


@pytest.fixture(scope="module")
def server(database_url, redis_url, fake_api, tmp_path_factory):
    """gunicorn serving the app on a free loopback port, with config/gunicorn.py as the launcher passes it."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("open311-live")
    env = worker_env(database_url, redis_url, fake_api.base_url, INSTANCE_PATH=str(workdir), SECRET_KEY="live-test")
    log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    settings = gunicorn_settings({"WEB_CONCURRENCY": "1", "WEB_THREADS": "4"})
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", *settings, "--timeout", "60", "app:create_app()"],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/open311/v2"

    def up() -> bool:
        try:
            return requests.get(f"{base}/discovery.json", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, timeout=60, what="gunicorn")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def post_like_fixmystreet(base: str, key: str, fmt: str = "json", **form) -> requests.Response:
    """A form POST as FixMyStreet's Open311.pm sends it (georeport has no POST method)."""
    return requests.post(f"{base}/requests.{fmt}", data={"api_key": key, **form}, timeout=60)


def test_georeport_lists_reads_posts_and_filters(region, server):
    key = token_for(region, "staff", "990101")
    client = GeoReport(server)  # no api_key: reads are public
    services = client.get_service_list()
    validate(services, "services")
    assert {"service_code": LIGHTS, "service_name": "市政设施", "group": "城乡建设"}.items() <= next(
        s for s in services if s["service_code"] == LIGHTS
    ).items()
    definition = client.get_service_definition(UTILITIES)
    validate(definition, "service_definition")
    assert [a["code"] for a in definition["attributes"]] == ["utility", "households"]

    before = utcnow() - timedelta(seconds=1)
    posted = post_like_fixmystreet(
        server,
        key,
        service_code=LIGHTS,
        description="title: 路灯不亮\n\ndetail: 阳光花园3号楼门口路灯不亮\n\nurl: https://fms.example.org/report/7",
        lat="30.5012",
        long="114.3021",
        email="resident@example.org",
        first_name="Ann",
        last_name="Lee",
        media_url="https://fms.example.org/photo/7.full.jpeg",
        **{"attribute[facility]": "streetlight", "attribute[report_url]": "https://fms.example.org/report/7"},
    )
    assert posted.status_code == 201, posted.text
    validate(posted.json(), "post_response")
    number = posted.json()[0]["service_request_id"]

    request = client.get_service_request(number)
    validate([request], "service_requests")
    assert request["service_code"] == LIGHTS and request["status"] == "open"
    assert request["media_url"] == "https://fms.example.org/photo/7.full.jpeg"
    assert request["description"].startswith("title: 路灯不亮\n\ndetail:")
    assert "resident@example.org" not in str(request) and "Lee" not in str(request)

    with region.app_context():
        ticket = db.session.execute(db.select(Ticket).filter_by(number=number)).scalar_one()
        apply_action(ticket, "sign", county_admin(), utcnow())
        apply_action(ticket, "resolve", county_admin(), utcnow(), note="已更换灯泡")
        db.session.commit()
    after = utcnow() + timedelta(seconds=1)
    window = {"start_date": before.isoformat(), "end_date": after.isoformat()}
    closed = client.get_service_requests(status="closed", **window)
    validate(closed, "service_requests")
    assert [(r["service_request_id"], r["status_notes"]) for r in closed] == [(number, "已更换灯泡")]
    assert client.get_service_requests(status="open", **window) == []
    earlier = {"start_date": (before - timedelta(days=3)).isoformat(), "end_date": before.isoformat()}
    assert client.get_service_requests(**earlier) == []
    by_code = client.get_service_requests(service_code=LIGHTS, **window)
    assert [r["service_request_id"] for r in by_code] == [number]

    updates = requests.get(f"{server}/servicerequestupdates.json", params={**window, "api_key": ""}, timeout=30)
    validate(updates.json(), "service_request_updates")
    assert [u["status"] for u in updates.json()] == ["ACTION_SCHEDULED", "FIXED"]


def test_georeport_in_xml(region, server):
    key = token_for(region, "staff", "990101")
    posted = post_like_fixmystreet(
        server, key, "xml", service_code=UTILITIES, address_string="阳光花园", **{"attribute[utility]": "water"}
    )
    assert posted.status_code == 201, posted.text
    number = ET.fromstring(posted.content).find("request/service_request_id").text
    client = GeoReport(server, output_format="xml")
    services = client.get_service_list()
    assert len(services) > 100 and any(s["service_code"] == UTILITIES for s in services)
    definition = client.get_service_definition(UTILITIES)
    assert definition["attributes"]["attribute"][0]["code"] == "utility"
    request = client.get_service_request(number)
    assert request["service_code"] == UTILITIES and request["attributes"] == {"utility": "water"}
    assert request["lat"] is None and request["media_url"] is None  # empty elements
    listed = client.get_service_requests(service_request_id=number)
    assert listed["service_request_id"] == number  # xmltodict: one <request> is a dict


def test_long_id_lists_and_spec_errors_through_gunicorn(region, server):
    key = token_for(region, "staff", "990101")
    number = post_like_fixmystreet(server, key, service_code=LIGHTS, address_string="阳光花园").json()[0][
        "service_request_id"
    ]
    ids = [f"{9 * 10**11 + i}" for i in range(450)] + [number]
    response = requests.get(f"{server}/requests.xml", params={"service_request_id": ",".join(ids)}, timeout=30)
    assert len(response.request.url) > 4094  # gunicorn's default request-line limit
    assert response.status_code == 200 and f"<service_request_id>{number}</service_request_id>" in response.text
    for method, path, status in (("PUT", "requests.json", 405), ("GET", "nothing.json", 404)):
        answer = requests.request(method, f"{server}/{path}", timeout=30)
        assert answer.status_code == status
        validate(answer.json(), "errors")
    body = f"api_key={key}&service_code={LIGHTS}&address_string=%D1%F4%B9%E2".encode()
    refused = requests.post(
        f"{server}/requests.json",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert refused.status_code == 400 and "UTF-8" in refused.json()[0]["description"]
