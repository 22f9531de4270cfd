"""The permission matrix, end to end: every role × relation to the ticket × action × channel in
workflow.policy.PERMISSIONS is tried through its real channel (the staff API, the console, Open311, a WeCom
push, an official-account push), and must be allowed or refused exactly as the table says. Every refusal
leaves the ticket as it was and tells nobody. docs/security.md prints the same table; the last test checks
it is current (it compares, it never rewrites the tracked file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.parsing import get_parser
from models import Outbox, Ticket, TicketEvent, TicketHandler, TicketReporter, TicketStatus, db, utcnow
from tests.support.broadcasts import auth, token_for
from tests.support.wechat_push import encrypted_push, text_xml
from tests.support.wecom_push import app_push, app_text_xml, wecom_settings
from tests.web.console.helpers import signed_in
from workflow.policy import (
    CHANNELS,
    CO_HANDLER,
    ESCALATED,
    JOINED_REPORTER,
    MEMBER_ROLE,
    OTHER,
    OWN,
    PARENT,
    PERMISSIONS,
    RESIDENT_RELATIONS,
    SENSITIVE,
    SOLE_REPORTER,
    STAFF_RELATIONS,
    STAFF_ROLES,
    STRANGER,
    allowed,
)
from workflow.policy_table import current_matrix, matrix_markdown
from workflow.tickets import create_ticket

S = TicketStatus
GRID, SIBLING_GRID, COMMUNITY, CO_NODE = "990101001001", "990101001002", "990101001", "990101002"
TOWN, OTHER_TOWN, COUNTY = "990101", "990102", "990100"
TEXT = "阳光花园3号楼门口路灯不亮好几天了"
# Where each relation's staff account sits, and which demo member stands in that relation on WeCom.
STAFF_HOME = {OWN: GRID, PARENT: TOWN, CO_HANDLER: CO_NODE, ESCALATED: GRID, OTHER: OTHER_TOWN, SENSITIVE: TOWN}
MEMBER = {OWN: "zhangwy", PARENT: "wangjg", CO_HANDLER: "zhouht", ESCALATED: "zhangwy", OTHER: "huangzh"}
MEMBER[SENSITIVE] = "liuhm"  # the town's staff member: the complaint sits with the county, above her
# The status each action is tried in (where the state machine would accept it).
STATE = {
    "view": S.ASSIGNED,
    "sign": S.ASSIGNED,
    "start": S.SIGNED,
    "resolve": S.SIGNED,
    "request_info": S.ASSIGNED,
    "return": S.ASSIGNED,
    "escalate": S.ASSIGNED,
    "assign": S.ASSIGNED,
    "summon": S.ASSIGNED,
    "merge": S.ASSIGNED,
    "reopen": S.RESOLVED,
    "close": S.RESOLVED,
    "correct": S.ASSIGNED,
}
_msg_ids = iter(range(7_000_000, 8_000_000))


def make_ticket(app, relation: str, status: str, openid: str = "oMatrix") -> tuple[int, str]:
    """A ticket of 东大社区第一网格 that stands in `relation` to that relation's actor, in `status`."""
    with app.app_context():
        demand = get_parser(app.instance_path).parse(TEXT)
        ticket = create_ticket(
            demand=demand, channel="mp", now=utcnow(), reporter_channel="mp", reporter_id=openid, actor="system:test"
        )
        assert ticket.owner_code == GRID and ticket.grid_code == GRID
        if relation == CO_HANDLER:
            db.session.add(TicketHandler(ticket=ticket, node_code=CO_NODE, role="co", sign_due_at=utcnow()))
        elif relation == ESCALATED:
            ticket.owner_code = COMMUNITY
        elif relation == SENSITIVE:
            ticket.category, ticket.subcategory, ticket.owner_code, ticket.closable_tier = (
                "纪检监察",
                None,
                COUNTY,
                "county",
            )
        ticket.status = status
        if status == S.RESOLVED:
            ticket.resolved_at = utcnow()
        db.session.commit()
        return ticket.id, ticket.number


