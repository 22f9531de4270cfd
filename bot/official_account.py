"""The official account (公众号) webhook: verify → decrypt → parse → persist → enqueue → "success".

Only what must happen inside WeChat's 5-second window happens here; everything else runs in RQ jobs.
WeChat retries a push up to 3 times when it hears nothing, so duplicates are expected and acknowledged.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from bot.admission import store_and_enqueue
from bot.messages import from_wechat_message
from bot.security import RejectedPush, check_timestamp, check_xml_shape, read_body
from ops import ratelimit

log = logging.getLogger(__name__)

bp = Blueprint("official_account", __name__)


def _verify_signature() -> None:
    """Every request (GET and POST) carries signature/timestamp/nonce signed with WECHAT_TOKEN."""
    args = request.args
    token = current_app.config["WECHAT_TOKEN"]
    if not token:
        raise RejectedPush(403, "WECHAT_TOKEN is not configured")
    try:
        check_signature(token, args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", ""))
    except InvalidSignatureException:
        raise RejectedPush(403, "bad signature") from None


@bp.get("/wechat/mp")
def verify_url():
    """URL verification when the account's server address is saved: echo `echostr` unchanged."""
    try:
        _verify_signature()
    except RejectedPush as rejected:
        log.warning("mp verification refused: %s", rejected.reason)
        return "forbidden", rejected.status
    return request.args.get("echostr", ""), 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.post("/wechat/mp")
def receive_push():
    try:
        raw = _decode_push()
    except RejectedPush as rejected:
        log.warning("mp push refused: %s", rejected.reason, extra={"status": rejected.status})
        status = ratelimit.refused("mp", rejected.status)
        return ("forbidden" if status == 403 else "bad request" if status == 400 else ratelimit.TOO_MANY), status
    push = from_wechat_message("mp", raw)
    if not push.sender:
        return "bad request", 400
    # Stored before "success" (over a rate limit too: only its processing waits); see bot/inbound_batch.py.
    store_and_enqueue(push)
    return "success", 200, {"Content-Type": "text/plain; charset=utf-8"}


def _decode_push() -> dict:
    """Checks in order of cost; nothing is parsed before the signature and the body's shape pass."""
    config = current_app.config
    _verify_signature()
    check_timestamp(request.args.get("timestamp"), config["WEBHOOK_MAX_CLOCK_SKEW"])
    body = read_body(request, config["MAX_WEBHOOK_BODY"])
    text = check_xml_shape(body)
    if request.args.get("encrypt_type", "raw").lower() == "aes":
        text = _decrypt(text)
    elif config["WECHAT_AES_KEY"] and config.get("WECHAT_MSG_MODE", "safe") != "compatible":
        # 安全模式: the query signature does not cover the body, so a plaintext body would let one captured
        # URL carry forged messages in anyone's name. Only the encrypted, msg_signature-checked form counts.
        raise RejectedPush(400, "plaintext push refused: WECHAT_AES_KEY is set (safe mode)")
    try:
        message = parse_message(text)
    except Exception as exc:  # xmltodict/expat raise several types for malformed XML
        raise RejectedPush(400, f"unparseable XML: {type(exc).__name__}") from None
    raw = dict(getattr(message, "_data", {}) or {})
    if not raw.get("MsgType"):
        raise RejectedPush(400, "push without MsgType")
    return raw


def _decrypt(text: str) -> str:
    """Safe and compatible modes: the Encrypt element holds the real message."""
    config = current_app.config
    if not config["WECHAT_AES_KEY"]:
        # Compatible mode still carries the plaintext fields; safe mode cannot be read without the key.
        if "<MsgType>" in text:
            return text
        raise RejectedPush(400, "encrypted push but WECHAT_AES_KEY is not configured")
    crypto = WeChatCrypto(config["WECHAT_TOKEN"], config["WECHAT_AES_KEY"], config["WECHAT_APPID"])
    args = request.args
    try:
        decrypted = crypto.decrypt_message(
            text, args.get("msg_signature", ""), args.get("timestamp", ""), args.get("nonce", "")
        )
    except (InvalidSignatureException, InvalidAppIdException) as exc:
        raise RejectedPush(403, f"decrypt refused: {type(exc).__name__}") from None
    except Exception as exc:  # truncated/padded ciphertext, missing Encrypt, bad base64
        raise RejectedPush(400, f"undecryptable push: {type(exc).__name__}") from None
    return check_xml_shape(decrypted)
