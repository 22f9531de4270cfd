"""The official account's API: customer-service messages (and, later, tags and mass sends)."""

from __future__ import annotations

from bot.clients.base import OutboundClient, TokenApiClient


class WeChatApi(TokenApiClient):
    token_path = "/cgi-bin/token"
    # -1 system busy; 45011 minute quota; 45066 same clientmsgid within a minute.
    retryable_errcodes = frozenset({-1, 45011, 45066})

    def __init__(self, base_url: str, appid: str, secret: str, redis, timeout: float = 5.0):
        super().__init__(base_url, appid, redis, timeout)
        self.appid = appid
        self.secret = secret

    def token_params(self) -> dict:
        return {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}


class WeChatCustomerServiceClient(OutboundClient):
    """`message/custom/send`: free-form replies within 48 hours of the resident's last message."""

    name = "mp"

    def __init__(self, api: WeChatApi):
        self.api = api

    def send(self, recipient: str, payload: dict, dedup_key: str | None = None) -> dict:
        body = {"touser": recipient, "msgtype": "text", "text": {"content": payload["text"]}}
        return self.api.post("/cgi-bin/message/custom/send", body)
