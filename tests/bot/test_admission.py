"""Group commit of webhook pushes: concurrent requests share a batch, and a batch never loses or doubles."""

from __future__ import annotations

import threading
import time

import pytest
from redis import Redis

from bot import admission
from bot.messages import InboundPush
from jobs.intake import PENDING_KEY
from models import InboundMessage, db
from tests.support.wechat_push import encrypted_push, text_xml


def stored_keys(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(db.select(InboundMessage.dedup_key).order_by(InboundMessage.id)).scalars())


def push(key: str, payload: dict | None = None) -> admission._Pending:
    message = InboundPush("mp", key, f"o{key}", "text", "阳光花园路灯坏了", payload or {"Content": "阳光花园路灯坏了"})
    return admission._Pending(message, "127.0.0.1", admission._Wakeup())


def test_concurrent_pushes_and_their_retries_are_stored_and_queued_once(app, redis):
    """24 threads post 12 distinct pushes, each twice at the same moment (WeChat's retry racing the first)."""
    pushes = [encrypted_push(text_xml(f"oRace{i:02d}", f"幸福里{i}号楼漏水", msg_id=61_000 + i)) for i in range(12)]
    start = threading.Barrier(24)
    answers: list[str] = []
    lock = threading.Lock()

    def post(query: str, body: bytes) -> None:
        client = app.test_client()
        start.wait()
        answer = client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").get_data(as_text=True)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=post, args=pushes[i % 12]) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == ["success"] * 24
    assert sorted(stored_keys(app)) == sorted(f"msg:{61_000 + i}" for i in range(12))
    queued = [int(value) for value in redis.lrange(PENDING_KEY, 0, -1)]
    assert len(queued) == len(set(queued)) == 12


def test_a_burst_larger_than_a_batch_is_answered_in_full(app, monkeypatch):
    """20 pushes at once with room for 3 per batch: a wake-up shared by pushes split over several batches
    fires only when the last of them is stored, and then wakes all of their requests. A lost wake-up would
    leave its requests waiting out STORE_TIMEOUT, set far above what storing 20 pushes takes."""
    monkeypatch.setattr(admission, "MAX_BATCH", 3)
    monkeypatch.setattr(admission, "STORE_TIMEOUT", 30.0)
    pushes = [encrypted_push(text_xml(f"oSpan{i:02d}", f"书香苑{i}号楼停电", msg_id=62_000 + i)) for i in range(20)]
    start = threading.Barrier(20)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def post(query: str, body: bytes) -> None:
        client = app.test_client()
        start.wait()
        response = client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml")
        with lock:
            answers.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=post, args=p) for p in pushes]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert answers == [(200, "success")] * 20
    assert time.monotonic() - started < 15, "a request waited out STORE_TIMEOUT: its wake-up never fired"
    assert sorted(stored_keys(app)) == sorted(f"msg:{62_000 + i}" for i in range(20))


def test_one_push_the_database_refuses_does_not_fail_the_rest_of_its_batch(app):
    batch = [push("ok-1"), push("bad", {"unserialisable": object()}), push("ok-2"), push("ok-1")]
    with app.app_context():
        admission._write(batch)
        db.session.remove()
    first, bad, second, retry = batch
    assert first.done and first.error is None and first.outcome[1] is True
    assert bad.done and bad.error is not None
    assert second.done and second.outcome[1] is True
    # The copy of ok-1 in the same batch is the platform's retry: same row, not new.
    assert retry.done and retry.outcome == (first.outcome[0], False)
    assert sorted(stored_keys(app)) == ["ok-1", "ok-2"]


def test_with_redis_unreachable_the_batch_is_stored_and_answered(app, monkeypatch):
    """Stored is what matters; the recovery sweep queues the rows once Redis is back."""
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "redis", dead)
    batch = [push("r-1"), push("r-2")]
    with app.app_context():
        admission._write(batch)
        db.session.remove()
    assert [(p.done, p.error) for p in batch] == [(True, None), (True, None)]
    assert sorted(stored_keys(app)) == ["r-1", "r-2"]


def test_a_request_whose_push_is_never_written_gets_an_error_not_a_success(app, monkeypatch):
    monkeypatch.setattr(admission, "STORE_TIMEOUT", 0.2)

    class Stalled:
        def put(self, push, ip) -> admission._Pending:  # a writer that never answers
            return admission._Pending(push, ip, admission._Wakeup())

    monkeypatch.setattr(admission, "_writer", lambda app: Stalled())
    with app.test_request_context("/wechat/mp"), pytest.raises(TimeoutError):
        admission.store_and_enqueue(push("stalled").push)
