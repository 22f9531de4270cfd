"""Mirroring where residents live into official-account user tags (one tag per region node with subscribers).

A resident taking notices carries the tag of every node on their grid's path (grid, village/community,
town, county — the tiers in MP_TAG_TIERS), so a broadcast to a region can be one `message/mass/sendall`
to that region's tag. Residents whose place or choice changed are flagged (`mp_tag_dirty`, set by a model
listener); this job applies the difference page by page and clears the flag only if nothing changed
meanwhile. While any resident of a region is flagged, the planner uses openid lists for that region.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from flask import current_app
from sqlalchemy import and_, select, update

from bot.clients import PermanentSendError, wechat_api
from bot.clients.wechat import TAG_BATCH_MAX, WeChatApi
from broadcasts.audience import subtree_codes_query
from models import MpTag, RegionNode, Resident, db
from models.region import TIER_RANK

log = logging.getLogger(__name__)

TAG_NAME_MAX = 30
PAGE = 500


def tag_name(node: RegionNode) -> str:
    """Unique (the code) and readable in WeChat's console (the name), within 30 characters."""
    return f"{node.name[: TAG_NAME_MAX - len(node.code) - 1]}-{node.code}"


def _codes(path: str | None) -> list[str]:
    return [code for code in (path or "").strip("/").split("/") if code]


def sync_mp_tags(page_size: int = PAGE) -> dict:
    """Create missing node tags, then tag/untag every flagged resident. Retryable errors raise (RQ retries)."""
    config = current_app.config
    if not (config["WECHAT_APPID"] and config["WECHAT_SECRET"]) or not config["BROADCAST_USE_TAGS"]:
        return {"skipped": "official account not configured or tags disabled"}
    api = wechat_api()
    created = create_missing_tags(api, tuple(config["MP_TAG_TIERS"]))
    counts = {"tags_created": created, "residents": 0, "tag_calls": 0}
    tags = dict(db.session.execute(select(MpTag.node_code, MpTag.tag_id).filter(MpTag.tag_id.is_not(None))).all())
    after = 0
    while True:
        rows = db.session.execute(
            select(
                Resident.id,
                Resident.openid,
                Resident.grid_code,
                Resident.subscribed,
                Resident.notices,
                Resident.mp_tag_path,
            )
            .filter(Resident.mp_tag_dirty.is_(True), Resident.id > after)
            .order_by(Resident.id)
            .limit(page_size)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        counts["tag_calls"] += _sync_page(api, rows, tags)
        counts["residents"] += len(rows)
    return counts


def create_missing_tags(api: WeChatApi, tiers: tuple[str, ...]) -> int:
    """A tag for every node (of the mirrored tiers) above a grid where someone takes notices."""
    grids = select(Resident.grid_code).filter(
        Resident.grid_code.is_not(None), Resident.subscribed.is_(True), Resident.notices.is_(True)
    )
    paths = db.session.execute(select(RegionNode.path).filter(RegionNode.code.in_(grids.distinct()))).scalars()
    wanted = {code for path in paths for code in _codes(path)}
    have = set(db.session.execute(select(MpTag.node_code)).scalars())
    found = db.session.execute(
        select(RegionNode).filter(RegionNode.code.in_(wanted - have), RegionNode.tier.in_(tiers))
    ).scalars()
    # Upper tiers first: if the account's tag limit (100) runs out, it is the grids that go without.
    nodes = sorted(found, key=lambda node: (TIER_RANK.get(node.tier, 9), node.path))
    created = 0
    for node in nodes:
        name = tag_name(node)
        try:
            row = MpTag(node_code=node.code, name=name, tag_id=api.create_tag(name))
            created += 1
        except PermanentSendError as exc:
            # E.g. the account's tag limit: the node's broadcasts use openid lists instead.
            row = MpTag(node_code=node.code, name=name, tag_id=None, error=str(exc)[:2000])
            log.warning("no official-account tag for node %s: %s", node.code, exc)
        db.session.add(row)
        # Everyone below the node must now also carry its tag.
        db.session.execute(
            update(Resident)
            .where(
                Resident.grid_code.in_(subtree_codes_query((node.path,))),
                Resident.subscribed.is_(True),
                Resident.notices.is_(True),
            )
            .values(mp_tag_dirty=True)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return created


def _sync_page(api: WeChatApi, rows, tags: dict[str, int]) -> int:
    grid_paths = dict(
        db.session.execute(
            select(RegionNode.code, RegionNode.path).filter(
                RegionNode.code.in_({r.grid_code for r in rows if r.grid_code})
            )
        ).all()
    )
    add: dict[int, list[str]] = defaultdict(list)
    remove: dict[int, list[str]] = defaultdict(list)
    settled: dict[tuple, list[int]] = defaultdict(list)
    for row in rows:
        takes_notices = bool(row.subscribed and row.notices)
        desired = grid_paths.get(row.grid_code) if takes_notices else None
        new_codes, old_codes = set(_codes(desired)), set(_codes(row.mp_tag_path))
        if row.subscribed:  # WeChat keeps no tags to speak of for someone who left; nothing to call for them
            for code in new_codes & tags.keys():
                add[tags[code]].append(row.openid)
            for code in (old_codes - new_codes) & tags.keys():
                remove[tags[code]].append(row.openid)
        settled[(row.grid_code, row.subscribed, row.notices, desired)].append(row.id)
    calls = 0
    for changes, call in ((add, api.tag_users), (remove, api.untag_users)):
        for tag_id, openids in changes.items():
            for start in range(0, len(openids), TAG_BATCH_MAX):
                call(tag_id, openids[start : start + TAG_BATCH_MAX])
                calls += 1
    for (grid_code, subscribed, notices, desired), ids in settled.items():
        # Only if nothing changed since we read the row; otherwise it stays flagged for the next run.
        same_grid = Resident.grid_code.is_(None) if grid_code is None else Resident.grid_code == grid_code
        db.session.execute(
            update(Resident)
            .where(
                Resident.id.in_(ids),
                and_(same_grid, Resident.subscribed == subscribed, Resident.notices == notices),
            )
            .values(mp_tag_dirty=False, mp_tag_path=desired)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return calls
