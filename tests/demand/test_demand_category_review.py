"""Category: problem words outweigh setting words; danger kinds count; unsure demands are flagged for review."""

from __future__ import annotations

import pytest

from demand import DemandParser
from demand.lexicon import LexiconClassifier
from demand.normalize import normalize
from demand.taxonomy import load_taxonomy, taxonomy_from_dict


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("学校旁边那条路上的货车超速，家长都不敢让孩子自己走", "交通运输"),
        ("工地老板拖欠我们三个月工资", "劳动和社会保障"),
        ("夜市的烧烤油烟呛得楼上没法开窗", "环境保护"),
        ("八十岁老人的高龄补贴什么时候发", "民政"),
    ],
)
def test_problem_words_outweigh_the_setting(text: str, category: str) -> None:
    result = LexiconClassifier(load_taxonomy()).classify(normalize(text))
    assert result.category == category


def test_a_setting_word_alone_still_decides() -> None:
    assert LexiconClassifier(load_taxonomy()).classify("学校的事想问一下").category == "教育文体"


def test_setting_words_come_from_the_taxonomy_file() -> None:
    data = {
        "categories": [
            {"name": "甲", "keywords": ["学堂"]},
            {"name": "乙", "keywords": ["漏雨"]},
        ],
    }
    plain = LexiconClassifier(taxonomy_from_dict(data)).classify("学堂学堂漏雨")
    setting = LexiconClassifier(taxonomy_from_dict({**data, "setting_words": ["学堂"]})).classify("学堂学堂漏雨")
    assert plain.category == "甲"
    assert setting.category == "乙"


def test_a_fire_in_a_school_is_a_fire_matter(parser: DemandParser) -> None:
    demand = parser.parse("东大小学的教学楼着火了，浓烟很大，学生还在里面")
    assert demand.urgency == "urgent"
    assert demand.category == "政法"


def test_unsure_demands_need_review_and_say_so(parser: DemandParser) -> None:
    unsure = parser.parse("那个事情到底有没有人管啊，说了好久了")
    sure = parser.parse("阳光花园的物业不作为，电梯坏了一个月也不修，物业费照收")
    assert unsure.needs_review and unsure.to_dict()["needs_review"] is True
    assert not sure.needs_review
    assert sure.confidence >= parser.abstain_threshold > unsure.confidence


def test_an_officer_category_is_never_sent_to_review(parser: DemandParser) -> None:
    demand = parser.parse("【事项】其他【类别】民政【地点】阳光花园")
    assert demand.classifier == "officer" and not demand.needs_review


def test_an_answer_that_names_the_matter_lifts_the_review_flag(parser: DemandParser) -> None:
    unsure = parser.parse("那个事情到底有没有人管啊，说了好久了")
    merged = parser.merge(unsure, "阳光花园3号楼门口路灯不亮好几天了")
    assert unsure.needs_review and merged.category == "城乡建设" and not merged.needs_review
    still_unsure = parser.merge(parser.parse("阳光花园3号楼门口"), "那个事情到底有没有人管啊")
    assert still_unsure.needs_review
