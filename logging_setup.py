"""Logging with personal data masked: phone and ID-card numbers never reach a log line whole."""

from __future__ import annotations

import logging

from flask import Flask

from privacy import mask_text


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(app: Flask) -> None:
    root = logging.getLogger()
    if not any(isinstance(f, MaskingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(MaskingFilter())
        root.addHandler(handler)
    root.setLevel(logging.WARNING if app.config.get("TESTING") else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
