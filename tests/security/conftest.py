"""Security tests write their figures into docs/reliability.md too (see tests/figures.py)."""

from __future__ import annotations

from tests import figures


def pytest_sessionfinish(session, exitstatus):
    figures.write()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes tens of seconds (still part of make test)")
