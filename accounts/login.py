"""Console sign-in: password check (werkzeug scrypt), lock-out after repeated failures, audit of every try.

Writes User counters and audit rows; the caller commits (a refused try must be committed too, or the
lock-out counter would roll back with it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from models import User, audit, db

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
BAD_CREDENTIALS = "用户名或密码错误"
_dummy: dict[str, str] = {}


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None = None
    locked_until: datetime | None = None


def _dummy_hash() -> str:
    # Unknown names cost the same scrypt as known ones, so timing does not tell which names exist.
    if "hash" not in _dummy:
        _dummy["hash"] = generate_password_hash("no-such-user", method="scrypt")
    return _dummy["hash"]


def attempt_login(username: str, password: str, now: datetime, source: str = "") -> LoginResult:
    """Check a username/password pair. Five wrong passwords in a row lock the account for 15 minutes."""
    username = (username or "").strip()[:64]
    actor = f"console:{source}" if source else "console"
    user = (
        db.session.execute(db.select(User).filter_by(username=username).with_for_update()).scalar_one_or_none()
        if username
        else None
    )
    if user is None or not user.active or not user.password_hash:
        check_password_hash(_dummy_hash(), password or "")
        reason = "unknown_user" if user is None else "inactive" if not user.active else "no_password"
        audit(actor, "login.failed", f"user:{username}", reason=reason)
        return LoginResult(None, BAD_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        audit(actor, "login.refused_locked", f"user:{username}", locked_until=user.locked_until.isoformat())
        return LoginResult(None, locked_message(user.locked_until, now), user.locked_until)
    if not check_password_hash(user.password_hash, password or ""):
        failures = (user.failed_logins or 0) + 1
        if failures >= MAX_FAILURES:
            user.failed_logins = 0
            user.locked_until = now + LOCKOUT
            audit(
                actor, "login.locked", f"user:{username}", failures=failures, locked_until=user.locked_until.isoformat()
            )
            return LoginResult(None, locked_message(user.locked_until, now), user.locked_until)
        user.failed_logins = failures
        audit(actor, "login.failed", f"user:{username}", reason="bad_password", failures=failures)
        return LoginResult(None, BAD_CREDENTIALS)
    user.failed_logins = 0
    user.locked_until = None
    audit(actor, "login.succeeded", f"user:{username}", role=user.role, region=user.region_code)
    return LoginResult(user)


def locked_message(until: datetime, now: datetime) -> str:
    minutes = max(1, int((until - now).total_seconds() + 59) // 60)
    return f"连续 {MAX_FAILURES} 次登录失败，账号已锁定，请 {minutes} 分钟后再试"


def session_fingerprint(user: User) -> str:
    """Changes when the password changes, so old sessions end with a password reset."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:20]


def session_user(user_id: object, fingerprint: object) -> User | None:
    """The signed-in user of a session, or None when the account is gone, disabled or re-passworded."""
    if not isinstance(user_id, int) or not isinstance(fingerprint, str):
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active or session_fingerprint(user) != fingerprint:
        return None
    return user


def record_logout(user: User, source: str = "") -> None:
    audit(f"staff:{user.username}", "logout", f"user:{user.username}", source=source)
