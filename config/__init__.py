"""Settings from the environment, validated when the app starts.

Every name here is part of the external contract (see README): DATABASE_URL, REDIS_URL, SECRET_KEY,
PORT, WECHAT_*, WECOM_*. Nothing connects at import time.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_DIR = CONFIG_DIR.parent


# The county's clock: deadlines, working days, digests and every time a person reads.
COUNTY_TIMEZONE = "Asia/Shanghai"
LOCAL_TZ = ZoneInfo(COUNTY_TIMEZONE)


class ConfigError(ValueError):
    """A setting is missing or malformed; raised by create_app before anything is served."""


class Config:
    TESTING = False
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    SQLALCHEMY_DATABASE_URI = ""
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    REDIS_URL = ""
    # WeChat official account
    WECHAT_TOKEN = ""
    WECHAT_APPID = ""
    WECHAT_SECRET = ""
    WECHAT_AES_KEY = ""
    WECHAT_API_BASE = "https://api.weixin.qq.com"
    # Operations (docs/deployment.md). A drain job refreshes its flag every batch: a flag older than this
    # means the drain died with its worker, and the recovery sweep restarts it.
    INTAKE_FLAG_TTL = 120
    # Arrivals per second at which the intake drain pauses so the webhook wins a burst; 0 turns it off. Set
    # well above a steady peak (a province-wide channel's ~150/s), which the drain must keep up with, and
    # below what one web process takes (~1,000/s), where the webhook needs the cores.
    INTAKE_BURST_RATE = 400
    # How long a reply being sent stays claimed by its sender (a dead sender's claim lapses after this).
    DELIVERY_CLAIM_TTL = 60
    # Inbound rate limits, per minute. Over a limit a signed push is still stored (a resident's message is
    # never dropped) and only its processing waits for the recovery sweep; unsigned requests get 429.
    # Every resident's message arrives from WeChat's few servers, so the per-IP limit is generous.
    RATE_LIMIT_OPENID = 30
    RATE_LIMIT_IP = 20000
    RATE_LIMIT_REFUSED_IP = 60
    RATE_LIMIT_LOGIN_IP = 30
    RATE_LIMIT_LOGIN_USER = 10
    # Console sign-in throttling (accounts.throttle): after this many failures for one name (or ten times
    # as many from one address) each further try waits twice as long, up to the cap; never a lock-out.
    LOGIN_FREE_FAILURES = 5
    LOGIN_MAX_DELAY = 60
    # Official account message mode when WECHAT_AES_KEY is set: "safe" (安全模式: plaintext pushes are
    # refused) or "compatible" (兼容模式: plaintext pushes are accepted too).
    WECHAT_MSG_MODE = "safe"
    # Reverse proxies (nginx) in front that set X-Forwarded-For/-Proto; 0 trusts no such header.
    TRUSTED_PROXIES = 0
    LOG_FORMAT = "text"  # text | json
    METRICS_TOKEN = ""  # when set, /metrics wants `Authorization: Bearer <token>`
    # Template message for updates outside the 48-hour window (fields first/keyword1/keyword2/remark).
    WECHAT_TEMPLATE_ID = ""
    # WeCom self-built app and AI bot
    WECOM_CORP_ID = ""
    WECOM_TOKEN = ""
    WECOM_AES_KEY = ""
    WECOM_SECRET = ""
    WECOM_AGENT_ID = ""
    WECOM_API_BASE = "https://qyapi.weixin.qq.com"
    # The AI bot (智能机器人) has its own Token/EncodingAESKey; empty means it shares the app's.
    WECOM_BOT_TOKEN = ""
    WECOM_BOT_AES_KEY = ""
    # Inbound safety limits: WeChat pushes are tiny; replays older than this are refused.
    MAX_WEBHOOK_BODY = 1024 * 1024
    WEBHOOK_MAX_CLOCK_SKEW = 300
    OUTBOUND_TIMEOUT = 5.0
    # How long an unanswered clarifying question keeps the dialog open (seconds).
    DIALOG_TTL = 30 * 60
    # Image/voice/location messages join the resident's ticket if it is at most this old (seconds).
    ATTACH_WINDOW = 2 * 60 * 60
    TIMEZONE = COUNTY_TIMEZONE
    # Console sessions (held on the server, accounts.sessions): the cookie is `Secure` when the request came
    # over HTTPS (directly, or through TRUSTED_PROXIES' X-Forwarded-Proto) and always in production
    # (bot.sessions); never readable by scripts, not sent on cross-site requests; a working day long.
    SESSION_COOKIE_NAME = "civic_console"
    SESSION_COOKIE_SECURE = False
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 12 * 60 * 60
    # Broadcasts: recipients per mass send (WeChat takes 2–10,000 openids) and per WeCom app call
    # (≤1,000); mass sends a service account may make to one user per natural month; the batch jobs'
    # retry backoff in seconds; mirror region nodes of these tiers into official-account tags.
    BROADCAST_MP_BATCH = 10_000
    BROADCAST_WECOM_BATCH = 1_000
    BROADCAST_MONTHLY_LIMIT = 4
    # WeChat's mass-send API takes 60 requests a minute per account (0: no limit, for benchmarks).
    BROADCAST_MASS_PER_MINUTE = 60
    BROADCAST_RETRY_INTERVALS = (10, 60, 300, 900, 3600)
    BROADCAST_USE_TAGS = True
    # A notice to the whole county's residents goes out as one `is_to_all` mass send (every follower, placed
    # or not) when nobody must be left out; False: openid lists over the residents we know.
    BROADCAST_USE_TO_ALL = True
    MP_TAG_TIERS = ("county", "town", "community", "village", "grid")
    # The official-account menu `flask sync-menu` creates (YAML; the packaged default when empty).
    MENU_FILE = ""
    # Open311 (/open311/v2/): reads are public as GeoReport v2 has them (masked, no reporter data);
    # 1 makes reads need an api_key too. Writes always do.
    OPEN311_READ_REQUIRES_KEY = 0
    # The jurisdiction_id clients send (FixMyStreet sends its configured one); empty accepts any.
    OPEN311_JURISDICTION = ""
    # Where the county is, for location messages (workflow/locating.py). By default the region file's
    # boundaries; COUNTY_BBOX "min_lng,min_lat,max_lng,max_lat" or COUNTY_CENTER "lat,lng" with
    # COUNTY_RADIUS_KM override them. A location outside is not used for routing. With no boundary
    # around it, a location goes to the nearest grid only within NEAREST_GRID_MAX_KM of its point.
    COUNTY_BBOX: tuple | str = ""
    COUNTY_CENTER: tuple | str = ""
    COUNTY_RADIUS_KM = 0.0
    NEAREST_GRID_MAX_KM = 3.0
    # Media residents send (image, voice, video): fetched from WeChat into MEDIA_DIR (default
    # instance/media) or, with MEDIA_S3_BUCKET, an S3-compatible bucket (MEDIA_S3_ENDPOINT for one that
    # is not AWS; credentials from the usual AWS_* variables). Larger files and other types are refused.
    MEDIA_DIR = ""
    MEDIA_S3_BUCKET = ""
    MEDIA_S3_ENDPOINT = ""
    MEDIA_S3_REGION = ""
    MEDIA_MAX_BYTES = 10 * 1024 * 1024
    # The console map (/console/map). Base tiles: one or more URL templates separated by spaces, drawn in
    # order (e.g. 天地图's vector layer and its label layer, each with the county's `tk` key); empty: no
    # tiles, grids on a plain background. The map library (Leaflet) is installed here by `make setup`.
    MAP_TILE_URL = ""
    MAP_TILE_SUBDOMAINS = "01234567"
    MAP_TILE_ATTRIBUTION = ""
    MAP_LIBRARY_DIR = str(PROJECT_DIR / "vendor" / "leaflet")
    # Learning from staff (jobs.classifier, daily): retrain the category model once at least this many
    # tickets were corrected in the console, from this history CSV (text,label) plus the corrections;
    # empty means the copy `flask train-classifier` keeps beside the model (<instance>/models/history.csv).
    CLASSIFIER_MIN_CORRECTIONS = 20
    CLASSIFIER_HISTORY_FILE = ""


class DevelopmentConfig(Config):
    pass


class TestConfig(Config):
    TESTING = True


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True


configs = {"development": DevelopmentConfig, "test": TestConfig, "production": ProductionConfig}

_ENV_KEYS = (
    "SECRET_KEY",
    "REDIS_URL",
    "WECHAT_TOKEN",
    "WECHAT_APPID",
    "WECHAT_SECRET",
    "WECHAT_AES_KEY",
    "WECHAT_MSG_MODE",
    "WECHAT_API_BASE",
    "WECHAT_TEMPLATE_ID",
    "WECOM_CORP_ID",
    "WECOM_TOKEN",
    "WECOM_AES_KEY",
    "WECOM_SECRET",
    "WECOM_AGENT_ID",
    "WECOM_API_BASE",
    "WECOM_BOT_TOKEN",
    "WECOM_BOT_AES_KEY",
    "LOG_FORMAT",
    "METRICS_TOKEN",
    "OPEN311_JURISDICTION",
    "COUNTY_BBOX",
    "COUNTY_CENTER",
    "MEDIA_DIR",
    "MEDIA_S3_BUCKET",
    "MEDIA_S3_ENDPOINT",
    "MEDIA_S3_REGION",
    "MAP_TILE_URL",
    "MAP_TILE_SUBDOMAINS",
    "MAP_TILE_ATTRIBUTION",
    "MAP_LIBRARY_DIR",
    "CLASSIFIER_HISTORY_FILE",
)
_FLOAT_ENV_KEYS = ("COUNTY_RADIUS_KM", "NEAREST_GRID_MAX_KM")
_INT_ENV_KEYS = (
    "CLASSIFIER_MIN_CORRECTIONS",
    "INTAKE_FLAG_TTL",
    "INTAKE_BURST_RATE",
    "DELIVERY_CLAIM_TTL",
    "RATE_LIMIT_OPENID",
    "RATE_LIMIT_IP",
    "RATE_LIMIT_REFUSED_IP",
    "RATE_LIMIT_LOGIN_IP",
    "RATE_LIMIT_LOGIN_USER",
    "LOGIN_FREE_FAILURES",
    "LOGIN_MAX_DELAY",
    "TRUSTED_PROXIES",
    "OPEN311_READ_REQUIRES_KEY",
    "MEDIA_MAX_BYTES",
)


def load_settings(config_name: str | None, instance_path: str, overrides: dict | None = None) -> dict:
    """Collect settings: class defaults, then the environment, then explicit overrides (tests)."""
    name = config_name or os.environ.get("APP_ENV", "development")
    if name not in configs:
        raise ConfigError(f"APP_ENV={name!r} is not one of {sorted(configs)}")
    cls = configs[name]
    settings = {key: getattr(cls, key) for key in dir(cls) if key.isupper()}
    for key in _ENV_KEYS:
        if os.environ.get(key):
            settings[key] = os.environ[key]
    for key in _INT_ENV_KEYS:
        if os.environ.get(key):
            try:
                settings[key] = int(os.environ[key])
            except ValueError:
                raise ConfigError(f"{key} must be an integer, got {os.environ[key]!r}") from None
    for key in _FLOAT_ENV_KEYS:
        if os.environ.get(key):
            try:
                settings[key] = float(os.environ[key])
            except ValueError:
                raise ConfigError(f"{key} must be a number, got {os.environ[key]!r}") from None
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'civic.db'}"
    settings["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(database_url)
    settings.update(overrides or {})
    validate(settings)
    return settings


def normalize_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use the psycopg 3 driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def validate(settings: dict) -> None:
    """Fail at start with a clear message instead of at the first message."""
    for key in ("WECHAT_AES_KEY", "WECOM_AES_KEY", "WECOM_BOT_AES_KEY"):
        value = settings.get(key)
        if value:
            check_aes_key(key, value)
    if settings.get("WECHAT_MSG_MODE", "safe") not in ("safe", "compatible"):
        raise ConfigError(f"WECHAT_MSG_MODE must be safe or compatible, got {settings.get('WECHAT_MSG_MODE')!r}")
    if settings.get("WECHAT_AES_KEY") and not settings.get("WECHAT_APPID"):
        raise ConfigError("WECHAT_AES_KEY is set but WECHAT_APPID is not: safe mode needs the AppID")
    if settings.get("WECOM_AES_KEY") and not settings.get("WECOM_CORP_ID"):
        raise ConfigError("WECOM_AES_KEY is set but WECOM_CORP_ID is not")
    settings["COUNTY_BBOX"] = _numbers("COUNTY_BBOX", settings.get("COUNTY_BBOX"), 4)
    settings["COUNTY_CENTER"] = _numbers("COUNTY_CENTER", settings.get("COUNTY_CENTER"), 2)
    for key in ("WECHAT_API_BASE", "WECOM_API_BASE"):
        if not str(settings.get(key, "")).startswith(("http://", "https://")):
            raise ConfigError(f"{key} must be an http(s) URL, got {settings.get(key)!r}")
    if not settings.get("TESTING") and os.environ.get("APP_ENV") == "production":
        problems = production_problems(settings)
        if problems:
            raise ConfigError("production settings refused:\n  - " + "\n  - ".join(problems))


def _numbers(name: str, value, count: int) -> tuple | str:
    """ "a,b,c,d" (or a tuple already) as a tuple of `count` floats; "" stays "" (not set)."""
    if value in (None, "", ()):
        return ""
    parts = value if isinstance(value, (tuple, list)) else str(value).replace("，", ",").split(",")
    try:
        numbers = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {count} comma-separated numbers, got {value!r}") from None
    if len(numbers) != count:
        raise ConfigError(f"{name} must be {count} comma-separated numbers, got {value!r}")
    return numbers


# Values seen in examples and tutorials: a key anyone can look up signs anyone's session.
PLACEHOLDER_SECRETS = frozenset(
    {
        "dev",
        "development",
        "secret",
        "secret-key",
        "secret_key",
        "changeme",
        "change-me",
        "change_me",
        "please-change-me",
        "replace-me",
        "your-secret-key",
        "test-secret",
        "default",
        "flask",
        "key",
    }
)
MIN_SECRET_LENGTH = 32


def production_problems(settings: dict, environ: Mapping[str, str] | None = None) -> list[str]:
    """Why these settings must not serve production; empty when they may (`flask check-config`)."""
    environ = os.environ if environ is None else environ
    problems = []
    if str(environ.get("FLASK_DEBUG", "")).lower() in ("1", "true", "yes", "on") or settings.get("DEBUG"):
        problems.append("debug mode is on (FLASK_DEBUG/DEBUG): the debugger runs code for whoever reaches it")
    secret = str(settings.get("SECRET_KEY") or "")
    if not secret:
        problems.append("SECRET_KEY is empty")
    elif secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
        problems.append(
            f"SECRET_KEY is a placeholder or shorter than {MIN_SECRET_LENGTH} characters "
            "(make one: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    try:
        web_processes = int(environ.get("WEB_CONCURRENCY") or 1)
    except ValueError:
        web_processes = 1
        problems.append(f"WEB_CONCURRENCY={environ.get('WEB_CONCURRENCY')!r} is not a number")
    if str(settings.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite") and web_processes > 2:
        problems.append(
            f"SQLite with WEB_CONCURRENCY={web_processes} web processes: one writer at a time stalls pushes "
            "past WeChat's 5 seconds (two processes group-committing share it well); use PostgreSQL "
            "(DATABASE_URL) or WEB_CONCURRENCY=2"
        )
    return problems


def check_aes_key(name: str, value: str) -> None:
    """An EncodingAESKey is 43 base64 characters that decode to 32 bytes."""
    if len(value) != 43:
        raise ConfigError(f"{name} must be 43 characters (WeChat's EncodingAESKey), got {len(value)}")
    try:
        raw = base64.b64decode(value + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{name} is not valid base64: {exc}") from None
    if len(raw) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes, got {len(raw)}")
