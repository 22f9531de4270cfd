"""Complaints about officials (纪检监察, and any category config/routing.yaml marks `sensitive`) go to the
office configured for them and stay invisible to the grid and village teams below it: in queues, the API,
digests, group notices and officers' queries alike. And WeCom, like the official account in safe mode,
never takes a plaintext body."""

from __future__ import annotations

from datetime import timedelta

from models import Outbox, Ticket, db, node_by_code, utcnow
from tests.support.broadcasts import auth, token_for
from tests.support.wecom_push import app_push, app_text_xml, wecom_settings
from tests.web.console.helpers import new_ticket, signed_in
from workflow.digest import digest_markdown
from workflow.policy import sensitive_rules
from workflow.rules.routing import load_routing

COMPLAINT = "实名举报东大社区网格员在阳光花园拆迁中收受贿赂，向纪委反映"


def _complaint(app) -> Ticket:
    ticket_id = new_ticket(app, COMPLAINT, utcnow() - timedelta(hours=1), "oWhistle")
    with app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        _ = ticket.reporters
        return ticket


def test_the_routing_file_marks_the_category_and_the_complaint_goes_to_the_county(region):
    with region.app_context():
        assert [r.category for r in sensitive_rules()] == ["纪检监察"]
    ticket = _complaint(region)
    assert ticket.category == "纪检监察" and ticket.owner_code == "990100" and ticket.closable_tier == "county"


def test_an_office_node_can_be_configured(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("rules:\n  - {category: 纪检监察, sensitive: true, office: '990100', closable_tier: county}\n")
    [rule] = load_routing(path).rules
    assert rule.sensitive and rule.office == "990100"
    path.write_text("rules:\n  - {category: 纪检监察, sensitive: true}\n")
    try:
        load_routing(path)
    except ValueError as exc:
        assert "tier or an office" in str(exc)
    else:
        raise AssertionError("a sensitive rule without a tier or office was accepted")


def test_teams_below_the_office_do_not_see_it_anywhere(region, client):
    ticket = _complaint(region)
    for region_code in ("990101", "990101001", "990101001001"):
        headers = auth(token_for(region, "staff", region_code))
        assert client.get(f"/api/tickets/{ticket.id}", headers=headers).status_code == 404
        listed = client.get("/api/tickets?limit=200", headers=headers).get_json()["tickets"]
        assert ticket.id not in [t["id"] for t in listed]
        key = token_for(region, "staff", region_code)
        assert client.get(f"/open311/v2/requests/{ticket.number}.json?api_key={key}").status_code == 404
    town, _ = signed_in(region, "liuhm", "staff", "990101")
    assert ticket.number not in town.get("/console/?status=all").get_data(as_text=True)
    assert town.get(f"/console/tickets/{ticket.id}").status_code == 404
    county, _ = signed_in(region, "chenlx", "admin", "990100")
    assert county.get(f"/console/tickets/{ticket.id}").status_code == 200
    with region.app_context():
        groups = db.session.execute(db.select(Outbox.payload).filter(Outbox.ticket_id == ticket.id)).scalars().all()
        assert {p.get("node") for p in groups if p and p.get("node")} <= {"990100"}  # the county's group only
        town_digest = digest_markdown(node_by_code("990101"), utcnow())
        county_digest = digest_markdown(node_by_code("990100"), utcnow())
    assert '近24小时新增：<font color="info">0</font>' in town_digest
    assert '近24小时新增：<font color="info">1</font>' in county_digest


def test_a_grid_officer_cannot_query_or_close_it_through_wecom(region, client, fake_api, run_jobs, monkeypatch):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(region.config, key, value)
    ticket = _complaint(region)
    for n, text in enumerate(
        (f"查询 {ticket.number}", "查询", f"签收 {ticket.number}", f"办结 {ticket.number} 举报不实")
    ):
        query, body = app_push(app_text_xml("zhangwy", text, 6_100_000 + n))
        assert client.post(f"/wechat/work?{query}", data=body, content_type="text/xml").status_code == 200
    run_jobs()
    sent = [c.body["text"]["content"] for c in fake_api.sent("/cgi-bin/message/send") if c.body["touser"] == "zhangwy"]
    assert sent and all(ticket.number not in text or "没有找到" in text for text in sent)
    with region.app_context():
        assert db.session.get(Ticket, ticket.id).status == "assigned"


def test_wecom_refuses_a_plaintext_body(region, client, monkeypatch):
    from models import InboundMessage

    for key, value in wecom_settings().items():
        monkeypatch.setitem(region.config, key, value)
    query, _ = app_push(app_text_xml("zhangwy", "x", 6_200_000))
    plain = app_text_xml("zhangwy", "签收 261204000001", 6_200_001).encode()
    response = client.post(f"/wechat/work?{query}", data=plain, content_type="text/xml")
    assert 400 <= response.status_code < 500
    with region.app_context():
        assert db.session.execute(db.select(InboundMessage)).first() is None
