"""Console tests: the `browser` marker (headless Chromium through Playwright, skipped when absent)."""

from __future__ import annotations
