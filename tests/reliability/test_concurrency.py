"""Two of everything at the same instant: the state machine stays consistent by locks, not luck.

Each case starts two threads on a barrier (two workers, two sweeps, two staff members), each with its own
database session, and repeats ROUNDS times. PostgreSQL serialises them with row locks (FOR UPDATE, SKIP
LOCKED for sweeps); SQLite with its single writer lock. Afterwards every ticket, event and message exists
once.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from datetime import timedelta

from delivery.outbox import deliver_many, deliver_outbox
from handlers.parsing import get_parser
from jobs.intake import process_batch
from models import ApiToken, InboundMessage, Outbox, Ticket, TicketEvent, User, db, hash_token, utcnow
from tests.support import figures
from tests.support.harness import post_push, resident_pushes
from workflow.sweep import run_sweep
from workflow.tickets import create_ticket

ROUNDS = 10


def together(app, *calls):
    """Run each call in its own thread and app context, released at the same instant; return results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        with app.app_context():
            try:
                barrier.wait()
                results[index] = call()
            except Exception as exc:  # noqa: BLE001 - reported to the test as a result
                db.session.rollback()
                results[index] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_workers_on_the_same_message_make_one_ticket_and_one_reply(region, fake_api):
    client = region.test_client()
    pushes = resident_pushes(ROUNDS, "Twin", first_msg_id=9_700_000)
    for openid, query, body in pushes:
        assert post_push(client, query, body).get_data(as_text=True) == "success"
        with region.app_context():
            inbound_id = db.session.execute(db.select(InboundMessage.id).filter_by(sender=openid)).scalar_one()
        together(region, lambda i=inbound_id: process_batch([i]), lambda i=inbound_id: process_batch([i]))
    with region.app_context():
        reporters = Counter(
            r for (r,) in db.session.execute(db.select(db.text("external_id FROM ticket_reporters"))).all()
        )
        ack_rows = Counter(
            r for (r,) in db.session.execute(db.select(Outbox.recipient).filter_by(channel="mp", kind="ack")).all()
        )
    sends = Counter(call.body["touser"] for call in fake_api.sent())
    openids = [openid for openid, _, _ in pushes]
    doubled = sum(1 for o in openids if reporters[o] > 1 or ack_rows[o] > 1 or sends[o] > 1)
    lost = sum(1 for o in openids if reporters[o] == 0 or sends[o] == 0)
    figures.record(
        "fault",
        "two workers process the same message at once",
        tried=ROUNDS,
        lost=lost,
        doubled=doubled,
        test="tests/reliability/test_concurrency.py",
    )
    assert doubled == 0 and lost == 0, (reporters, ack_rows, sends)


def test_two_deliveries_of_one_message_send_it_once(app, fake_api):
    with app.app_context():
        ids = []
        for index in range(ROUNDS * 2):
            row = Outbox(
                channel="mp",
                recipient=f"oDeliver{index}",
                kind="ack",
                payload={"text": "您好"},
                dedup_key=f"rel-deliver-{index}",
            )
            db.session.add(row)
            db.session.flush()
            ids.append(row.id)
        db.session.commit()
    for index, outbox_id in enumerate(ids):
        if index % 2:  # a retry job and a batch racing for the same row
            together(app, lambda i=outbox_id: deliver_outbox(i), lambda i=outbox_id: deliver_many([i]))
        else:  # two retry jobs (a recovery sweep re-enqueued a job that was still running)
            together(app, lambda i=outbox_id: deliver_outbox(i), lambda i=outbox_id: deliver_outbox(i))
    sends = Counter(call.body["touser"] for call in fake_api.sent())
    doubled = sum(1 for index in range(len(ids)) if sends[f"oDeliver{index}"] > 1)
    lost = sum(1 for index in range(len(ids)) if sends[f"oDeliver{index}"] == 0)
    figures.record(
        "fault",
        "two delivery jobs send the same reply at once",
        tried=len(ids),
        lost=lost,
        doubled=doubled,
        test="tests/reliability/test_concurrency.py",
    )
    assert doubled == 0 and lost == 0, sends


