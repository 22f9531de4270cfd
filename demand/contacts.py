"""Phone numbers and ID-card numbers in free text, and the masks used wherever they are shown."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

# Mainland mobile numbers, optionally +86/0086-prefixed and written in 3-4-4 groups with spaces or dashes.
_MOBILE = re.compile(r"(?<![\dA-Za-z])(?:(?:\+|00)?86[- ]?)?(1[3-9]\d[- ]?\d{4}[- ]?\d{4})(?![\dA-Za-z])")
# Landlines: area code 0xx/0xxx, a separator, 7-8 digits (bare 11-12 digit strings are too ambiguous).
_LANDLINE = re.compile(
    r"(?<![\dA-Za-z])(0[1-9]\d{1,2})[- ](\d{7,8})(?![\dA-Za-z])"
    r"|(?<!\d)\((0[1-9]\d{1,2})\)(\d{7,8})(?!\d)"
)
# Second-generation resident ID: 6-digit area, birth date, 3-digit sequence, check digit (0-9 or X).
_ID_CARD = re.compile(
    r"(?<![\dA-Za-z])([1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx])"
    r"(?![\dA-Za-z])"
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Contact:
    """A contact detail found in a message. `value` is the raw, normalised value; mask it when showing it."""

    kind: str  # 'phone' | 'id_card'
    value: str

    def masked(self) -> str:
        """The value as it may be shown to staff and in logs."""
        return mask_id_card(self.value) if self.kind == "id_card" else mask_phone(self.value)

    def to_dict(self, masked: bool = True) -> dict[str, str]:
        """JSON-able form; masked unless the caller is allowed to see the raw value."""
        return {"kind": self.kind, "value": self.masked() if masked else self.value}


def id_card_checksum_ok(number: str) -> bool:
    """True when the 18th character of a resident ID matches the ISO 7064 check of the first 17."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=False))
    return _ID_CHECK[total % 11] == number[17].upper()


def _plausible_birth_date(number: str) -> bool:
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return date(1890, 1, 1) <= born <= date.today()


def find_contacts(text: str) -> list[Contact]:
    """Phone numbers and ID-card numbers in order of appearance, deduplicated.

    ID cards are accepted with a plausible birth date even when the check digit is wrong, because people
    mistype them and staff still need to see (masked) that one was given.
    """
    if not text:
        return []
    found: list[tuple[int, Contact]] = []
    taken: list[tuple[int, int]] = []
    for match in _ID_CARD.finditer(text):
        number = match.group(1).upper()
        if _plausible_birth_date(number):
            found.append((match.start(), Contact("id_card", number)))
            taken.append(match.span())
    for match in _MOBILE.finditer(text):
        if any(a <= match.start() < b for a, b in taken):
            continue
        found.append((match.start(), Contact("phone", re.sub(r"[- ]", "", match.group(1)))))
        taken.append(match.span())
    for match in _LANDLINE.finditer(text):
        if any(a <= match.start() < b for a, b in taken):
            continue
        area, local = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        found.append((match.start(), Contact("phone", f"{area}-{local}")))
        taken.append(match.span())
    seen: set[Contact] = set()
    result = []
    for _, contact in sorted(found, key=lambda item: item[0]):
        if contact not in seen:
            seen.add(contact)
            result.append(contact)
    return result


def contact_spans(text: str) -> list[tuple[int, int]]:
    """Where contact details sit in the text, so other extractors can ignore their digits."""
    spans = [m.span() for m in _ID_CARD.finditer(text)]
    spans += [m.span() for m in _MOBILE.finditer(text)]
    spans += [m.span() for m in _LANDLINE.finditer(text)]
    return spans


def blank_contacts(text: str) -> str:
    """The text with every contact detail replaced by spaces of the same length (offsets stay valid)."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    chars = list(text)
    for start, end in contact_spans(text):
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def mask_phone(value: str | None) -> str:
    """138****0001 for mobiles; the last 4 digits kept for landlines (0571-****5678)."""
    if not value:
        return ""
    digits = re.sub(r"\D", "", value)
    if len(digits) > 11 and digits[-11] == "1" and digits[:-11] in ("86", "0086"):
        digits = digits[-11:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    if "-" in value:
        area, _, local = value.partition("-")
        return f"{area}-{'*' * max(len(local) - 4, 0)}{local[-4:]}"
    if len(digits) <= 4:
        return "*" * len(digits)
    return f"{'*' * (len(digits) - 4)}{digits[-4:]}"


def mask_id_card(value: str | None) -> str:
    """Area code and the last 4 characters kept: 990101********123X."""
    if not value:
        return ""
    if len(value) <= 10:
        return "*" * len(value)
    return f"{value[:6]}{'*' * (len(value) - 10)}{value[-4:]}"


def mask_name(value: str | None) -> str:
    """The first character kept: 张三 → 张*, 欧阳娜娜 → 欧***; a name is personal data too."""
    if not value:
        return ""
    value = value.strip()
    if len(value) <= 1:
        return value
    return value[0] + "*" * (len(value) - 1)


def mask_text(text: str, known: Sequence[Contact] = ()) -> str:
    """The text with every contact detail replaced by its mask (for descriptions shown to staff).

    `known` contacts are masked wherever their value appears, even where the pattern alone would not
    have recognised it (glued to other characters, say).
    """
    if not text or not any(ch.isdigit() for ch in text):
        return text
    for contact in known:
        if len(contact.value) >= 7 and contact.value in text:
            text = text.replace(contact.value, contact.masked())
    out = []
    last = 0
    spans = sorted(set(contact_spans(text)))
    for start, end in spans:
        if start < last:
            continue
        out.append(text[last:start])
        raw = text[start:end]
        digits = re.sub(r"[^\dXx]", "", raw)
        if len(digits) == 18:
            out.append(mask_id_card(digits.upper()))
        else:
            out.append(mask_phone(raw.strip()))
        last = end
    out.append(text[last:])
    return "".join(out)
