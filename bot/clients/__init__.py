"""Outbound clients by channel name; built from the app's config and shared Redis."""

from __future__ import annotations

from flask import current_app

from bot.clients.base import DailyQuotaExceeded, OutboundClient, PermanentSendError, RetryableSendError, SendError
from bot.clients.wechat import WeChatApi, WeChatCustomerServiceClient, WeChatTemplateClient
from bot.clients.wecom import WeComApi, WeComAppChatClient, WeComAppClient, WeComBotReplyClient
from bot.clients.wecom_robot import WeComRobotClient

__all__ = [
    "DailyQuotaExceeded",
    "OutboundClient",
    "PermanentSendError",
    "RetryableSendError",
    "SendError",
    "get_client",
    "wechat_api",
    "wecom_api",
]


def wechat_api() -> WeChatApi:
    config = current_app.config
    if not (config["WECHAT_APPID"] and config["WECHAT_SECRET"]):
        raise PermanentSendError("WECHAT_APPID/WECHAT_SECRET are not configured; cannot send")
    return WeChatApi(
        config["WECHAT_API_BASE"],
        config["WECHAT_APPID"],
        config["WECHAT_SECRET"],
        current_app.extensions["redis"],
        timeout=config["OUTBOUND_TIMEOUT"],
    )


def wecom_api() -> WeComApi:
    """The WeCom self-built app's API (app messages, app chats); the token is shared through Redis."""
    config = current_app.config
    if not (config["WECOM_CORP_ID"] and config["WECOM_SECRET"] and config["WECOM_AGENT_ID"]):
        raise PermanentSendError("WECOM_CORP_ID/WECOM_SECRET/WECOM_AGENT_ID are not configured; cannot send")
    return WeComApi(
        config["WECOM_API_BASE"],
        config["WECOM_CORP_ID"],
        config["WECOM_SECRET"],
        config["WECOM_AGENT_ID"],
        current_app.extensions["redis"],
        timeout=config["OUTBOUND_TIMEOUT"],
    )


def get_client(channel: str) -> OutboundClient:
    if channel == "mp":
        return WeChatCustomerServiceClient(wechat_api())
    if channel == "mp_template":
        return WeChatTemplateClient(wechat_api(), current_app.config["WECHAT_TEMPLATE_ID"])
    if channel == "wecom_app":
        return WeComAppClient(wecom_api())
    if channel == "wecom_appchat":
        return WeComAppChatClient(wecom_api())
    if channel == "wecom_robot":
        config = current_app.config
        return WeComRobotClient(config["WECOM_API_BASE"], current_app.extensions["redis"], config["OUTBOUND_TIMEOUT"])
    if channel == "wecom_bot":
        return WeComBotReplyClient(current_app.config["WECOM_API_BASE"], current_app.config["OUTBOUND_TIMEOUT"])
    raise PermanentSendError(f"no outbound client for channel {channel!r}")
