"""Outbound API plumbing shared by WeChat and WeCom: errors, a Redis-shared access token, one HTTP session.

wechatpy's own client retries token errors without a cap and fetches tokens from a hard-coded host, so
outbound calls go through this small layer instead: the token lives in Redis for every process, one
process refreshes it under a lock, a token error is refreshed and retried exactly once, and every call
has a timeout.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from urllib.parse import urlsplit

import requests
from redis import Redis

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# Refresh a little before WeChat's expiry so in-flight calls never carry a dead token.
TOKEN_SAFETY_MARGIN = 300
# A client keeps the token it read from Redis this long (a batch of sends then costs one read, not one per
# send). Safe: WeChat keeps a replaced token valid for about five more minutes, and a token error makes
# the client read Redis again.
LOCAL_TOKEN_SECONDS = 30


class SendError(Exception):
    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.errcode = errcode


class RetryableSendError(SendError):
    """Worth another try later: network, HTTP 5xx, system busy (-1), minute quotas."""


class PermanentSendError(SendError):
    """Trying again cannot help (not subscribed, outside the 48-hour window, bad config): record it."""


class DailyQuotaExceeded(PermanentSendError):
    """45009: the account's daily quota for this API is used up. Trying again today cannot help; WeChat
    resets the quota at midnight Beijing time. (A PermanentSendError to callers that do not wait for it.)"""


DAILY_QUOTA_ERRCODE = 45009


class ApiSession(requests.Session):
    """A requests session that reads the environment's proxy and CA settings once per host, not per call.

    requests looks up proxies (and no_proxy matching), the CA bundle and ~/.netrc in the environment on
    every request: a twentieth of a worker's CPU while it sends a burst of acknowledgements. The
    environment does not change while a process runs. (.netrc is not consulted: these APIs do not use it.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # the environment is applied by merge_environment_settings below, from the cache
        self._environment: dict[tuple[str, str], tuple[dict, str | None]] = {}
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        host = tuple(urlsplit(url)[:2])
        if host not in self._environment:
            ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            self._environment[host] = (requests.utils.get_environ_proxies(url), ca_bundle)
        environ_proxies, ca_bundle = self._environment[host]
        proxies = {**environ_proxies, **(proxies or {})}
        if (verify is True or verify is None) and ca_bundle:
            verify = ca_bundle
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


_session: ApiSession | None = None


def http_session() -> ApiSession:
    """One pooled session per process: keep-alive connections to the API host."""
    global _session
    if _session is None:
        _session = ApiSession()
    return _session


class TokenApiClient:
    """JSON API behind an access_token (WeChat's and WeCom's are the same shape)."""

    token_path: str = ""
    retryable_errcodes: frozenset[int] = frozenset({-1})

    def __init__(self, base_url: str, app_key: str, redis: Redis, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self.redis = redis
        self.timeout = timeout
        self._held: tuple[str | None, float] = (None, 0.0)

    @abstractmethod
    def token_params(self) -> dict: ...

    @property
    def _token_key(self) -> str:
        return f"token:{type(self).__name__}:{self.app_key}"

    def access_token(self, stale: str | None = None) -> str:
        """The cached token; with `stale`, replace that one (unless another process already did)."""
        held, held_at = self._held
        if stale is None and held and time.monotonic() - held_at < LOCAL_TOKEN_SECONDS:
            return held
        token = self._shared_token(stale)
        self._held = (token, time.monotonic())
        return token

    def _cached_token(self) -> str | None:
        raw = self.redis.get(self._token_key)
        return raw.decode() if isinstance(raw, bytes) else raw

    def _shared_token(self, stale: str | None) -> str:
        cached = self._cached_token()
        if cached and cached != stale:
            return cached
        with self.redis.lock(f"{self._token_key}:lock", timeout=30, blocking_timeout=15):
            cached = self._cached_token()
            if cached and cached != stale:
                return cached
            data = self._get_json(self.token_path, self.token_params())
            token = data.get("access_token")
            if not token:
                raise self._error_for(data, "token fetch")
            ttl = max(60, int(data.get("expires_in", 7200)) - TOKEN_SAFETY_MARGIN)
            self.redis.set(self._token_key, token, ex=ttl)
            return token

    def post(self, path: str, payload: dict) -> dict:
        """POST JSON with the token; one refresh-and-retry on a token error, never more."""
        token = self.access_token()
        data = self._post_json(path, payload, token)
        if data.get("errcode") in TOKEN_ERRORS:
            log.info("access token rejected (errcode %s), refreshing once", data.get("errcode"))
            token = self.access_token(stale=token)
            data = self._post_json(path, payload, token)
        if data.get("errcode", 0) != 0:
            raise self._error_for(data, path)
        return data

    def _post_json(self, path: str, payload: dict, token: str) -> dict:
        return self._request("POST", path, params={"access_token": token}, json=payload)

    def _get_json(self, path: str, params: dict) -> dict:
        return self._request("GET", path, params=params)

    def _request(self, method: str, path: str, **kwargs) -> dict:
        url = f"{self.base_url}{path}"
        try:
            response = http_session().request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise RetryableSendError(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableSendError(f"{method} {path}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise RetryableSendError(f"{method} {path}: non-JSON answer (HTTP {response.status_code})") from None

    def _error_for(self, data: dict, what: str) -> SendError:
        errcode = data.get("errcode")
        message = f"{what}: errcode {errcode} {data.get('errmsg', '')}".strip()
        if errcode in self.retryable_errcodes:
            return RetryableSendError(message, errcode)
        if errcode == DAILY_QUOTA_ERRCODE:
            return DailyQuotaExceeded(message, errcode)
        return PermanentSendError(message, errcode)


class OutboundClient(ABC):
    """Sends one outbox message on one channel."""

    name: str = ""

    @abstractmethod
    def send(self, recipient: str, payload: dict, dedup_key: str | None = None) -> dict: ...
