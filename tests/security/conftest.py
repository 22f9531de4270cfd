"""Security tests write their figures into docs/reliability.md too (see tests/figures.py)."""

from __future__ import annotations

from tests.support import figures


def pytest_sessionfinish(session, exitstatus):
    figures.write()
