"""Who follows the account, as the intake sees it: whoever writes follows; a resident who joins a duplicate
is placed in its grid; after an unsubscribe nothing is sent to them, staff actions included."""

from __future__ import annotations

from datetime import UTC, datetime

from models import Outbox, OutboxStatus, Resident, TicketEvent, db
from tests.handlers.test_intake_flow import acks, push, tickets
from tests.support.wechat_push import event_xml, text_xml
from tests.workflow.test_stories import act


def _resident(app, openid: str) -> Resident:
    with app.app_context():
        resident = db.session.execute(db.select(Resident).filter_by(openid=openid)).scalar_one()
        db.session.expunge(resident)
        return resident


def test_joining_a_duplicate_places_the_resident_in_its_grid(region, client, run_jobs):
    push(client, text_xml("oFirst", "幸福里小区3号楼门口路灯不亮", 61001))
    run_jobs()
    with region.app_context():  # the second reporter was never placed (say, a follower synced from user/get)
        db.session.add(Resident(openid="oSecond"))
        db.session.commit()
    push(client, text_xml("oSecond", "幸福里小区3号楼门口的路灯坏了不亮", 61002))
    run_jobs()
    [ticket] = tickets(region)
    assert {r.external_id for r in ticket.reporters} == {"oFirst", "oSecond"}
    assert ticket.grid_code and _resident(region, "oSecond").grid_code == ticket.grid_code


def test_a_resident_marked_unsubscribed_who_writes_is_a_follower_again(region, client, run_jobs):
    with region.app_context():
        db.session.add(Resident(openid="oReturns", subscribed=False, unsubscribed_at=datetime(2026, 1, 1, tzinfo=UTC)))
        db.session.commit()
    push(client, text_xml("oReturns", "西环路农贸市场门口垃圾堆了好几天没人清理", 61101))
    run_jobs()
    assert _resident(region, "oReturns").subscribed is True


def test_after_unsubscribe_nothing_is_sent_and_staff_see_why(region, client, fake_api, run_jobs):
    push(client, text_xml("oLeaves", "东大小学门口的井盖丢了", 61201))
    run_jobs()
    [ticket] = tickets(region)
    assert len(acks(fake_api, "oLeaves")) == 1
    push(client, event_xml("oLeaves", "unsubscribe"))
    run_jobs()
    assert _resident(region, "oLeaves").subscribed is False
    sent_before = len(fake_api.calls)

    act(region, ticket.id, "sign", datetime.now(UTC))
    act(region, ticket.id, "resolve", datetime.now(UTC), note="已补装井盖")
    run_jobs()

    to_resident = [
        c
        for c in fake_api.calls[sent_before:]
        if c.path in ("/cgi-bin/message/custom/send", "/cgi-bin/message/template/send")
        and c.body.get("touser") == "oLeaves"
    ]
    assert to_resident == []
    with region.app_context():
        statuses = db.session.execute(
            db.select(Outbox.kind, Outbox.status).filter_by(recipient="oLeaves", ticket_id=ticket.id)
        ).all()
        skipped_events = (
            db.session.execute(db.select(TicketEvent.data).filter_by(ticket_id=ticket.id, kind="notify_skipped"))
            .scalars()
            .all()
        )
    later = [status for kind, status in statuses if kind != "ack"]
    assert later and set(later) == {OutboxStatus.SKIPPED}
    assert len(skipped_events) == len(later) and all(e["reason"] == "unsubscribed" for e in skipped_events)
