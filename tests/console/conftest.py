"""Console tests: the `browser` marker (headless Chromium through Playwright, skipped when absent)."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives Debian's /usr/bin/chromium through Playwright (skipped when either is missing)"
    )
