"""Deadlines from the SLA table, counting working days on the Chinese official calendar."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import yaml

from config import LOCAL_TZ

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|wd|d)\s*$")


@dataclass(frozen=True)
class Duration:
    amount: float
    unit: str  # h | d | wd

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _DURATION.match(str(text))
        if not match:
            raise ValueError(f"bad duration {text!r}: use e.g. 2h, 3d or 5wd")
        return cls(float(match.group(1)), match.group(2))

    def after(self, start: datetime) -> datetime:
        if self.unit == "h":
            return start + timedelta(hours=self.amount)
        if self.unit == "d":
            return start + timedelta(days=self.amount)
        return add_working_days(start, int(self.amount))


@dataclass(frozen=True)
class SlaRule:
    sign: Duration
    resolve: Duration
    respond: Duration | None = None


@dataclass(frozen=True)
class SlaTable:
    urgent: SlaRule
    normal: SlaRule
    consultation: SlaRule
    consultation_subcategories: frozenset[str]
    escalate_after_reminder: dict[str, Duration]
    reopen_resolve: Duration
    rating_window: Duration

    def escalate_after(self, urgency: str) -> Duration:
        return self.escalate_after_reminder["urgent" if urgency == "urgent" else "normal"]

    def rule_for(self, urgency: str, subcategory: str | None) -> SlaRule:
        if urgency == "urgent":
            return self.urgent
        if subcategory and subcategory in self.consultation_subcategories:
            return self.consultation
        return self.normal


def load_sla(path: str | Path) -> SlaTable:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))

    def rule(section: str) -> SlaRule:
        spec = data[section]
        return SlaRule(
            sign=Duration.parse(spec["sign"]),
            resolve=Duration.parse(spec["resolve"]),
            respond=Duration.parse(spec["respond"]) if spec.get("respond") else None,
        )

    escalate = data.get("escalate_after_reminder") or {}
    return SlaTable(
        rule("urgent"),
        rule("normal"),
        rule("consultation"),
        frozenset(data.get("consultation_subcategories") or []),
        {key: Duration.parse(escalate.get(key, default)) for key, default in (("urgent", "1h"), ("normal", "8h"))},
        Duration.parse(data.get("reopen_resolve", "2wd")),
        Duration.parse(data.get("rating_window", "3d")),
    )


def is_working_day(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # years the calendar package does not cover yet: plain weekdays
        return day.weekday() < 5


def add_working_days(start: datetime, days: int) -> datetime:
    """The same local clock time on the `days`-th working day after start's local date."""
    local = start.astimezone(LOCAL_TZ)
    day = local.date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)
