"""Console sign-in: password check (werkzeug scrypt), throttling (accounts.throttle), an audit row for
every try. Every failure — unknown name, wrong password, deactivated account — gets the same message, and
unknown names cost the same scrypt as known ones, so neither the answer nor its timing tells which names
exist. There is no lock-out: a stranger can slow guessing of a name, never keep its owner out.

Writes audit rows; the caller commits (a refused try must be committed too).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from accounts import sessions, throttle
from models import User, audit, db

BAD_CREDENTIALS = "用户名或密码错误"
_dummy: dict[str, str] = {}


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None = None
    wait: int = 0  # seconds before another try is looked at (throttled)


def throttled_message(seconds: int) -> str:
    return f"登录尝试过于频繁，请 {seconds} 秒后再试 / too many sign-in attempts, try again in {seconds} s"


def _dummy_hash() -> str:
    if "hash" not in _dummy:
        _dummy["hash"] = generate_password_hash("no-such-user", method="scrypt")
    return _dummy["hash"]


def attempt_login(
    username: str, password: str, now: datetime, source: str = "", trusted_device: bool = False
) -> LoginResult:
    """Check a username/password pair, after the throttle says this try may be looked at."""
    username = (username or "").strip()[:64]
    actor = f"console:{source}" if source else "console"
    wait = throttle.wait_seconds(username, source, trusted_device)
    if wait > 0:
        audit(actor, "login.throttled", f"user:{username}", wait=wait)
        return LoginResult(None, throttled_message(wait), wait)
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none() if username else None
    if user is None or not user.active or not user.password_hash:
        check_password_hash(_dummy_hash(), password or "")
        reason = "unknown_user" if user is None else "inactive" if not user.active else "no_password"
        throttle.record_failure(username, source)
        audit(actor, "login.failed", f"user:{username}", reason=reason)
        return LoginResult(None, BAD_CREDENTIALS)
    if not check_password_hash(user.password_hash, password or ""):
        throttle.record_failure(username, source)
        audit(actor, "login.failed", f"user:{username}", reason="bad_password")
        return LoginResult(None, BAD_CREDENTIALS)
    throttle.record_success(username)
    user.failed_logins = 0
    user.locked_until = None
    audit(actor, "login.succeeded", f"user:{username}", role=user.role, region=user.region_code)
    return LoginResult(user)


def sign_in(user: User, now: datetime, lifetime: timedelta, source: str = "") -> str:
    """A server-side session for a user who just proved who they are; returns the cookie's session id."""
    return sessions.start_session(user, now, lifetime, source)


def session_fingerprint(user: User) -> str:
    """Changes with the password: a session outlives no password change, however the password was set."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:20]


def session_user(token: object, now: datetime, fingerprint: object = None) -> User | None:
    user = sessions.session_user(token, now)
    if user is None or fingerprint != session_fingerprint(user):
        return None
    return user


def record_logout(user: User, token: object, now: datetime, source: str = "") -> None:
    sessions.end_session(token, now, "logout")
    audit(f"staff:{user.username}", "logout", f"user:{user.username}", source=source, channel="console")


def set_password(user: User, password: str, now: datetime, actor: str) -> int:
    """A new password ends every session of the user at once; returns how many were ended."""
    user.password_hash = generate_password_hash(password, method="scrypt")
    ended = sessions.end_user_sessions(user, now, "password_changed")
    audit(actor, "user.password_reset", f"user:{user.username}", sessions_ended=ended)
    return ended


def deactivate(user: User, now: datetime, actor: str) -> tuple[int, int]:
    """The account stops working everywhere at once: sessions ended, tokens revoked. (sessions, tokens)"""
    user.active = False
    ended = sessions.end_user_sessions(user, now, "deactivated")
    revoked = 0
    for token in user.tokens:
        if token.revoked_at is None:
            token.revoked_at = now
            revoked += 1
    audit(actor, "user.deactivated", f"user:{user.username}", sessions_ended=ended, tokens_revoked=revoked)
    return ended, revoked


def reactivate(user: User, actor: str) -> None:
    user.active = True
    audit(actor, "user.reactivated", f"user:{user.username}")
