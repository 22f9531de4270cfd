"""Place → region node resolution on the demo county."""

from __future__ import annotations

import pytest

from demand import Gazetteer
from demand.normalize import normalize

GRID_1, GRID_2, GRID_3 = "990101001001", "990101001002", "990101001003"
DONGDA, XINGFU, XINGFU_1, XINGFU_2 = "990101001", "990101002", "990101002001", "990101002002"
XIHUAN_1, XIHUAN_2 = "990102001001", "990102001002"
LIULIN_TOWN, LIULIN_VILLAGE, LIULIN_1 = "990103", "990103001", "990103001001"
YANGZHUANG, YANGZHUANG_1 = "990103002", "990103002001"


@pytest.mark.parametrize(
    ("text", "node", "grid"),
    [
        ("阳光花园", GRID_1, GRID_1),
        ("阳光花园小区5号楼", GRID_1, GRID_1),
        ("东大菜市场", GRID_1, GRID_1),
        ("东大", DONGDA, None),
        ("东大社区", DONGDA, None),
        ("东大街", DONGDA, None),  # a place on the community: node, no grid
        ("东大社区第一网格", GRID_1, GRID_1),
        ("东大社区第1网格", GRID_1, GRID_1),
        ("东大一网格", GRID_1, GRID_1),
        ("东大社区三网格", GRID_3, GRID_3),
        ("东大3网格", GRID_3, GRID_3),
        ("东大第三网格", GRID_3, GRID_3),
        ("東大社區第二網格", GRID_2, GRID_2),
        ("东大小学", GRID_2, GRID_2),  # longer than 东大: the school wins
        ("东大花园", GRID_3, GRID_3),
        ("东大社区卫生服务站", GRID_3, GRID_3),
        ("幸福里", XINGFU, None),
        ("幸福里小区", XINGFU_1, XINGFU_1),
        ("幸福路", XINGFU_1, XINGFU_1),
        ("青山县人民医院", XINGFU_2, XINGFU_2),
        ("县人民医院", XINGFU_2, XINGFU_2),
        ("锦绣家园", XINGFU_2, XINGFU_2),
        ("滨河小区", XIHUAN_1, XIHUAN_1),
        ("西环路农贸市场", XIHUAN_1, XIHUAN_1),
        ("西环路", "990102001", None),
        ("河西中学", XIHUAN_2, XIHUAN_2),
        ("柳林", LIULIN_TOWN, None),  # explicit alias of the town beats the village minus 村
        ("柳林镇", LIULIN_TOWN, None),
        ("柳林村", LIULIN_VILLAGE, None),
        ("柳林村委会", LIULIN_VILLAGE, None),
        ("柳林一组", LIULIN_1, LIULIN_1),
        ("前湾组", LIULIN_1, LIULIN_1),
        ("前湾", LIULIN_1, LIULIN_1),
        ("杨庄", YANGZHUANG, None),
        ("杨庄村1组", YANGZHUANG_1, YANGZHUANG_1),
        ("杨庄一组", YANGZHUANG_1, YANGZHUANG_1),
        ("大塘组", YANGZHUANG_1, YANGZHUANG_1),
        ("河西街道", "990102", None),
        ("青山县", "990100", None),
    ],
)
def test_resolve(gazetteer: Gazetteer, text: str, node: str, grid: str | None) -> None:
    match = gazetteer.resolve(text)
    assert match is not None
    assert (match.node.code, match.grid) == (node, grid)


@pytest.mark.parametrize("text", ["", "路灯坏了", "东", "社区", "我们村"])
def test_no_place(gazetteer: Gazetteer, text: str) -> None:
    assert gazetteer.resolve(text) is None


def test_deepest_mention_wins(gazetteer: Gazetteer) -> None:
    match = gazetteer.resolve("东大社区阳光花园3号楼")
    assert match.node.code == GRID_1
    assert match.text == "阳光花园"


def test_tree_queries(gazetteer: Gazetteer) -> None:
    assert gazetteer.ancestors(GRID_1) == [GRID_1, DONGDA, "990101", "990100"]
    assert gazetteer.is_within(GRID_1, DONGDA)
    assert not gazetteer.is_within(XINGFU_1, DONGDA)
    assert gazetteer.grid_of(GRID_2) == GRID_2
    assert gazetteer.grid_of(DONGDA) is None


@pytest.mark.parametrize("tree", [None, {}, {"code": ""}, "not a dict", {"children": "nope"}])
def test_empty_or_odd_trees(tree: object) -> None:
    gaz = Gazetteer.from_region_tree(tree)  # type: ignore[arg-type]
    assert not gaz
    assert gaz.resolve("阳光花园") is None


def test_synthetic_root_joins_counties() -> None:
    tree = {
        "code": "",
        "name": "",
        "tier": "county",
        "children": [
            {
                "code": "1",
                "name": "甲县",
                "tier": "county",
                "children": [{"code": "11", "name": "新村", "tier": "village", "children": []}],
            },
            {
                "code": "2",
                "name": "乙县",
                "tier": "county",
                "children": [{"code": "21", "name": "新村", "tier": "village", "children": []}],
            },
        ],
    }
    gaz = Gazetteer.from_region_tree(tree)
    assert gaz.resolve("甲县").node.code == "1"
    # The same name in two counties is ambiguous: no common ancestor, so nothing resolves.
    assert gaz.resolve("新村") is None


def test_same_name_under_one_parent_resolves_to_the_parent() -> None:
    tree = {
        "code": "1",
        "name": "甲镇",
        "tier": "town",
        "children": [
            {"code": "11", "name": "甲社区", "tier": "community", "places": ["人民广场"], "children": []},
            {"code": "12", "name": "乙社区", "tier": "community", "places": ["人民广场"], "children": []},
        ],
    }
    assert Gazetteer.from_region_tree(tree).resolve("人民广场").node.code == "1"


def test_names_are_normalised_like_messages() -> None:
    tree = {
        "code": "1",
        "name": "测试镇",
        "tier": "town",
        "children": [{"code": "11", "name": "三号院", "tier": "grid", "children": []}],
    }
    gaz = Gazetteer.from_region_tree(tree)
    assert normalize("三号院") == "3号院"
    assert gaz.resolve("3号院门口").node.code == "11"


def test_a_junction_of_two_grids_resolves_to_the_node_both_lie_in(gazetteer: Gazetteer) -> None:
    match, _ = gazetteer.locate(normalize("建设路和幸福路路口的红绿灯坏了"))
    assert match.node.code == "990101" and match.grid is None


def test_a_name_split_by_de_is_joined(gazetteer: Gazetteer) -> None:
    match, text = gazetteer.locate(normalize("东大的菜市场门口很脏"))
    assert match.node.code == GRID_1 and match.grid == GRID_1
    assert text[match.start : match.end] == "东大菜市场"
