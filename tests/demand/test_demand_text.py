"""Normalisation, contacts and officer fields: the pieces every other step stands on."""

from __future__ import annotations

import pytest

from demand.brackets import parse_fields, urgent_flag
from demand.contacts import (
    Contact,
    blank_contacts,
    find_contacts,
    id_card_checksum_ok,
    mask_id_card,
    mask_name,
    mask_phone,
    mask_text,
)
from demand.normalize import chinese_to_int, clean_text, match_text, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("阳光花园一号楼三单元五零二室", "阳光花园1号楼3单元502室"),
        ("东大社区第三网格", "东大社区第3网格"),
        ("東大社區第三網格", "东大社区第3网格"),
        ("１２３４５ＡＢＣ", "12345ABC"),
        ("十二栋二十三层", "12栋23层"),
        ("柳林一组", "柳林1组"),
        ("<p>路灯<br/>不亮&amp;</p>", "路灯\n不亮&"),
        ("  多   空格\t\t和\u3000全角空格 ", "多 空格 和 全角空格"),
        ("零宽\u200b字符\ufeff", "零宽字符"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("一", 1),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("二十三", 23),
        ("一百零五", 105),
        ("五零二", 502),
        ("两", 2),
        ("号", None),
        ("", None),
    ],
)
def test_chinese_to_int(numeral: str, value: int | None) -> None:
    assert chinese_to_int(numeral) == value


def test_clean_text_keeps_chinese_punctuation_and_caps_length() -> None:
    assert clean_text("你好，路灯坏了。") == "你好，路灯坏了。"
    assert len(clean_text("啊" * 50_000)) == 4000
    assert clean_text(None) == ""
    assert clean_text(b"\xe8\xb7\xaf\xe7\x81\xaf") == "路灯"


def test_match_text_leaves_other_numerals_alone() -> None:
    assert match_text("一个星期") == "一个星期"
    assert match_text("三楼漏水") == "3楼漏水"


@pytest.mark.parametrize(
    ("text", "contacts"),
    [
        ("电话13800000001", [("phone", "13800000001")]),
        ("电话138-0000-0001，或者 139 1234 5678", [("phone", "13800000001"), ("phone", "13912345678")]),
        ("+86 13912345678", [("phone", "13912345678")]),
        ("座机0571-88886666", [("phone", "0571-88886666")]),
        ("身份证990101199001011234", [("id_card", "990101199001011234")]),
        ("身份证99010119900101123x", [("id_card", "99010119900101123X")]),
        ("订单号2023123456789012345", []),
        ("5号楼502室", []),
        ("13800000001 再说一遍 13800000001", [("phone", "13800000001")]),
        ("身份证990101199013011234", []),  # month 13: not a birth date
    ],
)
def test_find_contacts(text: str, contacts: list[tuple[str, str]]) -> None:
    assert [(c.kind, c.value) for c in find_contacts(text)] == contacts


def test_masks() -> None:
    assert mask_phone("13800000001") == "138****0001"
    assert mask_phone("0571-88886666") == "0571-****6666"
    assert mask_id_card("990101199001011234") == "990101********1234"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("") == ""
    assert Contact("phone", "13800000001").to_dict() == {"kind": "phone", "value": "138****0001"}
    assert mask_text("找张三13800000001，身份证990101199001011234") == "找张三138****0001，身份证990101********1234"


def test_blank_contacts_keeps_offsets() -> None:
    text = "阳光花园5号楼 13800000001"
    blanked = blank_contacts(text)
    assert len(blanked) == len(text)
    assert "13800000001" not in blanked and blanked.startswith("阳光花园5号楼")


def test_id_card_checksum() -> None:
    assert id_card_checksum_ok("11010519491231002X")
    assert not id_card_checksum_ok("110105194912310021")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            "【事项】充电桩安装【地点】东大社区3网格【诉求人】张三【电话】13800000001【紧急】否",
            {
                "matter": "充电桩安装",
                "location": "东大社区3网格",
                "reporter": "张三",
                "phone": "13800000001",
                "urgent": "否",
            },
        ),
        ("【事项：楼道堆物】【地点：建设路12号】", {"matter": "楼道堆物", "location": "建设路12号"}),
        ("[问题] 路灯不亮 [地址] 幸福路", {"matter": "路灯不亮", "location": "幸福路"}),
        (
            "事项：路灯不亮\n地点：阳光花园3号楼\n联系人：李四 电话：13912345678",
            {"matter": "路灯不亮", "location": "阳光花园3号楼", "reporter": "李四", "phone": "13912345678"},
        ),
        ("地址:幸福路8号", {"location": "幸福路8号"}),
        ("问题：路灯不亮了", {}),  # one prose-like pair is a resident talking, not a form
        ("我觉得问题是物业不管", {}),
        ("", {}),
    ],
)
def test_parse_fields(text: str, fields: dict[str, str]) -> None:
    assert parse_fields(text) == fields


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        ("是", True),
        ("紧急", True),
        ("特急", True),
        ("否", False),
        ("不紧急", False),
        ("一般", False),
        ("", None),
        ("不知道", None),
    ],
)
def test_urgent_flag(value: str, flag: bool | None) -> None:
    assert urgent_flag(value) is flag
