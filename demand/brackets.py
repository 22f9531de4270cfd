"""Officer report formats: 【事项】…【地点】… brackets and `key：value` lines.

Officers paste reports like "【事项】充电桩安装【地点】东大社区3网格【诉求人】张三【电话】138…【紧急】否" or
one `地点：…` per line. What they state wins over the parser's guesses, so the field names officers
actually use are mapped to a small set of canonical keys.
"""

from __future__ import annotations

import re

# Canonical key → labels officers use for it. Longer labels first within the regex (see _LABEL).
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "matter": (
        "事项",
        "诉求事项",
        "诉求内容",
        "诉求",
        "反映问题",
        "反映事项",
        "反映内容",
        "问题描述",
        "问题",
        "内容",
        "事由",
        "情况",
        "具体情况",
        "事件",
        "主要诉求",
        "标题",
    ),
    "location": (
        "地点",
        "地址",
        "事发地点",
        "事发地址",
        "发生地点",
        "位置",
        "详细地址",
        "所在地",
        "住址",
        "小区",
        "点位",
    ),
    "reporter": ("诉求人", "反映人", "来电人", "报告人", "联系人", "当事人", "姓名", "上报人", "求助人", "投诉人"),
    "phone": ("电话", "联系电话", "手机", "手机号", "手机号码", "联系方式", "电话号码", "来电号码"),
    "urgent": ("紧急", "紧急程度", "是否紧急", "紧急情况", "缓急", "等级", "优先级"),
    "category": ("类别", "分类", "类型", "问题类型", "事项类别", "诉求类别", "问题分类", "所属类别"),
    "grid": ("网格", "所属网格", "网格名称", "所在网格"),
    "id_card": ("身份证", "身份证号", "身份证号码", "证件号", "证件号码"),
    "time": ("时间", "发生时间", "事发时间", "上报时间", "反映时间"),
    "request": ("诉求期望", "期望", "要求", "处理要求", "建议"),
}
_LABEL_TO_KEY = {label: key for key, labels in FIELD_LABELS.items() for label in labels}
_LABEL = "|".join(sorted(map(re.escape, _LABEL_TO_KEY), key=len, reverse=True))
# 【事项】value   or  【事项：value】  or  [事项] value
_BRACKET = re.compile(r"[【\[]\s*(" + _LABEL + r")\s*(?:[】\]]|[:：]\s*)")
# key：value at the start of a line or after a separator; the value runs to the next key or line end.
_KEY_VALUE = re.compile(r"(?:^|(?<=[\n；;，,。 ]))(" + _LABEL + r")\s*[:：]\s*")
_TRAILING = " \t\n，,。；;、】]"

_URGENT_YES = ("是", "紧急", "急", "特急", "加急", "非常紧急", "十分紧急", "红色", "高", "一级", "特别紧急", "yes", "y")
_URGENT_NO = ("否", "不紧急", "一般", "普通", "不急", "常规", "低", "no", "n", "无")


def _split(text: str, pattern: re.Pattern[str]) -> dict[str, str]:
    matches = list(pattern.finditer(text))
    fields: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[match.end() : end]
        if pattern is _KEY_VALUE:
            value = value.split("\n", 1)[0]
        value = value.strip(_TRAILING).replace("【", "").replace("】", "").strip()
        key = _LABEL_TO_KEY[match.group(1)]
        if value and key not in fields:
            fields[key] = value[:500]
    return fields


def parse_fields(text: str) -> dict[str, str]:
    """Fields an officer stated, by canonical key ('matter', 'location', 'reporter', 'phone', 'urgent', …).

    Bracket fields come first; `key：value` lines fill keys the brackets did not state. A message with a
    single `key：value` pair is treated as prose ("问题：路灯不亮" is still a resident talking) unless the
    key is one only a form would use.
    """
    if not text:
        return {}
    fields = _split(text, _BRACKET) if ("【" in text or "[" in text) else {}
    if "：" in text or ":" in text:
        kv = _split(text, _KEY_VALUE)
        if len(kv) >= 2 or fields or kv.keys() & {"location", "reporter", "phone", "grid", "urgent", "category"}:
            for key, value in kv.items():
                fields.setdefault(key, value)
    return fields


def urgent_flag(value: str | None) -> bool | None:
    """An officer's urgency statement as True/False; None when absent or unclear."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith(_URGENT_NO) or value in _URGENT_NO:
        return False
    if value.startswith(_URGENT_YES):
        return True
    return None
