"""Bearer tokens: only their SHA-256 is stored."""

from __future__ import annotations

import hmac

from models import ApiToken, User, db, hash_token, utcnow


def authenticate(header: str) -> User | None:
    scheme, _, token = header.partition(" ")
    if not hmac.compare_digest(scheme.lower(), "bearer") or not token.strip():
        return None
    row = db.session.execute(db.select(ApiToken).filter_by(token_hash=hash_token(token.strip()))).scalar_one_or_none()
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user
