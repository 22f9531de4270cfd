"""Property-based: whatever arrives, the parser answers with a well-formed Demand and never raises."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demand import Demand, DemandParser
from demand.brackets import parse_fields
from demand.contacts import find_contacts, mask_text
from demand.normalize import normalize

# Arbitrary Unicode, plus text built from the pieces real messages are made of, so the interesting
# paths (places, brackets, numbers, contacts) are exercised and not only the "nothing found" one.
_PIECES = st.sampled_from(
    [
        "阳光花园",
        "东大社区",
        "三网格",
        "5号楼",
        "一号楼",
        "二单元",
        "502",
        "【事项】",
        "【地点】",
        "【电话】",
        "【紧急】是",
        "地点：",
        "138-0000-0001",
        "990101199001011234",
        "煤气味",
        "着火",
        "没有",
        "路灯坏了",
        "<b>",
        "</p>",
        "&amp;",
        "１２３",
        "東大",
        "🙂",
        "\u200b",
        "\n",
        "：",
        "，",
        "第",
        "十二",
        "\x00",
        "\ud800",
    ]
)
_MESSAGES = st.one_of(
    st.text(max_size=300),
    st.lists(_PIECES, max_size=30).map("".join),
    st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=40).map("".join),
)
_GRIDS = st.one_of(st.none(), st.sampled_from(["990101001001", "990101001", "nonexistent", ""]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_MESSAGES, reporter_grid=_GRIDS)
def test_parse_never_raises_and_is_well_formed(parser: DemandParser, text: str, reporter_grid: str | None) -> None:
    demand = parser.parse(text, reporter_grid=reporter_grid)
    assert isinstance(demand, Demand)
    assert demand.urgency in ("urgent", "normal")
    assert 0.0 <= demand.confidence <= 1.0
    assert set(demand.missing) <= {"matter", "location"}
    assert ("location" in demand.missing) == (demand.location.node is None)
    shown = json.dumps(demand.to_dict(), ensure_ascii=False)
    for contact in demand.contacts:
        # The raw value never shows as a number of its own (it may be part of a longer, non-contact number).
        assert not re.search(rf"(?<![0-9]){re.escape(contact.value)}(?![0-9])", shown)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=_MESSAGES, answer=_MESSAGES)
def test_merge_never_raises(parser: DemandParser, first: str, answer: str) -> None:
    merged = parser.merge(parser.parse(first), answer)
    assert isinstance(merged, Demand)
    assert set(merged.missing) <= {"matter", "location"}


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=500))
def test_text_helpers_never_raise(text: str) -> None:
    normalized = normalize(text)
    assert normalize(normalized) == normalized  # idempotent
    parse_fields(text)
    find_contacts(text)
    assert len(mask_text(text)) >= 0
