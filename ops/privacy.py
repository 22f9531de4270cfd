"""Masking of personal data for pages, lists, group messages, logs and exports: the one home of it.

demand.contacts finds contacts for the parser (and keeps its own masks for the parser's output); what the
service shows to someone who may not see personal data goes through here, which is stricter:

- numbers are matched after normalising what people actually type: full-width digits (１３９…), digits
  written as 〇一二三四五六七八九 (and 零, 幺), spaces, dots and dashes of every width between them;
- a reporter's name is masked wherever it appears in the text (the description too), not only in the
  reporters list;
- spreadsheet cells that would start a formula (=, +, -, @, and a leading tab or CR) are neutralised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from demand.contacts import Contact, mask_id_card, mask_name, mask_phone
from demand.contacts import mask_text as _mask_patterns

__all__ = ["csv_cell", "mask_id_card", "mask_name", "mask_phone", "mask_text", "normalise_digits"]

# Characters that stand for a digit once normalised.
_DIGIT_MAP = {chr(0xFF10 + i): str(i) for i in range(10)}  # full-width ０-９
_DIGIT_MAP.update({ch: str(i) for i, ch in enumerate("〇一二三四五六七八九")})
_DIGIT_MAP.update({"零": "0", "幺": "1", "Ｘ": "X", "ｘ": "X"})
_DIGITISH = "0-9０-９〇零一二三四五六七八九幺"
# Separators people put inside a number: spaces (also full-width), dots, dashes of any width, brackets.
_SEPARATORS = r"\s.．\-－‐‑‒–—―_/()（）"
# A run that may hold a number: starts and ends with a digit (or a final X of an ID), separators between.
_RUN = re.compile(
    rf"(?:\+|＋)?[{_DIGITISH}](?:[{_SEPARATORS}]{{0,3}}[{_DIGITISH}])+(?:[{_SEPARATORS}]{{0,2}}[XxＸｘ])?"
)
_MOBILE = re.compile(r"^(?:0{0,2}86)?(1[3-9]\d{9})$")
_LANDLINE = re.compile(r"^(0[1-9]\d{1,2})(\d{7,8})$")
_ID_CARD = re.compile(r"^[1-9]\d{16}[\dX]$")
_CHINESE_DIGITS = set("〇零一二三四五六七八九幺")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def normalise_digits(text: str) -> str:
    """Full-width and Chinese-numeral digits as ASCII digits, everything else unchanged."""
    return "".join(_DIGIT_MAP.get(ch, ch) for ch in text)


def _mask_number(raw: str) -> str | None:
    """The mask of a run when it holds a phone or ID number, else None (dates, amounts stay as they are)."""
    digits = re.sub(r"[^0-9X]", "", normalise_digits(raw).upper())
    if sum(ch.isdigit() for ch in digits) < 7:
        return None
    if _ID_CARD.match(digits):
        return mask_id_card(digits)
    mobile = _MOBILE.match(digits)
    if mobile:
        return mask_phone(mobile.group(1))
    landline = _LANDLINE.match(digits)
    if landline and not all(ch in _CHINESE_DIGITS for ch in raw if not ch.isspace()):
        return f"{landline.group(1)}-{mask_phone(landline.group(2))}"
    if "X" not in digits and 7 <= len(digits) <= 12 and sum(ch in _DIGIT_MAP for ch in raw) >= 7:
        # A number written in full-width digits or Chinese numerals: a phone number in all likelihood
        # (nobody writes a date or an amount that way), so it is masked even when its shape is unusual.
        return "*" * (len(digits) - 4) + digits[-4:]
    return None


def _mask_runs(text: str) -> str:
    out, last = [], 0
    for match in _RUN.finditer(text):
        raw = match.group(0)
        masked = _mask_number(raw)
        if masked is None:
            continue
        out.append(text[last : match.start()])
        out.append(masked)
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def mask_text(text: str | None, known: Sequence[Contact] = (), names: Iterable[str | None] = ()) -> str:
    """The text with every phone and ID number replaced by its mask, however it was written, and every
    given name (the ticket's reporters) replaced by its mask."""
    if not text:
        return text or ""
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True):
        text = text.replace(name, mask_name(name))
        if len(name) >= 2 and name[0] != name[1:2]:
            # 张三 written 张 三: match with spaces between the characters too
            spaced = re.compile(r"\s*".join(re.escape(ch) for ch in name))
            text = spaced.sub(mask_name(name), text)
    text = _mask_patterns(text, known)
    if any(ch in _DIGIT_MAP or ch.isdigit() for ch in text):
        text = _mask_runs(text)
    return text


def csv_cell(value: object) -> str:
    """A value as a spreadsheet will not run it: a leading =, +, -, @ (or tab/CR) gets a quote in front."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text