def snapshot(app, ticket_id: int) -> tuple:
    with app.app_context():
        db.session.remove()
        ticket = db.session.get(Ticket, ticket_id)
        events = db.session.execute(db.select(db.func.count()).where(TicketEvent.ticket_id == ticket_id)).scalar_one()
        outbox = db.session.execute(db.select(db.func.count()).where(Outbox.ticket_id == ticket_id)).scalar_one()
        handlers = [(h.node_code, h.status) for h in ticket.handlers]
        withdrawn = [r.withdrawn_at is not None for r in ticket.reporters]
        return ticket.status, ticket.owner_code, ticket.category, events, outbox, handlers, withdrawn


def new_events(app, ticket_id: int, before: tuple) -> list[str]:
    """Kinds of the events written since `before` (a snapshot) was taken."""
    with app.app_context():
        kinds = (
            db.session.execute(
                db.select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
            )
            .scalars()
            .all()
        )
    return list(kinds[before[3] :])


def _params(action: str, home: str, into: str) -> dict:
    return {
        "assign": {"node": home if home != CO_NODE else SIBLING_GRID},
        "summon": {"handlers": [{"node": SIBLING_GRID, "role": "co"}]},
        "merge": {"into": into},
    }.get(action, {})


NOTE_ACTIONS = ("resolve", "request_info", "return", "close")
STAFF_CASES = [
    (channel, role, relation) for channel in ("api", "console") for role in STAFF_ROLES for relation in STAFF_RELATIONS
]


def _try_staff(app, channel, client, headers, csrf, action, ticket_id, number, home, into):
    note = "已核实处理" if action in NOTE_ACTIONS else None
    params = _params(action, home, into)
    if channel == "api":
        if action == "view":
            return client.get(f"/api/tickets/{ticket_id}", headers=headers).status_code
        body = {"action": action, **({"note": note} if note else {}), **params}
        return client.post(f"/api/tickets/{ticket_id}/actions", json=body, headers=headers).status_code
    if action == "view":
        return client.get(f"/console/tickets/{ticket_id}").status_code
    if action == "correct":
        form = {"csrf_token": csrf, "category": "城乡建设", "urgency": "urgent"}
        return client.post(f"/console/tickets/{ticket_id}/correct", data=form).status_code
    form = {"csrf_token": csrf, "action": action, **({"note": note} if note else {})}
    if action == "summon":
        form["node"] = SIBLING_GRID
    elif "node" in params:
        form["node"] = params["node"]
    if "into" in params:
        form["into"] = params["into"]
    return client.post(f"/console/tickets/{ticket_id}/actions", data=form).status_code


@pytest.mark.parametrize(("channel", "role", "relation"), STAFF_CASES)
def test_staff_channels_follow_the_matrix(region, channel, role, relation):
    home = STAFF_HOME[relation]
    if channel == "api":
        client, headers, csrf = region.test_client(), auth(token_for(region, role, home)), None
    else:
        client, csrf = signed_in(region, f"{role}-{relation}", role, home)
        headers = {}
    _, into = make_ticket(region, OWN, S.ASSIGNED, openid="oMergeTarget")
    shared: dict[str, tuple[int, str]] = {}
    for action in CHANNELS[channel][1]:
        allow = allowed(role, relation, action, channel)
        status = STATE[action]
        if allow or status not in shared:
            made = make_ticket(region, relation, status)
            if not allow:
                shared[status] = made
        ticket_id, number = made if allow else shared[status]
        before = snapshot(region, ticket_id)
        code = _try_staff(region, channel, client, headers, csrf, action, ticket_id, number, home, into)
        where = (channel, role, relation, action)
        if allow:
            expected = 200 if channel == "api" or action == "view" else 303
            assert code == expected, where
            if action != "view":
                kind = "corrected" if action == "correct" else action
                assert kind in new_events(region, ticket_id, before), where
        else:
            seen = allowed(role, relation, "view", channel)
            assert code == (403 if seen else 404), where
            assert snapshot(region, ticket_id) == before, where  # unchanged, and nobody told


