"""GET /api/tickets and /api/tickets/<id>: token auth, region scope, DESIGN.md fields, masking by role."""

from __future__ import annotations

import secrets

from models import ApiToken, Ticket, TicketReporter, User, db, hash_token, utcnow
from workflow.tickets import assign_number

FIELDS = {
    "id",
    "number",
    "status",
    "category",
    "subcategory",
    "urgency",
    "grid",
    "owner",
    "location",
    "description",
    "channel",
    "reporters",
    "created_at",
    "due_at",
    "escalation_level",
    "events",
}


def token_for(app, role: str, region: str) -> str:
    token = secrets.token_urlsafe(16)
    with app.app_context():
        user = User(username=f"{role}-{region}-{token[:4]}", role=role, region_code=region)
        db.session.add_all([user, ApiToken(user=user, token_hash=hash_token(token))])
        db.session.commit()
    return token


def make_ticket(app, grid: str, phone: str = "13912345678") -> int:
    with app.app_context():
        ticket = Ticket(
            channel="mp",
            grid_code=grid,
            owner_code=grid,
            category="城乡建设",
            urgency="normal",
            description=f"路灯坏了，电话{phone}",
            created_at=utcnow(),
            due_at=utcnow(),
        )
        db.session.add(ticket)
        db.session.flush()
        assign_number(ticket)
        db.session.add(
            TicketReporter(ticket=ticket, channel="mp", external_id="oResidentOpenId", name="张三丰", phone=phone)
        )
        db.session.commit()
        return ticket.id


def get(client, url: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(url, headers=headers)


def test_no_or_wrong_token_is_401(region, client):
    assert get(client, "/api/tickets", None).status_code == 401
    assert get(client, "/api/tickets", "nonsense").status_code == 401


def test_ticket_has_the_contract_fields_with_offsets(region, client):
    ticket_id = make_ticket(region, "990101001001")
    token = token_for(region, "admin", "990100")
    data = get(client, f"/api/tickets/{ticket_id}", token).get_json()
    assert FIELDS <= set(data)
    assert data["due_at"].endswith("+00:00") and data["created_at"].endswith("+00:00")
    assert set(data["location"]) >= {"text", "place", "building", "unit", "room", "lat", "lng"}


def test_staff_see_only_their_subtree(region, client):
    inside = make_ticket(region, "990101001001")
    outside = make_ticket(region, "990102001001")
    token = token_for(region, "staff", "990101")
    listed = get(client, "/api/tickets", token).get_json()
    assert [t["id"] for t in listed["tickets"]] == [inside] and listed["total"] == 1
    assert get(client, f"/api/tickets/{outside}", token).status_code == 404


def test_personal_data_is_masked_for_viewers_and_shown_to_staff(region, client):
    ticket_id = make_ticket(region, "990101001001")
    viewer = get(client, f"/api/tickets/{ticket_id}", token_for(region, "viewer", "990100")).get_json()
    staff = get(client, f"/api/tickets/{ticket_id}", token_for(region, "staff", "990100")).get_json()
    assert viewer["reporters"][0]["phone"] == "139****5678" and viewer["reporters"][0]["name"] == "张**"
    assert "13912345678" not in str(viewer)
    assert staff["reporters"][0]["phone"] == "13912345678"


def test_list_filters_and_bad_parameters(region, client):
    make_ticket(region, "990101001001")
    token = token_for(region, "admin", "990100")
    assert get(client, "/api/tickets?status=closed", token).get_json()["total"] == 0
    assert get(client, "/api/tickets?grid=990101001001", token).get_json()["total"] == 1
    assert get(client, "/api/tickets?since=yesterday", token).status_code == 400
    assert get(client, "/api/tickets?limit=x", token).status_code == 400
