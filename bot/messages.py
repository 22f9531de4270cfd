"""The channel-neutral shape of one inbound push, and how a wechatpy message maps onto it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class InboundPush:
    channel: str  # mp | wecom | wecom_bot
    dedup_key: str
    sender: str
    msg_type: str  # text | image | voice | video | location | link | event:<name> | ...
    content: str | None
    payload: dict = field(default_factory=dict)


def from_wechat_message(channel: str, raw: dict) -> InboundPush:
    """Map the XML fields WeChat sent (as wechatpy parsed them) to an InboundPush.

    Messages carry MsgId; events do not, so WeChat's own rule applies: FromUserName + CreateTime, plus the
    Event and its EventKey (two menu clicks in one second are two pushes). WeCom's 微信客服 callback
    (`kf_msg_or_event`) has no FromUserName: its OpenKfId and one-time Token tell its pushes apart.
    Sample text push::

        <xml><ToUserName><![CDATA[gh_123]]></ToUserName><FromUserName><![CDATA[oABC]]></FromUserName>
        <CreateTime>1714036504</CreateTime><MsgType><![CDATA[text]]></MsgType>
        <Content><![CDATA[阳光花园路灯坏了]]></Content><MsgId>24580012345678</MsgId></xml>
    """
    msg_type = str(raw.get("MsgType") or "unknown").lower()
    sender = str(raw.get("FromUserName") or "")
    if msg_type == "event":
        event = str(raw.get("Event") or "unknown")
        msg_type = f"event:{event.lower()}"
        dedup_key = f"{sender or raw.get('OpenKfId') or ''}:{raw.get('CreateTime')}:{event}{_event_suffix(raw)}"
    elif raw.get("MsgId"):
        dedup_key = f"msg:{raw['MsgId']}"
    else:
        dedup_key = f"{sender}:{raw.get('CreateTime')}:{msg_type}"
    if msg_type == "text":
        content = raw.get("Content")
    elif msg_type == "voice":
        content = raw.get("Recognition")
    elif msg_type == "link":
        content = " ".join(str(raw.get(key) or "") for key in ("Title", "Description")).strip()
    else:
        content = None
    payload = {key: value for key, value in raw.items() if isinstance(value, (str, int, float)) or value is None}
    return InboundPush(channel, dedup_key[:160], sender, msg_type, content, payload)


def _event_suffix(raw: dict) -> str:
    """What tells two events of one sender in one second apart: the EventKey (a menu key, a scene, a URL,
    hashed when long so the key stays within its column) and WeCom's per-callback Token."""
    suffix = ""
    key = raw.get("EventKey")
    if key not in (None, ""):
        key = str(key)
        suffix += ":" + (key if len(key) <= 64 else hashlib.sha256(key.encode()).hexdigest()[:32])
    if raw.get("Token"):
        suffix += ":" + str(raw["Token"])[:64]
    return suffix
