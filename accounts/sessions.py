"""Console sessions held on the server. The signed cookie carries only a random session id; its SHA-256
is a row of staff_sessions. Logout ends that row, a password change or deactivation ends every row of the
user, and the admin page can end them too: a copied cookie stops working at once.

Writes rows; the caller commits (a sign-in, a logout and an admin's action each commit once).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from models import StaffSession, User, db, hash_token

# last_seen_at is refreshed at most this often (one UPDATE per user every few minutes, not per request).
TOUCH_EVERY = timedelta(minutes=5)


def start_session(user: User, now: datetime, lifetime: timedelta, source: str = "") -> str:
    """A new session for the user; returns the id to put in the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(
            user=user,
            token_hash=hash_token(token),
            expires_at=now + lifetime,
            last_seen_at=now,
            source=(source or "")[:64] or None,
            created_at=now,
        )
    )
    return token


def session_user(token: object, now: datetime) -> User | None:
    """The user of a live session, or None when the session ended, expired, or the account is inactive."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    row = db.session.execute(db.select(StaffSession).filter_by(token_hash=hash_token(token))).scalar_one_or_none()
    if row is None or row.ended_at is not None or row.expires_at <= now or not row.user.active:
        return None
    if row.last_seen_at is None or now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    return row.user


def end_session(token: object, now: datetime, reason: str = "logout") -> None:
    if not isinstance(token, str):
        return
    row = db.session.execute(db.select(StaffSession).filter_by(token_hash=hash_token(token))).scalar_one_or_none()
    if row is not None and row.ended_at is None:
        row.ended_at, row.ended_reason = now, reason


def end_user_sessions(user: User, now: datetime, reason: str) -> int:
    """End every live session of the user (password change, deactivation, an admin's "sign out everywhere")."""
    ended = 0
    for row in db.session.execute(
        db.select(StaffSession).filter(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
    ).scalars():
        row.ended_at, row.ended_reason = now, reason
        ended += 1
    return ended


def live_sessions(user: User, now: datetime) -> list[StaffSession]:
    return list(
        db.session.execute(
            db.select(StaffSession)
            .filter(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None), StaffSession.expires_at > now)
            .order_by(StaffSession.id)
        ).scalars()
    )
