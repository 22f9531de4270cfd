"""Checks every push passes before anything is parsed or stored.

Each failure maps to one HTTP status: 403 for anything that is not provably from the platform
(signature, AppId, stale timestamp), 400 for bodies we refuse to parse.
"""

from __future__ import annotations

import re
import time
from xml.parsers import expat

from flask import Request

# Expat would expand internal entities (billion laughs); no legitimate push carries a DTD.
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class RejectedPush(Exception):
    """A push we refuse; `status` is the HTTP answer, `reason` goes to the log only."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing oversized ones without reading them whole."""
    length = request.content_length
    if length is not None and length > limit:
        raise RejectedPush(400, f"body of {length} bytes exceeds {limit}")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise RejectedPush(400, f"body exceeds {limit} bytes")
    return body


def check_xml_shape(body: bytes | str) -> str:
    """Text of an XML push, refused if it is not UTF-8, not XML, or declares a DTD/entities."""
    raw = body.encode() if isinstance(body, str) else body
    if _DTD.search(raw):
        raise RejectedPush(400, "XML with DOCTYPE/ENTITY refused")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedPush(400, "body is not UTF-8") from None
    if not text.lstrip().startswith("<"):
        raise RejectedPush(400, "body is not XML")
    _check_structure(text)
    return text


# A real push is a flat <xml> of a few dozen fields, at most five levels deep (ScanCodeInfo, SendPicsInfo).
MAX_XML_DEPTH = 16
MAX_XML_ELEMENTS = 1000


def _check_structure(text: str) -> None:
    """Refuse malformed, deeply nested or huge XML in one pass of expat (C), before xmltodict builds dicts."""
    parser = expat.ParserCreate()
    # Every element costs a '<' (and all but the innermost a closing '</'), so a document with no more than
    # 2 x MAX_XML_DEPTH of them is within both limits: only well-formedness is left to check, with no Python
    # callback per element. Every real push is such a document; it saves a third of this check's time.
    if text.count("<") <= 2 * MAX_XML_DEPTH:
        try:
            parser.Parse(text, True)
        except expat.ExpatError as exc:
            raise RejectedPush(400, f"malformed XML: {exc}") from None
        return
    depth = elements = 0

    def start(name, attrs) -> None:
        nonlocal depth, elements
        depth += 1
        elements += 1
        if depth > MAX_XML_DEPTH:
            raise RejectedPush(400, f"XML nested deeper than {MAX_XML_DEPTH}")
        if elements > MAX_XML_ELEMENTS:
            raise RejectedPush(400, f"XML with more than {MAX_XML_ELEMENTS} elements")

    def end(name) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler, parser.EndElementHandler = start, end
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise RejectedPush(400, f"malformed XML: {exc}") from None


def check_timestamp(timestamp: str | None, max_skew: int, now: float | None = None) -> None:
    """Refuse replays: WeChat's timestamp must be within max_skew seconds of our clock."""
    try:
        sent = int(timestamp or "")
    except ValueError:
        raise RejectedPush(403, "timestamp missing or not an integer") from None
    if abs((now if now is not None else time.time()) - sent) > max_skew:
        raise RejectedPush(403, f"timestamp {sent} is more than {max_skew}s off")
