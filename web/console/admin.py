"""The admin page: who has access. Users of the admin's area with their role, region, sessions and API
tokens (created, last used, expiry), and the ways to take access away at once: deactivate, end every
session, revoke a token, reset the password (shown once). workflow.policy.may_manage_user decides."""

from __future__ import annotations

import secrets

from flask import abort, flash, g, redirect, render_template, url_for

from accounts.login import deactivate, reactivate, set_password
from accounts.sessions import end_user_sessions, live_sessions
from accounts.tokens import revoke_tokens
from models import User, db, utcnow
from web.console import bp, login_required
from workflow.policy import area_codes, may_manage_user
from workflow.scope import node_names


def _require_admin() -> None:
    if g.user.role != "admin":
        abort(403, description="只有管理员可以管理账号")


def _managed(user_id: int) -> User:
    _require_admin()
    user = db.session.get(User, user_id)
    if user is None or not may_manage_user(g.actor, user):
        abort(404)
    return user


@bp.get("/admin/users")
@login_required
def admin_users():
    _require_admin()
    now = utcnow()
    codes = area_codes(g.actor)
    users = list(
        db.session.execute(db.select(User).filter(User.region_code.in_(codes)).order_by(User.username)).scalars()
    )
    names = node_names(u.region_code for u in users)
    rows = []
    for user in users:
        sessions = live_sessions(user, now)
        rows.append(
            {
                "user": user,
                "region": names.get(user.region_code, user.region_code),
                "sessions": len(sessions),
                "last_seen": max((s.last_seen_at for s in sessions if s.last_seen_at), default=None),
                "tokens": [
                    {
                        "token": t,
                        "state": "已撤销"
                        if t.revoked_at
                        else "已过期"
                        if t.expires_at and t.expires_at <= now
                        else "有效",
                    }
                    for t in user.tokens
                ],
                "self": user.id == g.user.id,
            }
        )
    return render_template("console/admin_users.html", rows=rows)


def _done(message: str):
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("console.admin_users"), 303)


@bp.post("/admin/users/<int:user_id>/deactivate")
@login_required
def admin_deactivate(user_id: int):
    user = _managed(user_id)
    if user.id == g.user.id:
        abort(400, description="不能停用自己的账号")
    sessions, tokens = deactivate(user, utcnow(), g.actor.label)
    return _done(f"已停用 {user.username}：结束 {sessions} 个登录会话，撤销 {tokens} 个令牌")


@bp.post("/admin/users/<int:user_id>/reactivate")
@login_required
def admin_reactivate(user_id: int):
    user = _managed(user_id)
    reactivate(user, g.actor.label)
    return _done(f"已重新启用 {user.username}（令牌仍为撤销状态，如需请重新创建）")


@bp.post("/admin/users/<int:user_id>/sessions/end")
@login_required
def admin_end_sessions(user_id: int):
    user = _managed(user_id)
    ended = end_user_sessions(user, utcnow(), "ended_by_admin")
    return _done(f"已结束 {user.username} 的 {ended} 个登录会话")


@bp.post("/admin/users/<int:user_id>/password")
@login_required
def admin_reset_password(user_id: int):
    user = _managed(user_id)
    password = secrets.token_urlsafe(12)
    ended = set_password(user, password, utcnow(), g.actor.label)
    db.session.commit()
    flash(f"已为 {user.username} 重置密码，并结束其 {ended} 个登录会话。新密码（只显示这一次）：{password}", "ok")
    return redirect(url_for("console.admin_users"), 303)


@bp.post("/admin/users/<int:user_id>/tokens/<int:token_id>/revoke")
@login_required
def admin_revoke_token(user_id: int, token_id: int):
    user = _managed(user_id)
    if not any(t.id == token_id for t in user.tokens):
        abort(404)
    count = revoke_tokens(user, utcnow(), g.actor.label, token_id)
    return _done(f"已撤销 {user.username} 的令牌 #{token_id}" if count else "该令牌已撤销")