@pytest.mark.parametrize("role", STAFF_ROLES)
@pytest.mark.parametrize("relation", STAFF_RELATIONS)
def test_open311_reads_follow_the_matrix(region, client, role, relation):
    key = token_for(region, role, STAFF_HOME[relation])
    _, number = make_ticket(region, relation, S.ASSIGNED)
    response = client.get(f"/open311/v2/requests/{number}.json?api_key={key}")
    assert response.status_code == (200 if allowed(role, relation, "view", "open311") else 404)
    listed = client.get(f"/open311/v2/requests.json?api_key={key}").get_json()
    assert (number in [r["service_request_id"] for r in listed]) == allowed(role, relation, "view", "open311")


@pytest.fixture
def wecom(region, monkeypatch):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(region.config, key, value)
    return region


def wecom_replies(fake_api, userid: str) -> list[str]:
    return [
        c.body["text"]["content"]
        for c in fake_api.sent("/cgi-bin/message/send")
        if c.body["touser"] == userid and c.body["msgtype"] == "text"
    ]


@pytest.mark.parametrize("relation", STAFF_RELATIONS)
def test_wecom_officer_commands_follow_the_matrix(wecom, client, fake_api, run_jobs, relation):
    userid = MEMBER[relation]
    words = {"view": "查询 {n}", "sign": "签收 {n}", "resolve": "办结 {n} 已修好，举报不实"}
    for action in CHANNELS["wecom"][1]:
        ticket_id, number = make_ticket(wecom, relation, STATE[action])
        before = snapshot(wecom, ticket_id)
        fake_api.reset()
        query, body = app_push(app_text_xml(userid, words[action].format(n=number), next(_msg_ids)))
        assert client.post(f"/wechat/work?{query}", data=body, content_type="text/xml").status_code == 200
        run_jobs()
        sent = wecom_replies(fake_api, userid)
        assert sent, (relation, action)
        reply = sent[-1]
        where = (relation, action, reply)
        if allowed(MEMBER_ROLE, relation, action, "wecom"):
            assert number in reply and "没有找到" not in reply and "无法" not in reply, where
            if action != "view":
                assert action in new_events(wecom, ticket_id, before), where
        else:
            assert "没有找到" in reply or "无法" in reply, where
            if not allowed(MEMBER_ROLE, relation, "view", "wecom"):
                assert "类别" not in reply, where  # nothing of the ticket is told
            after = snapshot(wecom, ticket_id)
            assert after == before, where


def _resident_push(client, openid: str, text: str) -> None:
    query, body = encrypted_push(text_xml(openid, text, next(_msg_ids)))
    assert client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").status_code == 200


def _mp_replies(fake_api, openid: str) -> list[str]:
    return [c.body["text"]["content"] for c in fake_api.sent() if c.body.get("touser") == openid and "text" in c.body]


@pytest.mark.parametrize("relation", RESIDENT_RELATIONS)
def test_resident_commands_follow_the_matrix(region, client, fake_api, run_jobs, relation):
    openid = {SOLE_REPORTER: "oFirst", JOINED_REPORTER: "oJoined", STRANGER: "oStranger"}[relation]
    for action, word in (("view", "查询"), ("cancel", "取消")):
        ticket_id, number = make_ticket(region, OWN, S.ASSIGNED, openid="oFirst")
        if relation == JOINED_REPORTER:
            with region.app_context():
                db.session.add(TicketReporter(ticket_id=ticket_id, channel="mp", external_id="oJoined"))
                db.session.commit()
        before = snapshot(region, ticket_id)
        fake_api.reset()
        _resident_push(client, openid, f"{word} {number}")
        run_jobs()
        replies = _mp_replies(fake_api, openid)
        assert replies, (relation, action)
        after = snapshot(region, ticket_id)
        if not allowed("resident", relation, action, "resident"):
            assert "没有找到" in replies[-1] and after[:5] == before[:5] and after[6] == before[6]
        elif action == "view":
            assert number in replies[-1]
        elif relation == SOLE_REPORTER:
            assert after[0] == S.CANCELLED and "撤回" in replies[-1]
        else:  # a joined reporter withdraws; the ticket goes on for the first reporter, who is not told
            assert after[0] == S.ASSIGNED and after[6] == [False, True] and "继续办理" in replies[-1]
            assert _mp_replies(fake_api, "oFirst") == []


