"""Reading request parameters: every malformed or out-of-range value is a 400 with a clear message,
never a 500 (an overflowing integer, a date the arithmetic cannot reach, control characters)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime

from werkzeug.routing import IntegerConverter

# Dates outside these years are refused: the arithmetic around them (periods, time zones) cannot fail.
MIN_YEAR, MAX_YEAR = 2000, 2999
MAX_DB_INT = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


class InputError(ValueError):
    """A parameter the caller must fix; the message says which and how."""


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` in every URL: at most 10 digits and within a database integer, else the route does not
    match (404), instead of an overflow deep in the database driver."""

    regex = r"\d{1,10}"

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_DB_INT)
        super().__init__(map, *args, **kwargs)


def bounded_int(args: Mapping[str, str], name: str, default: int, low: int, high: int, clamp: bool = False) -> int:
    raw = args.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip()
    if len(text) > 12 or not re.fullmatch(r"-?[0-9]+", text):
        raise InputError(f"{name} must be an integer between {low} and {high}")
    value = int(text)
    if clamp:
        return min(high, max(low, value))
    if not low <= value <= high:
        raise InputError(f"{name} must be an integer between {low} and {high}")
    return value


def _in_range(value: date, name: str) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise InputError(f"{name} must fall between the years {MIN_YEAR} and {MAX_YEAR}")


def moment(args: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 moment with a UTC offset, e.g. 2026-11-01T00:00:00+08:00; None when absent."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) > 40:
        raise InputError(f"{name} must be ISO 8601, e.g. 2026-11-01T00:00:00+08:00")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{name} must be ISO 8601, e.g. 2026-11-01T00:00:00+08:00") from None
    if value.tzinfo is None:
        raise InputError(f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00+08:00")
    _in_range(value, name)
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{name} is out of range") from None
    return value


def day(args: Mapping[str, str], name: str) -> date | None:
    """A calendar day YYYY-MM-DD; None when absent."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw[:10]) if len(raw) == 10 else date.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{name} must be a date like 2026-11-01") from None
    _in_range(value, name)
    return value


def safe_text(value: str, limit: int) -> str:
    """Free text as stored: cut to `limit` characters, control characters other than newline/tab dropped."""
    return "".join(ch for ch in value[:limit] if ch in "\n\t" or ch >= " " and ch != "\x7f")
