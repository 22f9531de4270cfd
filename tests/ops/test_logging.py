"""LOG_FORMAT=json: one JSON object per line with the request id (echoed as X-Request-Id) or the RQ job id."""

from __future__ import annotations

import io
import json
import logging

import pytest

from models import Outbox, db
from ops.logs import install_handler


@pytest.fixture
def json_log(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOG_FORMAT", "json")
    handler = install_handler(app.config)
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)
    monkeypatch.setitem(app.config, "LOG_FORMAT", "text")
    install_handler(app.config)


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_request_lines_carry_the_request_id_and_answers_echo_it(app, json_log):
    client = app.test_client()
    response = client.post(
        "/wechat/mp?signature=bad&timestamp=1&nonce=1", data=b"<xml/>", headers={"X-Request-Id": "req-42.a"}
    )
    assert response.headers["X-Request-Id"] == "req-42.a"
    refused = [entry for entry in lines(json_log) if "refused" in entry["message"]]
    assert refused and refused[0]["request_id"] == "req-42.a" and refused[0]["level"] == "WARNING"
    assert refused[0]["status"] == 403  # extra={...} fields become keys
    generated = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert generated != "bad id with spaces" and len(generated) == 16


def test_job_lines_carry_the_job_id(app, json_log, run_jobs):
    from delivery.outbox import enqueue_delivery

    with app.app_context():
        row = Outbox(channel="nowhere", recipient="x", kind="ack", payload={"text": "t"}, dedup_key="log-job-1")
        db.session.add(row)
        db.session.commit()
        enqueue_delivery(row.id)
        outbox_id = row.id
    run_jobs()
    failed = [entry for entry in lines(json_log) if "failed permanently" in entry["message"]]
    assert failed and failed[0]["job_id"] == f"outbox-{outbox_id}"


def test_text_format_stays_the_default(app):
    handler = install_handler(app.config)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    for log_filter in handler.filters:
        log_filter.filter(record)
    assert handler.format(record).endswith("x: hello world")
