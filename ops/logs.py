"""Logging with personal data masked: phone and ID-card numbers never reach a log line whole; secrets
(tokens, keys, passwords, access_token=… in URLs) never reach one at all. Every line carries the request
id (X-Request-Id, echoed back) or the RQ job id. LOG_FORMAT=json writes one JSON object per line."""

from __future__ import annotations

import json
import logging
import re
import secrets
from datetime import UTC, datetime
from urllib.parse import urlparse

from flask import Flask, g, has_request_context, request
from rq import get_current_job

from ops.privacy import mask_text

SECRET_SETTINGS = (
    "SECRET_KEY",
    "WECHAT_TOKEN",
    "WECHAT_SECRET",
    "WECHAT_AES_KEY",
    "WECOM_TOKEN",
    "WECOM_SECRET",
    "WECOM_AES_KEY",
    "WECOM_BOT_TOKEN",
    "WECOM_BOT_AES_KEY",
    "METRICS_TOKEN",
)
# Query parameters and JSON fields that carry credentials, wherever they show up in a message.
_SECRET_PARAMS = re.compile(
    r"((?:access_token|secret|corpsecret|password|passwd|api_key|key|token|encodingaeskey)[\"']?\s*[=:]\s*[\"']?)"
    r"([^&\s\"',;}]{4,})",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\w+(?:\+\w+)?://[^:/\s@]*:)([^@\s/]+)(@)")
REDACTED = "[redacted]"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_secret_values: set[str] = set()


def redact(text: str) -> str:
    """Known secret values, credential parameters and URL passwords replaced by [redacted]."""
    for value in _secret_values:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    return _SECRET_PARAMS.sub(lambda m: m.group(1) + REDACTED, text)


def remember_secrets(config) -> None:
    """The configured secrets (and database/Redis passwords) are redacted from every log line."""
    for key in SECRET_SETTINGS:
        value = str(config.get(key) or "")
        if len(value) >= 6:
            _secret_values.add(value)
    for key in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL"):
        try:
            password = urlparse(str(config.get(key) or "")).password
        except ValueError:
            password = None
        if password and len(password) >= 4:
            _secret_values.add(password)


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(mask_text(record.exc_text))
            record.exc_info = None  # the redacted text is what gets written
        return True


class ContextFilter(logging.Filter):
    """request_id inside a request, job_id inside an RQ job (empty elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "") if has_request_context() else ""
        try:
            job = get_current_job()
        except Exception:  # no job context
            job = None
        record.job_id = job.id if job is not None else ""
        return True


_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "request_id", "job_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "job_id"):
            if getattr(record, key, ""):
                entry[key] = getattr(record, key)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in ("request_id", "job_id") if getattr(record, k, ""))
        return f"{line} [{ids}]" if ids else line


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(app: Flask) -> None:
    install_handler(app.config)
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)


def install_handler(config) -> logging.Handler:
    """The root handler with masking, secret redaction and request/job ids (again, if something replaced it)."""
    root = logging.getLogger()
    remember_secrets(config)
    handler = next((h for h in root.handlers if any(isinstance(f, MaskingFilter) for f in h.filters)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.addFilter(MaskingFilter())
        handler.addFilter(SecretFilter())
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    if str(config.get("LOG_FORMAT", "text")).lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.setLevel(logging.WARNING if config.get("TESTING") else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return handler


def _assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)


def _echo_request_id(response):
    if g.get("request_id"):
        response.headers["X-Request-Id"] = g.request_id
    return response
