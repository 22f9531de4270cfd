"""Outbound API plumbing shared by WeChat and WeCom: errors, a Redis-shared access token, one HTTP session.

wechatpy's own client retries token errors without a cap and fetches tokens from a hard-coded host, so
outbound calls go through this small layer instead: the token lives in Redis for every process, one
process refreshes it under a lock, a token error is refreshed and retried exactly once, and every call
has a timeout.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

import requests
from redis import Redis

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# Refresh a little before WeChat's expiry so in-flight calls never carry a dead token.
TOKEN_SAFETY_MARGIN = 300


class SendError(Exception):
    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.errcode = errcode


class RetryableSendError(SendError):
    """Worth another try later: network, HTTP 5xx, system busy (-1), minute quotas."""


class PermanentSendError(SendError):
    """Trying again cannot help (not subscribed, outside the 48-hour window, bad config): record it."""


_session: requests.Session | None = None


def http_session() -> requests.Session:
    """One pooled session per process: keep-alive connections to the API host."""
    global _session
    if _session is None:
        _session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        _session.mount("http://", adapter)
        _session.mount("https://", adapter)
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

    @abstractmethod
    def token_params(self) -> dict: ...

    @property
    def _token_key(self) -> str:
        return f"token:{type(self).__name__}:{self.app_key}"

    def access_token(self, stale: str | None = None) -> str:
        """The cached token; with `stale`, replace that one (unless another process already did)."""
        cached = self.redis.get(self._token_key)
        if cached and cached.decode() != stale:
            return cached.decode()
        with self.redis.lock(f"{self._token_key}:lock", timeout=30, blocking_timeout=15):
            cached = self.redis.get(self._token_key)
            if cached and cached.decode() != stale:
                return cached.decode()
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
        return PermanentSendError(message, errcode)


class OutboundClient(ABC):
    """Sends one outbox message on one channel."""

    name: str = ""

    @abstractmethod
    def send(self, recipient: str, payload: dict, dedup_key: str | None = None) -> dict: ...
