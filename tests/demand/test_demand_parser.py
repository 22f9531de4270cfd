"""DemandParser end to end: the interface the intake relies on."""

from __future__ import annotations

import json

import pytest

from demand import MISSING_LOCATION, MISSING_MATTER, Demand, DemandParser, Gazetteer

GRID_1 = "990101001001"  # 东大社区第一网格: 阳光花园, 东大菜市场
GRID_2 = "990101001002"  # 东大社区第二网格: 东大小学, 建设路
GRID_3 = "990101001003"  # 东大社区第三网格
DONGDA = "990101001"  # 东大社区 (community)
XINGFU_1 = "990101002001"  # 幸福里社区第一网格: 幸福里小区, 幸福路


@pytest.mark.parametrize(
    ("text", "category", "urgency", "grid"),
    [
        ("阳光花园5号楼有人闻到很浓的煤气味，好像是502在漏气", "城乡建设", "urgent", GRID_1),
        ("我老公喝醉了打我，我现在躲在邻居家，在幸福里小区", "政法", "urgent", XINGFU_1),
        ("东大小学门口的路灯坏了一个星期了，晚上黑漆漆的", "城乡建设", "normal", GRID_2),
        ("建设路上的井盖丢了，很危险", "城乡建设", "urgent", GRID_2),
        ("幸福路12号楼下烧烤摊油烟太大，熏得窗户都不敢开", "环境保护", "normal", XINGFU_1),
        ("公司拖欠我们三个月工资了，老板电话也不接", "劳动和社会保障", "normal", None),
        ("请问二孩生育登记需要什么材料", "卫生计生", "normal", None),
    ],
)
def test_parse_table(parser: DemandParser, text: str, category: str, urgency: str, grid: str | None) -> None:
    demand = parser.parse(text)
    assert demand.category == category
    assert demand.urgency == urgency
    assert demand.location.grid == grid


def test_resident_gas_leak_has_building_room_and_reason(parser: DemandParser) -> None:
    demand = parser.parse("阳光花园5号楼有人闻到很浓的煤气味，好像是502在漏气")
    assert (demand.location.building, demand.location.room) == ("5", "502")
    assert demand.location.place == "阳光花园"
    assert demand.location.node == GRID_1
    assert "煤气" in demand.urgency_reason
    assert demand.missing == []


def test_officer_brackets_win(parser: DemandParser) -> None:
    demand = parser.parse("【事项】充电桩安装【地点】东大社区3网格【诉求人】张三【电话】13800000001【紧急】否")
    assert demand.fields["matter"] == "充电桩安装"
    assert demand.location.grid == GRID_3
    assert demand.location.source == "officer"
    assert demand.reporter_name == "张三"
    assert [(c.kind, c.value) for c in demand.contacts] == [("phone", "13800000001")]
    assert demand.urgency == "normal"
    assert demand.missing == []


def test_officer_urgent_flag_and_category_field(parser: DemandParser) -> None:
    demand = parser.parse("事项：楼道堆放杂物\n地点：锦绣家园2栋\n类别：城乡建设/物业管理\n紧急：是")
    assert (demand.category, demand.subcategory) == ("城乡建设", "物业管理")
    assert demand.classifier == "officer"
    assert demand.confidence == 1.0
    assert demand.urgency == "urgent"
    assert demand.location.building == "2"


def test_officer_location_beats_places_in_the_text(parser: DemandParser) -> None:
    demand = parser.parse("【事项】阳光花园的业主反映路灯不亮【地点】东大社区第二网格建设路")
    assert demand.location.grid == GRID_2


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("", [MISSING_MATTER, MISSING_LOCATION]),
        ("   ", [MISSING_MATTER, MISSING_LOCATION]),
        ("🙂🙂🙂", [MISSING_MATTER, MISSING_LOCATION]),
        ("你好，在吗？", [MISSING_MATTER, MISSING_LOCATION]),
        ("阳光花园", [MISSING_MATTER]),
        ("路灯坏了", [MISSING_LOCATION]),
        ("东大社区3网格路灯坏了", []),
    ],
)
def test_missing(parser: DemandParser, text: str, missing: list[str]) -> None:
    assert parser.parse(text).missing == missing


