"""Retired nodes keep their history and receive no new work: not from routing, the gazetteer, a
resident's remembered grid, a location, a staff assignment, a broadcast or the console's region lists."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from broadcasts.audience import AudienceError, MemberAudience, group_nodes, resolve_regions
from demand import Gazetteer
from handlers.parsing import get_parser
from models import RegionNode, Ticket, User, db, region_tree, utcnow
from regions.importer import import_region
from workflow.digest import DigestSchedule, queue_due_digests
from workflow.policy import staff_actor
from workflow.rules.geo import locate_grid
from workflow.scope import region_choices
from workflow.tickets import create_ticket, grid_nodes
from workflow.transitions import ActionRefused, apply_action

REDRAWN = (Path(__file__).resolve().parent / "data" / "redrawn_region.yaml").read_text(encoding="utf-8")
RETIRED_GRID = "990101001002"  # 东大社区第二网格: merged into the new 东市网格


@pytest.fixture
def redrawn(region):
    with region.app_context():
        import_region(REDRAWN)
    return region


def test_the_gazetteer_and_location_lookups_know_only_active_grids(redrawn):
    with redrawn.app_context():
        gazetteer = Gazetteer.from_region_tree(region_tree())
        assert gazetteer.node(RETIRED_GRID) is None and gazetteer.node("990102") is None
        codes = {g["code"] for g in grid_nodes()}
        assert RETIRED_GRID not in codes and "990101001004" in codes
        # A point inside the retired grid's old boundary lies in the new grid's boundary now.
        assert locate_grid(grid_nodes(), 30.505, 114.302) == "990101001004"


def test_a_residents_remembered_retired_grid_is_not_used_for_routing(redrawn):
    with redrawn.app_context():
        demand = get_parser(redrawn.instance_path).parse("路灯坏了好几天了")
        assert demand.location.grid is None and demand.location.node is None
        ticket = create_ticket(
            demand=demand,
            channel="mp",
            now=utcnow(),
            reporter_channel="mp",
            reporter_id="oOld",
            reporter_grid=RETIRED_GRID,
            actor="resident:oOld",
        )
        assert ticket.grid_code != RETIRED_GRID and ticket.owner_code != RETIRED_GRID
        assert ticket.owner_code == "990100"  # nothing else known: county intake
        db.session.rollback()


def COUNTY_ADMIN():  # noqa: N802 - reads as the actor it builds
    return staff_actor(User(username="t", role="admin", region_code="990100"), "console")


def test_staff_cannot_assign_to_a_retired_node_and_escalation_climbs_past_one(redrawn):
    with redrawn.app_context():
        ticket = Ticket(channel="console", grid_code="990101002001", owner_code="990101002001", description="x")
        db.session.add(ticket)
        db.session.flush()
        with pytest.raises(ActionRefused, match="已在网格调整中撤销"):
            apply_action(ticket, "assign", COUNTY_ADMIN(), utcnow(), node=RETIRED_GRID)
        # The grid moved under a new community; its old one (990101002) is retired and is never climbed to.
        apply_action(ticket, "escalate", COUNTY_ADMIN(), utcnow(), note="需要社区协调")
        assert ticket.owner_code == "990101003"
        db.session.rollback()


def test_broadcasts_and_console_lists_leave_retired_nodes_out(redrawn):
    with redrawn.app_context():
        with pytest.raises(AudienceError, match="retired"):
            resolve_regions([RETIRED_GRID], "990100")
        assert "990101" in {n.code for n in resolve_regions(["990101"], "990100")}
        county = db.session.execute(db.select(RegionNode).filter_by(code="990100")).scalar_one()
        assert all(node.retired_at is None for node in group_nodes([county.path]))
        robots = {(n.group or {}).get("robot_key") for n in group_nodes([county.path])}
        assert "demo-hexi-robot" not in robots and "demo-chengguan-robot" in robots  # 河西街道 is retired
        userids = db.session.execute(MemberAudience((county.path,), ("grid_officer",)).userid_page_query(None, 100))
        assert {row[0] for row in userids} == {"zhangwy", "zhaozg", "wuxd", "hecs"}
        user = User(username="u", role="admin", region_code="990100")
        choices = {n.code for n in region_choices(user)}
        assert RETIRED_GRID not in choices and "990102" not in choices and "990101001004" in choices


def test_a_retired_nodes_group_gets_no_more_daily_digests(redrawn):
    schedule = DigestSchedule(at=datetime(2026, 1, 1, 0, 0).time(), nodes={})
    with redrawn.app_context():
        recipients = {m.recipient for m in queue_due_digests(utcnow(), schedule)}
        db.session.rollback()
    assert recipients == {"demo-county-robot", "demo-chengguan-robot"}  # not 河西街道's, retired with its town
