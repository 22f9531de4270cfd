"""Urgency by danger class: hazards need 'still in use / getting worse / happening now'; false alarms stay normal."""

from __future__ import annotations

import pytest

from demand.normalize import normalize
from demand.urgency import detect_urgency


@pytest.mark.parametrize(
    ("text", "danger"),
    [
        ("村口那座石拱桥桥面裂了一道缝，拖拉机照样从上面过", "structural"),
        ("老屋的山墙下雨后往外鼓，裂缝越来越宽，奶奶还住在里面", "structural"),
        ("商场外墙的玻璃一块块往下掉，楼下是公交站台", "structural"),
        ("有条黑狗刚把放学的孩子咬了，现在还在巷子里乱窜", "animal"),
        ("马蜂把两个老人蛰伤了，蜂窝还在屋檐下", "animal"),
        ("两个司机吵起来了，一个从车上拿下来一根钢管", "violence"),
        ("水位还在涨，已经漫过了河堤", "flooding"),
        ("厨房里有股很重的天然气味，还有人在做饭", "fire_gas"),
        ("我爷爷在菜地里倒下了，叫他没反应", "medical"),
    ],
)
def test_danger_classes(text: str, danger: str) -> None:
    verdict = detect_urgency(normalize(text))
    assert verdict.urgent, text
    assert danger in verdict.dangers
    assert verdict.reason and verdict.reason.split("：")[0]  # the class label leads the reason


@pytest.mark.parametrize(
    "text",
    [
        "老房子墙上有条裂缝，好多年了也没变化，想申请危房改造",
        "外墙瓷砖去年掉过几块，现在用网兜住了，什么时候修",
        "楼上天天跺地板，吵了半年了，我真想拿刀上去跟他拼命",
        "对门那家天天砸墙装修，吵了两个月了，气得我想杀人",
        "接到冒充公安的电话让我转钱到安全账户，我没转，提醒大家注意",
        "听说前几天河边有人落水了，能不能装个护栏",
        "孩子上个月被狗咬了，打狂犬疫苗能报销吗",
        "医院门口天天堵车，救护车都进不去",
        "老人昨天晕倒了，已经送医院了，现在没事了，想申请家庭医生",
    ],
)
def test_false_alarms_stay_normal(text: str) -> None:
    verdict = detect_urgency(normalize(text))
    assert not verdict.urgent, verdict.reason


def test_hearsay_of_a_danger_now_is_still_urgent() -> None:
    verdict = detect_urgency(normalize("邻居说楼道里煤气味很重，她不敢进去，快派人来看看"))
    assert verdict.urgent and "fire_gas" in verdict.dangers


def test_reason_names_the_qualifier_for_a_hazard() -> None:
    verdict = detect_urgency(normalize("挡土墙裂开了，还在往外渗泥水，墙下面住着人"))
    assert verdict.urgent
    assert "结构安全" in verdict.reason and "（" in verdict.reason
