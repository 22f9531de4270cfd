"""Urgency rules and the built-in lexicon classifier."""

from __future__ import annotations

from pathlib import Path

import pytest

from demand.lexicon import LexiconClassifier
from demand.normalize import normalize
from demand.taxonomy import TaxonomyError, load_taxonomy, taxonomy_from_dict
from demand.urgency import UrgencyDetector, detect_urgency

STANDARD_15 = [
    "城乡建设",
    "环境保护",
    "交通运输",
    "教育文体",
    "劳动和社会保障",
    "商贸旅游",
    "卫生计生",
    "民政",
    "政法",
    "农村农业",
    "国土资源",
    "经济管理",
    "科技与信息产业",
    "党务政务",
    "纪检监察",
]


@pytest.mark.parametrize(
    "text",
    [
        "5号楼闻到很浓的煤气味",
        "楼下着火了，好大的烟",
        "我老公喝醉了打我",
        "有人晕倒了叫不醒",
        "建设路的井盖丢了",
        "电线掉在地上还在冒火花",
        "电梯困人了，里面有老人",
        "河堤决堤了",
        "孩子不见了，找了一下午",
        "围墙倒塌压住了车",
        "有人要跳楼",
        "我妈接到冒充公安的电话，已经转了五万",
    ],
)
def test_urgent(text: str) -> None:
    verdict = detect_urgency(normalize(text))
    assert verdict.urgent
    assert verdict.reason


@pytest.mark.parametrize(
    "text",
    [
        "路灯坏了",
        "没有煤气味了，但燃气表一直走",
        "去年着火以后说要装消防栓，现在也没装",
        "消防通道堵塞，有火灾隐患",
        "担心电动车在楼道充电会起火",
        "真着火了怎么办",
        "楼下着火了，火已经扑灭了",
        "井盖踩上去有响声",
        "电梯经常坏，好几次差点困人",
        "举报后被打击报复",
        "公交站牌被撞坏了",
        "",
    ],
)
def test_normal(text: str) -> None:
    verdict = detect_urgency(normalize(text))
    assert not verdict.urgent
    assert verdict.reason is None


def test_county_words_extend_the_rules() -> None:
    detector = UrgencyDetector(extra_words=["尾矿库渗漏"])
    assert detector.detect("尾矿库渗漏了").urgent
    assert not detect_urgency("尾矿库渗漏了").urgent


def test_default_taxonomy_has_the_standard_15() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.names == STANDARD_15
    assert all(taxonomy.subcategories(name) for name in STANDARD_15)
    assert "政策咨询" in taxonomy.subcategories("党务政务")  # config/sla.yaml refers to it


@pytest.mark.parametrize(
    ("label", "resolved"),
    [
        ("城乡建设", ("城乡建设", None)),
        ("城乡建设/物业管理", ("城乡建设", "物业管理")),
        ("物业管理", ("城乡建设", "物业管理")),
        ("劳动保障", None),
        ("劳动和社会保障-社会保险", ("劳动和社会保障", "社会保险")),
        ("政法", ("政法", None)),
        ("", None),
        ("火星殖民", None),
    ],
)
def test_resolve_label(label: str, resolved: tuple | None) -> None:
    assert load_taxonomy().resolve_label(label) == resolved


@pytest.mark.parametrize(
    ("text", "category", "subcategory"),
    [
        ("小区物业不作为，电梯坏了也不修", "城乡建设", "物业管理"),
        ("晚上广场舞噪音扰民", "环境保护", "噪声污染"),
        ("公交车甩站不停", "交通运输", "公交客运"),
        ("学校有偿补课", "教育文体", "教育收费"),
        ("老板拖欠工资三个月", "劳动和社会保障", "欠薪讨薪"),
        ("超市卖过期食品", "商贸旅游", "食品安全"),
        ("生育登记怎么办", "卫生计生", "计划生育"),
        ("低保被取消了", "民政", "社会救助"),
        ("家里被小偷偷了", "政法", "治安管理"),
        ("种粮补贴没发", "农村农业", "惠农补贴"),
        ("宅基地建房审批", "国土资源", "宅基地建房"),
        ("银行暴力催收", "经济管理", "金融服务"),
        ("手机信号差", "科技与信息产业", "通信网络"),
        ("想入党，找谁", "党务政务", "党建党务"),
        ("村干部贪污扶贫款", "纪检监察", "违纪违法举报"),
    ],
)
def test_lexicon_one_per_category(text: str, category: str, subcategory: str) -> None:
    result = LexiconClassifier(load_taxonomy()).classify(normalize(text))
    assert (result.category, result.subcategory) == (category, subcategory)
    assert 0 < result.confidence <= 1
    assert result.evidence


def test_lexicon_knows_nothing_about_nothing() -> None:
    result = LexiconClassifier(load_taxonomy()).classify("今天天气不错")
    assert result.category is None and result.confidence == 0.0


def test_taxonomy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError):
        taxonomy_from_dict({"categories": []})
    with pytest.raises(TaxonomyError):
        taxonomy_from_dict({"categories": [{"name": "甲"}, {"name": "甲"}]})
    with pytest.raises(TaxonomyError):
        taxonomy_from_dict({"categories": [{"name": "甲", "keywords": "不是列表"}]})
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text("categories: [unclosed", encoding="utf-8")
    with pytest.raises(TaxonomyError):
        load_taxonomy(bad)


def test_county_taxonomy_is_used(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "categories:\n  - name: 水务\n    children:\n      - name: 供水\n        keywords: [停水]\n"
        "  - name: 其他事项\n    keywords: [你好]\nfallback: {category: 其他事项}\n",
        encoding="utf-8",
    )
    taxonomy = load_taxonomy(path)
    result = LexiconClassifier(taxonomy).classify("又停水了")
    assert (result.category, result.subcategory) == ("水务", "供水")
    assert taxonomy.fallback == ("其他事项", None)


def test_a_long_letter_is_urgent_only_when_it_says_now() -> None:
    letter = (
        "尊敬的领导：我想反映一个情况。"
        + "去年小区里发生过火灾，当时有人被烧伤，"
        + "物业一直没有整改，消防设施也不完善。" * 12
    )
    assert not detect_urgency(normalize(letter)).urgent
    assert detect_urgency(normalize(letter + "现在楼下又着火了，快来人！")).urgent
