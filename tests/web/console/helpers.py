"""Console test helpers: staff users with passwords, signing in through the real form, CSRF tokens."""

from __future__ import annotations

import re
from datetime import datetime

from werkzeug.security import generate_password_hash

from handlers.parsing import get_parser
from models import InboundMessage, Ticket, User, db
from workflow.tickets import create_ticket

PASSWORD = "Qingshan-2026!"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_hashes: dict[str, str] = {}


def make_user(app, username: str, role: str, region: str, password: str = PASSWORD) -> None:
    if password not in _hashes:  # scrypt is slow on purpose; one hash per password is enough for tests
        _hashes[password] = generate_password_hash(password, method="scrypt")
    with app.app_context():
        db.session.add(User(username=username, role=role, region_code=region, password_hash=_hashes[password]))
        db.session.commit()


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    token = csrf_from(client.get("/console/login").get_data(as_text=True))
    return client.post("/console/login", data={"username": username, "password": password, "csrf_token": token})


def signed_in(app, username: str, role: str, region: str):
    """A fresh test client signed in as a new user; returns (client, csrf token)."""
    make_user(app, username, role, region)
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client, csrf_from(client.get("/console/").get_data(as_text=True))


def new_ticket(app, text: str, now: datetime, openid: str = "oConsole", channel: str = "mp") -> int:
    with app.app_context():
        demand = get_parser(app.instance_path).parse(text)
        ticket = create_ticket(
            demand=demand,
            channel=channel,
            now=now,
            reporter_channel=channel,
            reporter_id=openid,
            actor=f"resident:{openid}",
        )
        # the resident's own words, as the intake keeps them
        db.session.add(
            InboundMessage(
                channel=channel,
                dedup_key=f"{openid}:{ticket.id}",
                sender=openid,
                msg_type="text",
                content=text,
                ticket_id=ticket.id,
                received_at=now,
            )
        )
        db.session.commit()
        return ticket.id


def load(app, ticket_id: int) -> Ticket:
    with app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        _ = ticket.events, ticket.reporters, ticket.handlers
        return ticket
