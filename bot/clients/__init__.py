"""Outbound clients by channel name; built from the app's config and shared Redis."""

from __future__ import annotations

from flask import current_app

from bot.clients.base import OutboundClient, PermanentSendError, RetryableSendError, SendError
from bot.clients.wechat import WeChatApi, WeChatCustomerServiceClient

__all__ = ["OutboundClient", "PermanentSendError", "RetryableSendError", "SendError", "get_client", "wechat_api"]


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


def get_client(channel: str) -> OutboundClient:
    if channel == "mp":
        return WeChatCustomerServiceClient(wechat_api())
    raise PermanentSendError(f"no outbound client for channel {channel!r}")
