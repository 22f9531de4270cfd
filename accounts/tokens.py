"""Bearer tokens: only their SHA-256 is stored; a token can expire (`create-token --expires-days`) and be
revoked (`flask revoke-token`, the console's admin page) with immediate effect."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from models import ApiToken, User, audit, db, hash_token, utcnow

# last_used_at is written at most this often per token (not one UPDATE per API call).
TOUCH_EVERY = timedelta(minutes=1)


def authenticate(header: str) -> User | None:
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if not hmac.compare_digest(scheme.lower(), "bearer") or not token or len(token) > 200:
        return None
    row = db.session.execute(db.select(ApiToken).filter_by(token_hash=hash_token(token))).scalar_one_or_none()
    now = utcnow()
    if row is None or not row.usable(now) or not row.user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        row.last_used_at = now
        db.session.commit()
    return row.user


def create_token(user: User, now: datetime, actor: str, expires_days: int | None = None) -> str:
    """A new token for the user; returns it (shown once: only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(days=expires_days) if expires_days else None
    db.session.add(ApiToken(user=user, token_hash=hash_token(token), expires_at=expires_at, created_at=now))
    audit(actor, "token.created", user.username, expires_at=expires_at.isoformat() if expires_at else None)
    return token


def revoke_tokens(user: User, now: datetime, actor: str, token_id: int | None = None) -> int:
    """Revoke the user's live tokens (or just `token_id`); returns how many."""
    revoked = 0
    for row in user.tokens:
        if row.revoked_at is None and (token_id is None or row.id == token_id):
            row.revoked_at = now
            revoked += 1
    audit(actor, "token.revoked", user.username, count=revoked, token_id=token_id)
    return revoked
