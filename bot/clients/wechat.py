"""The official account's API: customer-service and template messages, user tags, mass sends, the menu,
the follower list."""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests

from bot.clients.base import (
    TOKEN_ERRORS,
    OutboundClient,
    PermanentSendError,
    RetryableSendError,
    TokenApiClient,
    http_session,
)


@dataclass(frozen=True)
class MediaDownload:
    content: bytes
    content_type: str  # as WeChat declared it (lower case, no parameters); may be empty


class MediaTooLarge(PermanentSendError):
    """The file is larger than we keep: nothing beyond the limit was read."""


MEDIA_CHUNK = 64 * 1024


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

    def _error_for(self, data: dict, what: str):
        if data.get("errcode") == MASS_ALREADY_SENT:
            return MassAlreadySent(data)
        return super()._error_for(data, what)

    # Mass sends (群发). Every call carries the batch's clientmsgid, so repeating a call whose answer was
    # lost cannot send twice: WeChat answers 45065 with the msg_id of the send that already went out.

    def mass_send_text_to_tag(self, tag_id: int, content: str, clientmsgid: str) -> dict:
        """`message/mass/sendall` to one user tag; returns WeChat's answer (msg_id, msg_data_id)."""
        body = {
            "filter": {"is_to_all": False, "tag_id": int(tag_id)},
            "msgtype": "text",
            "text": {"content": content},
            "clientmsgid": clientmsgid,
        }
        return self._mass_send("/cgi-bin/message/mass/sendall", body)

    def mass_send_text_to_openids(self, openids: list[str], content: str, clientmsgid: str) -> dict:
        """`message/mass/send` to 2–10,000 openids (service accounts only)."""
        if not MASS_OPENIDS_MIN <= len(openids) <= MASS_OPENIDS_MAX:
            raise PermanentSendError(
                f"message/mass/send takes {MASS_OPENIDS_MIN}-{MASS_OPENIDS_MAX} openids, got {len(openids)}", 40130
            )
        body = {"touser": list(openids), "msgtype": "text", "text": {"content": content}, "clientmsgid": clientmsgid}
        return self._mass_send("/cgi-bin/message/mass/send", body)

    def mass_send_text_to_all(self, content: str, clientmsgid: str) -> dict:
        """`message/mass/sendall` with `is_to_all`: every follower of the account, known to us or not."""
        body = {
            "filter": {"is_to_all": True},
            "msgtype": "text",
            "text": {"content": content},
            "clientmsgid": clientmsgid,
        }
        return self._mass_send("/cgi-bin/message/mass/sendall", body)

    def _mass_send(self, path: str, body: dict) -> dict:
        try:
            return self.post(path, body)
        except MassAlreadySent as already:
            return {**already.data, "already_sent": True}

    # User tags (/cgi-bin/tags/*): the service mirrors region nodes into tags for tag mass sends.

    def create_tag(self, name: str) -> int:
        """The tag's id; an existing tag of that name (45157) is looked up instead of failing."""
        try:
            return int(self.post("/cgi-bin/tags/create", {"tag": {"name": name}})["tag"]["id"])
        except PermanentSendError as exc:
            if exc.errcode != TAG_NAME_EXISTS:
                raise
        for tag in self.get_tags():
            if tag.get("name") == name:
                return int(tag["id"])
        raise PermanentSendError(f"tags/create: {name!r} exists but tags/get does not list it", TAG_NAME_EXISTS)

    def get_tags(self) -> list[dict]:
        data = self._request("GET", "/cgi-bin/tags/get", params={"access_token": self.access_token()})
        if data.get("errcode", 0) != 0:
            raise self._error_for(data, "/cgi-bin/tags/get")
        return list(data.get("tags") or [])

    def tag_users(self, tag_id: int, openids: list[str]) -> dict:
        """At most 50 openids per call (WeChat's limit)."""
        body = {"openid_list": list(openids)[:TAG_BATCH_MAX], "tagid": int(tag_id)}
        return self.post("/cgi-bin/tags/members/batchtagging", body)

    def untag_users(self, tag_id: int, openids: list[str]) -> dict:
        body = {"openid_list": list(openids)[:TAG_BATCH_MAX], "tagid": int(tag_id)}
        return self.post("/cgi-bin/tags/members/batchuntagging", body)

    def create_menu(self, menu: dict) -> dict:
        return self.post("/cgi-bin/menu/create", menu)

    # Temporary media (images, voice, video residents send): WeChat keeps them three days.

    def get_media(self, media_id: str, max_bytes: int) -> MediaDownload:
        """`media/get`: the file, read up to `max_bytes` (MediaTooLarge beyond). A video answers with a
        JSON `video_url` to download instead. One token refresh on a token error, as for every call."""
        token = self.access_token()
        answer = self._download(
            f"{self.base_url}/cgi-bin/media/get", {"access_token": token, "media_id": media_id}, max_bytes
        )
        if isinstance(answer, dict) and answer.get("errcode") in TOKEN_ERRORS:
            token = self.access_token(stale=token)
            answer = self._download(
                f"{self.base_url}/cgi-bin/media/get", {"access_token": token, "media_id": media_id}, max_bytes
            )
        if isinstance(answer, dict) and answer.get("video_url"):
            answer = self._download(str(answer["video_url"]), {}, max_bytes)
        if isinstance(answer, dict):
            raise self._error_for(answer, "/cgi-bin/media/get")
        return answer

    def _download(self, url: str, params: dict, max_bytes: int) -> MediaDownload | dict:
        """The body as a file, or WeChat's JSON answer (an error, or a video's URL) as a dict."""
        try:
            with http_session().get(url, params=params, timeout=self.timeout, stream=True) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise RetryableSendError(f"GET media: HTTP {response.status_code}")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type in ("application/json", "text/plain", "text/json"):
                    try:
                        return dict(json.loads(response.raw.read(MEDIA_CHUNK, decode_content=True) or b"{}"))
                    except ValueError:
                        raise RetryableSendError("GET media: unreadable JSON answer") from None
                declared = int(response.headers.get("Content-Length") or 0)
                if declared > max_bytes:
                    raise MediaTooLarge(f"media of {declared} bytes is over the {max_bytes}-byte limit")
                chunks, size = [], 0
                for chunk in response.iter_content(MEDIA_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(f"media over the {max_bytes}-byte limit")
                    chunks.append(chunk)
                return MediaDownload(b"".join(chunks), content_type)
        except requests.RequestException as exc:
            raise RetryableSendError(f"GET media: {type(exc).__name__}") from None

    # Followers (/cgi-bin/user/get): every openid that follows the account, 10,000 a page.

    def get_followers(self, next_openid: str = "") -> dict:
        """One page of followers after `next_openid` (empty: from the start): {total, count, data: {openid:
        [...]}, next_openid}. A page with count 0 (or no next_openid) ends the list."""
        params = {"next_openid": next_openid} if next_openid else {}
        return self.get("/cgi-bin/user/get", params)

    def get(self, path: str, params: dict) -> dict:
        """GET with the token; one refresh-and-retry on a token error, as `post` does."""
        token = self.access_token()
        data = self._get_json(path, {**params, "access_token": token})
        if data.get("errcode") in TOKEN_ERRORS:
            token = self.access_token(stale=token)
            data = self._get_json(path, {**params, "access_token": token})
        if data.get("errcode", 0) != 0:
            raise self._error_for(data, path)
        return data


MASS_ALREADY_SENT = 45065
TAG_NAME_EXISTS = 45157
MASS_OPENIDS_MIN, MASS_OPENIDS_MAX = 2, 10_000
TAG_BATCH_MAX = 50


class MassAlreadySent(PermanentSendError):
    """45065: a mass send with this clientmsgid already went out; `data` carries its msg_id."""

    def __init__(self, data: dict):
        super().__init__(f"mass send already made (errcode 45065, msg_id {data.get('msg_id')})", MASS_ALREADY_SENT)
        self.data = data


# custom/send answers these when the customer-service window is closed: 45015 the resident has not
# written for 48 hours, 45047 we sent too many messages since they last wrote. A template message still
# reaches them.
WINDOW_CLOSED_ERRCODES = frozenset({45015, 45047})
# The resident does not follow the account (43004): nothing reaches them.
NOT_SUBSCRIBED_ERRCODE = 43004


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
