"""GET /metrics: Prometheus text format with inbound by channel, queue depth and age, job failures,
outbound errors by errcode and overdue tickets."""

from __future__ import annotations

import re
from datetime import timedelta

from models import Outbox, Ticket, db, utcnow
from tests.conftest import drain
from tests.support.wechat_push import encrypted_push, text_xml

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$')


def scrape(client, **headers) -> dict[str, float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for line in response.get_data(as_text=True).splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$", line), line
            continue
        assert SAMPLE.match(line), f"not Prometheus text format: {line!r}"
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_metrics_count_inbound_queues_failures_errcodes_and_overdue_tickets(app, region, fake_api, redis):
    client = app.test_client()
    for i in range(3):
        query, body = encrypted_push(text_xml(f"oMetric{i}", "阳光花园3号楼路灯坏了", msg_id=99_100 + i))
        client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml")
    client.post("/wechat/mp?signature=bad&timestamp=1&nonce=1", data=b"<xml/>")
    before = scrape(client)
    assert before['civic_inbound_total{channel="mp"}'] == 3
    assert before['civic_inbound_refused_total{channel="mp",status="403"}'] == 1
    assert before["civic_intake_pending"] == 3
    assert before['civic_queue_depth{queue="intake"}'] == 1
    assert before['civic_queue_oldest_age_seconds{queue="intake"}'] >= 0
    assert before['civic_inbound_messages{channel="mp",status="received"}'] == 3
    fake_api.fail_next("/cgi-bin/message/custom/send", (200, {"errcode": 45015, "errmsg": "out of time"}))
    drain(app)
    with app.app_context():
        ticket = db.session.execute(db.select(Ticket)).scalars().first()
        ticket.due_at = utcnow() - timedelta(hours=1)
        db.session.commit()
    after = scrape(client)
    assert after['civic_outbound_errors_total{channel="mp",errcode="45015"}'] == 1
    assert after['civic_outbox_messages{channel="mp",status="failed"}'] == 1
    assert after['civic_inbound_messages{channel="mp",status="processed"}'] == 3
    assert after["civic_tickets_overdue"] >= 1
    assert after['civic_jobs_failed{queue="delivery"}'] == 0
    assert after['civic_up{dependency="database"}'] == 1 and after['civic_up{dependency="redis"}'] == 1
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Outbox.id))).scalar_one() >= 3


def test_metrics_can_require_a_token(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-me-please")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, Authorization="Bearer scrape-me-please")['civic_up{dependency="redis"}'] == 1