def _overdue_tickets(app, count: int) -> list[int]:
    created = utcnow() - timedelta(days=30)
    with app.app_context():
        parser = get_parser(app.instance_path)
        ids = []
        for index in range(count):
            demand = parser.parse(f"阳光花园{index % 9 + 1}号楼门口路灯不亮好几天了（{index}）")
            ticket = create_ticket(
                demand=demand,
                channel="mp",
                now=created,
                reporter_channel="mp",
                reporter_id=f"oSweep{index}",
                actor=f"resident:oSweep{index}",
            )
            ids.append(ticket.id)
        db.session.commit()
    return ids


def test_two_sweeps_at_once_act_on_each_ticket_once(region):
    ticket_ids = _overdue_tickets(region, 40)
    now = utcnow()
    results = together(region, lambda: run_sweep(now), lambda: run_sweep(now))
    assert not any(isinstance(r, Exception) for r in results), results
    with region.app_context():
        events = Counter(
            (ticket_id, kind)
            for ticket_id, kind in db.session.execute(
                db.select(TicketEvent.ticket_id, TicketEvent.kind).filter(TicketEvent.ticket_id.in_(ticket_ids))
            ).all()
        )
        levels = dict(
            db.session.execute(db.select(Ticket.id, Ticket.escalation_level).filter(Ticket.id.in_(ticket_ids))).all()
        )
    acted = Counter()
    for counts, _ in results:
        acted.update(counts)
    sweep_kinds = {"reminded", "escalate", "overdue"}
    doubled = sum(1 for (_, kind), n in events.items() if kind in sweep_kinds and n > 1)
    untouched = sum(1 for ticket_id in ticket_ids if not any(events[(ticket_id, k)] for k in sweep_kinds))
    figures.record(
        "fault",
        "two deadline sweeps at once",
        tried=len(ticket_ids),
        lost=untouched,
        doubled=doubled,
        note=f"actions: {dict(acted)}",
        test="tests/reliability/test_concurrency.py",
    )
    assert doubled == 0 and untouched == 0, (events, acted)
    assert all(level <= 1 for level in levels.values()), levels


def _staff_token(app, name: str) -> str:
    token = secrets.token_urlsafe(16)
    with app.app_context():
        root = db.session.execute(db.text("SELECT code FROM region_nodes WHERE parent_id IS NULL")).scalar_one()
        user = User(username=name, role="staff", region_code=root)
        db.session.add_all([user, ApiToken(user=user, token_hash=hash_token(token))])
        db.session.commit()
    return token


def test_two_staff_acting_at_once_one_wins_the_other_is_told(region):
    tokens = [_staff_token(region, "staff-a"), _staff_token(region, "staff-b")]
    ticket_ids = _overdue_tickets(region, ROUNDS)
    outcomes: Counter = Counter()
    doubled = 0
    for ticket_id in ticket_ids:
        for action, body in (("sign", {"action": "sign"}), ("resolve", {"action": "resolve", "note": "已修复"})):
            clients = [region.test_client(), region.test_client()]
            answers = together(
                region,
                *(
                    lambda c=c, t=t, url=f"/api/tickets/{ticket_id}/actions", body=body: c.post(
                        url, json=body, headers={"Authorization": f"Bearer {t}"}
                    ).status_code
                    for c, t in zip(clients, tokens, strict=True)
                ),
            )
            outcomes[(action, tuple(sorted(map(str, answers))))] += 1
            with region.app_context():
                done = db.session.execute(
                    db.select(db.func.count(TicketEvent.id)).filter_by(ticket_id=ticket_id, kind=action)
                ).scalar_one()
            doubled += done != 1
    figures.record(
        "fault",
        "two staff members act on one ticket at once (sign, resolve)",
        tried=len(ticket_ids) * 2,
        doubled=doubled,
        note=", ".join(f"{a} {'/'.join(s)}: {n}" for (a, s), n in sorted(outcomes.items())),
        test="tests/reliability/test_concurrency.py",
    )
    assert doubled == 0, outcomes
    assert set(outcomes) == {("sign", ("200", "409")), ("resolve", ("200", "409"))}, outcomes