def test_reporter_grid_fills_location(parser: DemandParser) -> None:
    demand = parser.parse("楼下路灯坏了", reporter_grid=GRID_2)
    assert demand.missing == []
    assert demand.location.grid == GRID_2
    assert demand.location.source == "reporter"


def test_community_place_keeps_grid_none_unless_reporter_inside(parser: DemandParser) -> None:
    assert parser.parse("东大街路灯坏了").location.node == DONGDA
    assert parser.parse("东大街路灯坏了").location.grid is None
    assert parser.parse("东大街路灯坏了", reporter_grid=GRID_3).location.grid == GRID_3
    # A reporter from another community does not pull the demand into their own grid.
    assert parser.parse("东大街路灯坏了", reporter_grid=XINGFU_1).location.grid is None


def test_merge_fills_location(parser: DemandParser) -> None:
    demand = parser.parse("路灯坏了好几天了")
    assert demand.missing == [MISSING_LOCATION]
    merged = parser.merge(demand, "在阳光花园3号楼旁边")
    assert merged.missing == []
    assert merged.location.grid == GRID_1
    assert merged.location.building == "3"
    assert merged.category == "城乡建设"


def test_merge_fills_matter(parser: DemandParser) -> None:
    demand = parser.parse("东大社区1网格")
    assert demand.missing == [MISSING_MATTER]
    merged = parser.merge(demand, "楼道里的灯不亮")
    assert merged.missing == []
    assert merged.location.grid == GRID_1
    assert merged.category == "城乡建设"


def test_merge_keeps_contacts_and_adds_new_ones(parser: DemandParser) -> None:
    demand = parser.parse("路灯坏了 13800000001")
    merged = parser.merge(demand, "建设路，电话13912345678")
    assert [c.value for c in merged.contacts] == ["13800000001", "13912345678"]


def test_to_dict_is_json_and_masked(parser: DemandParser) -> None:
    demand = parser.parse("【事项】欠薪【诉求人】李四【电话】13912345678【身份证】990101199001011234 在建设路")
    data = demand.to_dict()
    text = json.dumps(data, ensure_ascii=False)
    assert "13912345678" not in text
    assert "990101199001011234" not in text
    assert {"category", "subcategory", "confidence", "urgency", "grid", "location", "contacts", "missing"} <= set(data)
    assert set(data["location"]) >= {"text", "node", "building", "unit", "room"}
    assert data["reporter_name"] == "李*"
    raw = demand.to_dict(masked=False)
    assert {"kind": "phone", "value": "13912345678"} in raw["contacts"]


def test_parser_without_region_still_classifies() -> None:
    parser = DemandParser(gazetteer=Gazetteer.from_region_tree(None))
    demand = parser.parse("小区噪音扰民，晚上广场舞音响太大")
    assert isinstance(demand, Demand)
    assert demand.category == "环境保护"
    assert demand.missing == [MISSING_LOCATION]


@pytest.mark.parametrize(
    "text",
    [
        "<p>阳光花园<b>5号楼</b>路灯不亮</p><script>alert(1)</script>",
        "陽光花園５號樓路燈不亮",
        "阳光花园五号楼路灯不亮",
    ],
)
def test_messy_input_same_result(parser: DemandParser, text: str) -> None:
    demand = parser.parse(text)
    assert demand.location.grid == GRID_1
    assert demand.location.building == "5"
    assert demand.category == "城乡建设"


def test_long_paste_is_capped_and_fast(parser: DemandParser) -> None:
    demand = parser.parse("阳光花园路灯不亮。" + "啊" * 10_000)
    assert len(demand.description) <= 4000
    assert demand.location.grid == GRID_1


@pytest.mark.parametrize("value", [None, 12345, b"\xff\xfe\x00", "\x00\x01", "\ud800"])
def test_odd_values_never_raise(parser: DemandParser, value: object) -> None:
    assert isinstance(parser.parse(value), Demand)