def test_the_last_reporter_cancels_only_when_nobody_has_acted(region, client, fake_api, run_jobs):
    ticket_id, number = make_ticket(region, OWN, S.ASSIGNED, openid="oAlone")
    with region.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        ticket.status = S.SIGNED
        db.session.add(TicketEvent(ticket=ticket, kind="sign", actor="staff:grid", data={}))
        db.session.commit()
    _resident_push(client, "oAlone", f"取消 {number}")
    run_jobs()
    status, *_, withdrawn = snapshot(region, ticket_id)
    assert status == S.SIGNED and withdrawn == [True]  # staff took it up: the resident leaves, the work goes on
    assert "继续办理" in _mp_replies(fake_api, "oAlone")[-1]


def test_the_matrix_covers_every_channel_role_and_relation():
    assert len(PERMISSIONS) == sum(
        len(roles) * len(RESIDENT_RELATIONS if roles == ("resident",) else STAFF_RELATIONS) * len(actions)
        for roles, actions in CHANNELS.values()
    )
    # the three holes of the report, as the table now has them
    assert not allowed("staff", OTHER, "close", "api") and not allowed("staff", CO_HANDLER, "assign", "console")
    assert not allowed(MEMBER_ROLE, SENSITIVE, "resolve", "wecom")


def test_docs_security_prints_the_current_matrix():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    assert current_matrix(doc) == matrix_markdown(), (
        "docs/security.md is out of date: run `flask --app app security-table --write`"
    )


def test_a_refused_api_action_tells_nobody_even_with_a_node_inside_the_callers_town(region, client):
    """The report's first hole: another town's staff naming a node of their own as proof of authority."""
    ticket_id, _ = make_ticket(region, OWN, S.SIGNED)
    before = snapshot(region, ticket_id)
    headers = auth(token_for(region, "staff", OTHER_TOWN))
    for body in (
        {"action": "close", "note": "关了", "node": "990102001001"},
        {"action": "assign", "node": OTHER_TOWN},
        {"action": "resolve", "note": "好了", "node": OTHER_TOWN},
        {"action": "escalate", "node": "990102001001"},
    ):
        response = client.post(f"/api/tickets/{ticket_id}/actions", json=body, headers=headers)
        assert response.status_code == 404 and "phone" not in response.get_data(as_text=True)
    assert snapshot(region, ticket_id) == before


def test_a_co_handler_cannot_take_the_ticket_over_or_undo_an_escalation(region):
    ticket_id, _ = make_ticket(region, CO_HANDLER, S.ASSIGNED)
    client, csrf = signed_in(region, "xfl", "staff", CO_NODE)
    before = snapshot(region, ticket_id)
    response = client.post(
        f"/console/tickets/{ticket_id}/actions", data={"csrf_token": csrf, "action": "assign", "node": CO_NODE}
    )
    assert response.status_code == 403 and snapshot(region, ticket_id) == before
    escalated, _ = make_ticket(region, ESCALATED, S.ASSIGNED)
    grid, grid_csrf = signed_in(region, "grid1", "staff", GRID)
    before = snapshot(region, escalated)
    response = grid.post(
        f"/console/tickets/{escalated}/actions", data={"csrf_token": grid_csrf, "action": "assign", "node": GRID}
    )
    assert response.status_code == 403 and snapshot(region, escalated) == before
    # a co-handler signing names its own part only, whatever node it sends
    response = client.post(
        f"/console/tickets/{ticket_id}/actions", data={"csrf_token": csrf, "action": "sign", "node": GRID}
    )
    assert response.status_code == 403
    response = client.post(f"/console/tickets/{ticket_id}/actions", data={"csrf_token": csrf, "action": "sign"})
    assert response.status_code == 303
    assert snapshot(region, ticket_id)[5] == [(CO_NODE, "signed")] and snapshot(region, ticket_id)[0] == S.ASSIGNED


