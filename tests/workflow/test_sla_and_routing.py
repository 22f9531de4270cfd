"""Deadlines on the Chinese official calendar, and routing with the county's category rules (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from config import CONFIG_DIR
from workflow.rules.routing import RoutingRule, load_routing, route, similarity
from workflow.rules.sla import Duration, add_working_days, load_sla

CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    "start,days,expected",
    [
        ("2026-09-30T10:00", 5, "2026-10-13T10:00"),  # National Day holiday skipped, Sat 10 Oct is a make-up day
        ("2026-11-20T17:30", 1, "2026-11-23T17:30"),  # Friday → Monday
        ("2026-11-21T09:00", 1, "2026-11-23T09:00"),  # from a Saturday
    ],
)
def test_working_days_follow_the_official_calendar(start, days, expected):
    moment = datetime.fromisoformat(start).replace(tzinfo=CST)
    assert add_working_days(moment, days) == datetime.fromisoformat(expected).replace(tzinfo=CST)


def test_sla_defaults_match_the_issue():
    sla = load_sla(CONFIG_DIR / "sla.yaml")
    start = datetime(2026, 11, 24, 9, 0, tzinfo=CST)
    urgent = sla.rule_for("urgent", None)
    assert (
        urgent.sign.after(start) - start,
        urgent.respond.after(start) - start,
        urgent.resolve.after(start) - start,
    ) == (timedelta(hours=1), timedelta(hours=2), timedelta(hours=24))
    normal = sla.rule_for("normal", "路灯")
    assert normal.sign.after(start) - start == timedelta(hours=24)
    assert normal.resolve.after(start) == datetime(2026, 12, 1, 9, 0, tzinfo=CST)
    assert sla.rule_for("normal", "政策咨询").resolve.after(start) == datetime(2026, 11, 27, 9, 0, tzinfo=CST)


def test_bad_duration_is_refused():
    with pytest.raises(ValueError):
        Duration.parse("5 weeks")


LINEAGE = {"G": [("C0", "county"), ("T1", "town"), ("M1", "community"), ("G", "grid")]}


def test_default_route_prefers_grid_then_reporter_then_named_node_then_county():
    assert route("G", "M1", "G2", "C0").owner_code == "G"
    assert route(None, "M1", "G2", "C0").owner_code == "G2"
    assert route(None, "M1", None, "C0").reason == "named_node"
    assert route(None, None, None, "C0").reason == "county_intake"


def test_a_category_rule_lifts_the_ticket_to_the_town_department():
    rules = (RoutingRule("劳动和社会保障", tier="town", member_role="department", closable_tier="town"),)
    result = route("G", None, None, "C0", category="劳动和社会保障", rules=rules, lineage=LINEAGE.get)
    assert (result.owner_code, result.grid_code, result.member_role, result.closable_tier) == (
        "T1",
        "G",
        "department",
        "town",
    )
    assert route("G", None, None, "C0", category="城乡建设", rules=rules, lineage=LINEAGE.get).owner_code == "G"


def test_routing_file_loads_and_validates(tmp_path):
    assert load_routing(CONFIG_DIR / "routing.yaml").rules
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - {category: x, tier: planet}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="planet"):
        load_routing(bad)


def test_similarity_finds_the_same_streetlight():
    assert similarity("幸福里小区3号楼门口路灯不亮了", "幸福里小区3号楼路灯不亮") > 0.5
    assert similarity("幸福里小区3号楼门口路灯不亮了", "西环路垃圾没人清运") < 0.1
