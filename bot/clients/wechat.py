"""The official account's API: customer-service messages (and, later, tags and mass sends)."""

from __future__ import annotations

from bot.clients.base import OutboundClient, PermanentSendError, TokenApiClient


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


class WeChatTemplateClient(OutboundClient):
    """`message/template/send`: how a resident is reached outside the 48-hour customer-service window."""

    name = "mp_template"

    def __init__(self, api: WeChatApi, template_id: str):
        self.api = api
        self.template_id = template_id

    def send(self, recipient: str, payload: dict, dedup_key: str | None = None) -> dict:
        if not self.template_id:
            raise PermanentSendError("outside the 48-hour window and WECHAT_TEMPLATE_ID is not configured")
        body = {
            "touser": recipient,
            "template_id": self.template_id,
            "data": {
                "first": {"value": "您反映的问题有新进展"},
                "keyword1": {"value": payload.get("number") or ""},
                "keyword2": {"value": payload.get("text", "")[:200]},
                "remark": {"value": "回复“查询 工单号”可查看详情。"},
            },
        }
        return self.api.post("/cgi-bin/message/template/send", body)
