"""WeCom (企业微信) outbound: the self-built app's API (app messages, app chats) and the AI bot's response_url.

Group robots (webhook keys, 20 messages a minute) live in bot/clients/wecom_robot.py.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests

from bot.clients.base import (
    OutboundClient,
    PermanentSendError,
    RetryableSendError,
    TokenApiClient,
    http_session,
)

# WeCom's size limits are in UTF-8 bytes: app/appchat text and markdown 2,048; robot markdown 4,096.
APP_TEXT_LIMIT = 2048
MAX_USERS_PER_CALL = 1000
# The host WeCom's own callbacks name in response_url; we only ever post to it (rebased onto WECOM_API_BASE).
WECOM_HOST = "qyapi.weixin.qq.com"


def split_utf8(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` UTF-8 bytes, never inside a character and preferably at a
    line break; joined together the pieces are exactly `text` (nothing is cut)."""
    if limit < 4:
        raise ValueError("limit must hold at least one character")
    if len(text.encode("utf-8")) <= limit:
        return [text]
    pieces, start = [], 0
    while start < len(text):
        end, size, last_break = start, 0, -1
        while end < len(text):
            width = len(text[end].encode("utf-8"))
            if size + width > limit:
                break
            size += width
            if text[end] == "\n":
                last_break = end
            end += 1
        if end < len(text) and last_break >= start and last_break + 1 - start >= (end - start) // 2:
            end = last_break + 1  # a line break in the second half of the piece: split there
        pieces.append(text[start:end])
        start = end
    return pieces


class WeComApi(TokenApiClient):
    """The self-built app's API: `message/send` to members, `appchat/send` to chats the app created."""

    token_path = "/cgi-bin/gettoken"
    # -1 system busy; 45009 frequency limit; 45033 too many concurrent calls.
    retryable_errcodes = frozenset({-1, 45009, 45033})

    def __init__(self, base_url: str, corp_id: str, secret: str, agent_id: str, redis, timeout: float = 5.0):
        super().__init__(base_url, f"{corp_id}:{agent_id}", redis, timeout)
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = int(agent_id) if str(agent_id).isdigit() else agent_id

    def token_params(self) -> dict:
        return {"corpid": self.corp_id, "corpsecret": self.secret}

    def send_text(self, user_ids: list[str], content: str) -> dict:
        """POST message/send, text, to at most 1,000 members (`touser` "a|b")."""
        return self._send(user_ids, "text", content)

    def send_markdown(self, user_ids: list[str], content: str) -> dict:
        """POST message/send, markdown, to at most 1,000 members."""
        return self._send(user_ids, "markdown", content)

    def appchat_send(self, chat_id: str, msgtype: str, content: str) -> dict:
        """POST appchat/send: a text or markdown message into a chat the app created."""
        if msgtype not in ("text", "markdown"):
            raise ValueError(f"appchat msgtype {msgtype!r} is not text or markdown")
        return self.post(
            "/cgi-bin/appchat/send", {"chatid": chat_id, "msgtype": msgtype, msgtype: {"content": content}}
        )

    def _send(self, user_ids: list[str], msgtype: str, content: str) -> dict:
        users = list(dict.fromkeys(u for u in user_ids if u))
        if not users:
            raise ValueError("no recipients")
        if len(users) > MAX_USERS_PER_CALL:
            raise ValueError(f"{len(users)} recipients: WeCom takes at most {MAX_USERS_PER_CALL} per call")
        payload = {
            "touser": "|".join(users),
            "msgtype": msgtype,
            "agentid": self.agent_id,
            msgtype: {"content": content},
        }
        return self.post("/cgi-bin/message/send", payload)


def _content(payload: dict) -> tuple[str, str]:
    """(msgtype, content) of an outbox payload: {"text": …} (the mp shape) or {"msgtype", "content"}."""
    if "content" in payload:
        return payload.get("msgtype") or "text", str(payload["content"])
    return "text", str(payload.get("text", ""))


class WeComAppClient(OutboundClient):
    """Outbox channel `wecom_app`: a message from the county's app to one member (recipient = userid)."""

    name = "wecom_app"

    def __init__(self, api: WeComApi):
        self.api = api

    def send(self, recipient: str, payload: dict, dedup_key: str | None = None) -> dict:
        msgtype, content = _content(payload)
        data: dict = {}
        for piece in split_utf8(content, APP_TEXT_LIMIT):
            data = (
                self.api.send_markdown([recipient], piece)
                if msgtype == "markdown"
                else self.api.send_text([recipient], piece)
            )
            invalid = str(data.get("invaliduser") or "").split("|")
            if recipient in invalid:
                raise PermanentSendError(f"WeCom user {recipient!r} is not reachable by the app (invaliduser)")
        return data


class WeComAppChatClient(OutboundClient):
    """Outbox channel `wecom_appchat`: a tier's group chat created by the app (recipient = chat_id)."""

    name = "wecom_appchat"

    def __init__(self, api: WeComApi):
        self.api = api

    def send(self, recipient: str, payload: dict, dedup_key: str | None = None) -> dict:
        msgtype, content = _content(payload)
        data: dict = {}
        for piece in split_utf8(content, APP_TEXT_LIMIT):
            data = self.api.appchat_send(recipient, "markdown" if msgtype == "markdown" else "text", piece)
        return data


class WeComBotReplyClient(OutboundClient):
    """Outbox channel `wecom_bot`: the AI bot's late answer, POSTed once to the message's response_url
    (valid one hour, plain markdown). The URL's host is WeCom's; the call goes to WECOM_API_BASE."""

    name = "wecom_bot"

    def __init__(self, api_base: str, timeout: float = 5.0):
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def send(self, recipient: str, payload: dict, dedup_key: str | None = None) -> dict:
        url = self.rebase(payload.get("response_url") or "")
        _, content = _content(payload)
        body: dict = {"msgtype": "markdown", "markdown": {"content": content}}
        try:
            response = http_session().post(url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RetryableSendError(f"POST response_url: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableSendError(f"POST response_url: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise RetryableSendError(f"POST response_url: non-JSON answer (HTTP {response.status_code})") from None
        errcode = data.get("errcode", 0)
        if errcode == -1:
            raise RetryableSendError(f"response_url: errcode -1 {data.get('errmsg', '')}", -1)
        if errcode:
            # Used once already, or older than an hour: nothing later can make it work.
            raise PermanentSendError(f"response_url: errcode {errcode} {data.get('errmsg', '')}", errcode)
        return data

    def rebase(self, url: str) -> str:
        """WeCom's response_url moved onto the configured API base; any other host is refused (no SSRF)."""
        parts = urlsplit(url)
        base = urlsplit(self.api_base)
        if parts.scheme not in ("http", "https") or parts.hostname not in (WECOM_HOST, base.hostname):
            raise PermanentSendError("response_url missing or not on WeCom's host")
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
