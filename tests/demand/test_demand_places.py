"""Place resolution for issue 19: most specific node, suffix variants, single-grid villages, honest ambiguity."""

from __future__ import annotations

import pytest

from demand import DemandParser, Gazetteer
from demand.normalize import normalize

# A small invented county: one village whose alias is also a place of its only grid, one village with two
# grids, a community with two grids, and a road that lies in both of them.
TREE = {
    "code": "550100",
    "name": "白鹭县",
    "tier": "county",
    "children": [
        {
            "code": "550101",
            "name": "江口镇",
            "tier": "town",
            "aliases": ["江口"],
            "children": [
                {
                    "code": "550101001",
                    "name": "竹林村",
                    "tier": "village",
                    "aliases": ["竹林"],
                    "children": [
                        {
                            "code": "550101001001",
                            "name": "竹林村第一网格",
                            "tier": "grid",
                            "places": ["竹林", "竹林小学", "坳上组"],
                        },
                    ],
                },
                {
                    "code": "550101002",
                    "name": "塘下村",
                    "tier": "village",
                    "children": [
                        {"code": "550101002001", "name": "塘下村第一网格", "tier": "grid", "places": ["上塘组"]},
                        {"code": "550101002002", "name": "塘下村第二网格", "tier": "grid", "places": ["下塘组"]},
                    ],
                },
                {
                    "code": "550101003",
                    "name": "新桥社区",
                    "tier": "community",
                    "aliases": ["新桥"],
                    "children": [
                        {
                            "code": "550101003001",
                            "name": "新桥社区第一网格",
                            "tier": "grid",
                            "places": ["碧水花园", "翠微小区", "解放路"],
                        },
                        {
                            "code": "550101003002",
                            "name": "新桥社区第二网格",
                            "tier": "grid",
                            "places": ["金沙家园", "解放路"],
                        },
                    ],
                },
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.from_region_tree(TREE)


@pytest.fixture(scope="module")
def places_parser(gaz: Gazetteer) -> DemandParser:
    return DemandParser(gazetteer=gaz)


def test_a_name_on_one_line_of_descent_resolves_to_the_most_specific_node(gaz: Gazetteer) -> None:
    match = gaz.resolve("竹林这边的路灯坏了")
    assert match is not None
    assert match.node.code == "550101001001"
    assert match.candidates == ()


@pytest.mark.parametrize(
    ("written", "grid"),
    [
        ("碧水小区", "550101003001"),
        ("碧水家园", "550101003001"),
        ("翠微花园", "550101003001"),
        ("金沙小区", "550101003002"),
        ("金沙花园", "550101003002"),
    ],
)
def test_estate_suffixes_are_interchangeable(gaz: Gazetteer, written: str, grid: str) -> None:
    match = gaz.resolve(f"{written}门口的垃圾没人清")
    assert match is not None and match.grid == grid


def test_a_short_common_stem_alone_is_not_a_place(gaz: Gazetteer) -> None:
    # 碧水 is the stem of 碧水花园, but two characters that end like no name: not indexed alone.
    assert gaz.resolve("这里的碧水蓝天都没了") is None


def test_a_community_named_alone_stays_the_community(places_parser: DemandParser) -> None:
    demand = places_parser.parse("新桥社区的，想问一下高龄补贴怎么申请")
    assert demand.location.node == "550101003"
    assert demand.location.grid is None


def test_a_village_with_one_grid_gives_that_grid(places_parser: DemandParser) -> None:
    demand = places_parser.parse("竹林村的水渠堵了")
    assert demand.location.grid == "550101001001"


def test_a_village_with_two_grids_gives_no_grid(places_parser: DemandParser) -> None:
    demand = places_parser.parse("塘下村的水渠堵了")
    assert demand.location.node == "550101002"
    assert demand.location.grid is None


def test_an_ambiguous_road_lists_candidates_instead_of_guessing(places_parser: DemandParser) -> None:
    demand = places_parser.parse("解放路的红绿灯坏了")
    assert demand.location.node == "550101003"
    assert demand.location.grid is None
    assert sorted(demand.location.candidates) == ["550101003001", "550101003002"]
    assert demand.to_dict()["location"]["candidates"] == demand.location.candidates


def test_building_and_unit_in_chinese_numerals(places_parser: DemandParser) -> None:
    demand = places_parser.parse("金沙家园十二栋三单元的楼道灯坏了")
    assert (demand.location.grid, demand.location.building, demand.location.unit) == ("550101003002", "12", "3")
    assert normalize("十二栋") == "12栋"
