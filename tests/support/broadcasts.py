"""Builders for broadcast tests: synthetic subscribers and officers in bulk, API tokens, WeCom app config."""

from __future__ import annotations

import secrets

from sqlalchemy import insert

from models import ApiToken, Member, RegionNode, Resident, User, db, hash_token

# Grids of 城关镇 (990101) in the demo county.
CHENGGUAN = "990101"
CHENGGUAN_GRIDS = ["990101001001", "990101001002", "990101001003", "990101002001", "990101002002"]
WECOM_CONFIG = {"WECOM_CORP_ID": "wwcorp", "WECOM_SECRET": "wecomsecret", "WECOM_AGENT_ID": "1000002"}


def add_residents(app, count: int, grids: list[str], prefix: str = "oSub", start: int = 0, **columns) -> list[str]:
    """`count` subscribers spread over `grids`, inserted in chunks; returns their openids."""
    openids = [f"{prefix}{start + i:07d}" for i in range(count)]
    with app.app_context():
        for first in range(0, count, 5000):
            rows = [
                {"openid": openid, "grid_code": grids[(first + i) % len(grids)], "subscribed": True, **columns}
                for i, openid in enumerate(openids[first : first + 5000])
            ]
            db.session.execute(insert(Resident), rows)
        db.session.commit()
    return openids


def add_officers(app, count: int, grids: list[str], role: str = "grid_officer", **columns) -> list[str]:
    """`count` members with WeCom userids at the given grids; returns the userids."""
    userids = [f"officer{i:05d}" for i in range(count)]
    with app.app_context():
        node_ids = dict(db.session.execute(db.select(RegionNode.code, RegionNode.id)).all())
        db.session.execute(
            insert(Member),
            [
                {"node_id": node_ids[grids[i % len(grids)]], "name": f"网格员{i}", "role": role, "wecom_userid": userid}
                | columns
                for i, userid in enumerate(userids)
            ],
        )
        db.session.commit()
    return userids


def token_for(app, role: str, region: str) -> str:
    token = secrets.token_urlsafe(16)
    with app.app_context():
        user = User(username=f"{role}-{region}-{token[:6]}", role=role, region_code=region)
        db.session.add_all([user, ApiToken(user=user, token_hash=hash_token(token))])
        db.session.commit()
    return token


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def notice(regions: list[str], roles: list[str], channels: list[str], **extra) -> dict:
    return {
        "title": "防汛预警",
        "body": "今明两天有强降雨，请低洼地带居民注意防范，必要时及时转移。",
        "audience": {"regions": regions, "roles": roles, **({"tags": extra.pop("tags")} if "tags" in extra else {})},
        "channels": channels,
        **extra,
    }