def test_closable_tier_holds_for_close_too(region):
    """家庭暴力 may be closed by the community only: the grid can neither resolve nor close it unresolved."""
    ticket_id, _ = make_ticket(region, OWN, S.SIGNED)
    with region.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        ticket.closable_tier = "community"
        db.session.commit()
    client = region.test_client()
    headers = auth(token_for(region, "staff", GRID))
    before = snapshot(region, ticket_id)
    for body in ({"action": "resolve", "note": "好了"}, {"action": "close", "note": "不用办了"}):
        response = client.post(f"/api/tickets/{ticket_id}/actions", json=body, headers=headers)
        assert response.status_code == 409 and "社区" in response.get_json()["message"]
    assert snapshot(region, ticket_id) == before
    assert (
        client.post(f"/api/tickets/{ticket_id}/actions", json={"action": "escalate"}, headers=headers).status_code
        == 200
    )
    town = auth(token_for(region, "staff", TOWN))
    response = client.post(
        f"/api/tickets/{ticket_id}/actions", json={"action": "close", "note": "已处理"}, headers=town
    )
    assert response.status_code == 200  # the community owns it now, inside the town's area


def test_sign_via_wecom_does_not_resolve_a_county_complaint_for_a_grid_officer(wecom, client, fake_api, run_jobs):
    """The report's WeCom hole: a grid officer closing, as 举报不实, a 纪检监察 complaint that names him."""
    ticket_id, number = make_ticket(wecom, SENSITIVE, S.SIGNED)
    before = snapshot(wecom, ticket_id)
    query, body = app_push(app_text_xml("zhangwy", f"办结 {number} 举报不实", next(_msg_ids)))
    client.post(f"/wechat/work?{query}", data=body, content_type="text/xml")
    run_jobs()
    [reply] = wecom_replies(fake_api, "zhangwy")
    assert "没有找到" in reply and snapshot(wecom, ticket_id) == before


def test_every_staff_action_a_channel_offers_is_tried_in_a_state_that_accepts_it():
    offered = {action for _, actions in CHANNELS.values() for action in actions} - {"cancel"}
    assert offered == set(STATE)


def test_merge_into_another_towns_ticket_is_refused_and_changes_neither(region, client):
    mine, _ = make_ticket(region, OWN, S.ASSIGNED)
    with region.app_context():
        demand = get_parser(region.instance_path).parse("西环路农贸市场门口垃圾没人清理")
        theirs = create_ticket(
            demand=demand, channel="mp", now=utcnow(), reporter_channel="mp", reporter_id="oHexi", actor="system:test"
        )
        db.session.commit()
        theirs_id, theirs_number = theirs.id, theirs.number
        assert theirs.owner_code.startswith(OTHER_TOWN)
    before = (snapshot(region, mine), snapshot(region, theirs_id))
    headers = auth(token_for(region, "staff", GRID))
    for into in (theirs_number, theirs_id):
        body = {"action": "merge", "into": into}
        response = client.post(f"/api/tickets/{mine}/actions", json=body, headers=headers)
        assert response.status_code in (400, 403)
    assert (snapshot(region, mine), snapshot(region, theirs_id)) == before


def test_a_sensitive_complaint_cannot_be_sent_or_summoned_down(region, client):
    ticket_id, _ = make_ticket(region, SENSITIVE, S.ASSIGNED)
    headers = auth(token_for(region, "admin", COUNTY))
    before = snapshot(region, ticket_id)
    for body in (
        {"action": "assign", "node": GRID},
        {"action": "assign", "node": TOWN},
        {"action": "summon", "handlers": [{"node": GRID, "role": "co"}]},
    ):
        response = client.post(f"/api/tickets/{ticket_id}/actions", json=body, headers=headers)
        assert response.status_code == 403, body
    assert snapshot(region, ticket_id) == before
    response = client.post(f"/api/tickets/{ticket_id}/actions", json={"action": "sign"}, headers=headers)
    assert response.status_code == 200  # the county office works it
