"""The official account's followers as residents: `flask sync-followers` and a daily job page through
`user/get`, so people who followed before the service existed (and never wrote) can be reached by notices.

Each page is recorded in its own transaction: new openids become residents (subscribed, place unknown),
known ones are stamped `follower_seen_at`, and one we had marked unsubscribed before the pass began follows
again. Who is NOT on the list is left as it is: an unfollow reaches us as an event, and concluding it from
a list that may be partial (paging while people follow and leave) would silence residents who still follow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.clients import wechat_api
from models import Resident, audit, db, utcnow

log = logging.getLogger(__name__)

CHUNK = 500  # openids per IN list / insert statement


def sync_followers(now: datetime | None = None, api=None) -> dict:
    """Page through every follower; returns counts (followers, new, resubscribed, pages, total).

    Retryable API errors raise (the job is retried; pages already recorded stay recorded)."""
    config = current_app.config
    if api is None:
        if not (config["WECHAT_APPID"] and config["WECHAT_SECRET"]):
            return {"skipped": "official account not configured"}
        api = wechat_api()
    started = now or utcnow()
    counts = {"followers": 0, "new": 0, "resubscribed": 0, "pages": 0, "total": None}
    next_openid = ""
    while True:
        page = api.get_followers(next_openid)
        openids = [str(o) for o in ((page.get("data") or {}).get("openid") or []) if o]
        counts["total"] = page.get("total", counts["total"])
        if not openids:
            break
        new, resubscribed = record_followers(openids, started)
        db.session.commit()
        counts["pages"] += 1
        counts["followers"] += len(openids)
        counts["new"] += new
        counts["resubscribed"] += resubscribed
        following = str(page.get("next_openid") or "")
        if not following or following == next_openid:
            break
        next_openid = following
    audit("system", "followers.synced", "mp:followers", **counts)
    db.session.commit()
    log.info("followers synced: %s", counts)
    return counts


def record_followers(openids: Iterable[str], seen_at: datetime) -> tuple[int, int]:
    """Insert unknown followers and stamp known ones; returns (new residents, residents subscribed again)."""
    new = resubscribed = 0
    openids = list(dict.fromkeys(openids))
    for start in range(0, len(openids), CHUNK):
        chunk = openids[start : start + CHUNK]
        # Marked unsubscribed before this pass began, yet on the list: they followed again unseen. (One who
        # unfollowed during the pass keeps that: their event is newer than the list.)
        resubscribed += db.session.execute(
            update(Resident)
            .where(
                Resident.openid.in_(chunk),
                Resident.subscribed.is_(False),
                or_(Resident.unsubscribed_at.is_(None), Resident.unsubscribed_at < seen_at),
            )
            .values(subscribed=True, subscribed_at=seen_at, mp_tag_dirty=True)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
        db.session.execute(
            update(Resident)
            .where(Resident.openid.in_(chunk))
            .values(follower_seen_at=seen_at)
            .execution_options(synchronize_session=False)
        )
        known = set(db.session.execute(select(Resident.openid).filter(Resident.openid.in_(chunk))).scalars())
        rows = [
            {"openid": openid, "subscribed": True, "follower_seen_at": seen_at, "created_at": seen_at}
            for openid in chunk
            if openid not in known
        ]
        if rows:
            # A resident the intake creates meanwhile wins: nothing is overwritten, nothing fails.
            new += len(db.session.execute(_insert_ignoring_duplicates(rows)).all())
    return new, resubscribed


def _insert_ignoring_duplicates(rows: list[dict]):
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING counts what was inserted (a multi-row INSERT's rowcount is not reliable on every driver).
    return insert(Resident).values(rows).on_conflict_do_nothing(index_elements=["openid"]).returning(Resident.id)
