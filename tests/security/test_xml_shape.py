"""The XML shape check at its limits: the cheap path for small documents must agree with the full count."""

from __future__ import annotations

import pytest

from bot.security import MAX_XML_DEPTH, MAX_XML_ELEMENTS, RejectedPush, check_xml_shape


def nested(depth: int, inner: str = "x") -> str:
    return "<a>" * (depth - 1) + f"<b>{inner}</b>" + "</a>" * (depth - 1)


@pytest.mark.parametrize("inner", ["x", "<![CDATA[x]]>"])
def test_the_deepest_allowed_document_passes_and_one_level_more_is_refused(inner):
    assert check_xml_shape(nested(MAX_XML_DEPTH, inner))
    with pytest.raises(RejectedPush, match="deeper"):
        check_xml_shape(nested(MAX_XML_DEPTH + 1, inner))


def test_a_self_closing_innermost_element_counts_as_a_level():
    assert check_xml_shape("<a>" * (MAX_XML_DEPTH - 1) + "<b/>" + "</a>" * (MAX_XML_DEPTH - 1))
    with pytest.raises(RejectedPush, match="deeper"):
        check_xml_shape("<a>" * MAX_XML_DEPTH + "<b/>" + "</a>" * MAX_XML_DEPTH)


@pytest.mark.parametrize("body", ["<xml><a>1</b></xml>", "<xml><a>1</a>", "<xml>&undefined;</xml>", "<xml></xml><x/>"])
def test_small_malformed_documents_are_refused(body):
    with pytest.raises(RejectedPush, match="malformed"):
        check_xml_shape(body)


def test_too_many_elements_are_refused():
    with pytest.raises(RejectedPush, match="elements"):
        check_xml_shape("<xml>" + "<a>1</a>" * (MAX_XML_ELEMENTS + 1) + "</xml>")
