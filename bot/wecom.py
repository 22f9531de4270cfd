"""The WeCom (企业微信) webhooks: the county's self-built app callback (XML) and the AI bot (智能机器人, JSON).

Both are always encrypted. Each request: check the timestamp → read the body → verify the signature over the
ciphertext → decrypt → parse → persist into the same inbound table as the official account (channels
"wecom" and "wecom_bot", unique per MsgId/msgid) → enqueue → answer. Who the sender is (a registered
officer or not) is decided by the worker, not here.

Sample app push (after decryption)::

    <xml><ToUserName><![CDATA[ww0123456789]]></ToUserName><FromUserName><![CDATA[lixl]]></FromUserName>
    <CreateTime>1714036504</CreateTime><MsgType><![CDATA[text]]></MsgType>
    <Content><![CDATA[【事项】路灯不亮【地点】阳光花园3栋]]></Content><MsgId>7380001</MsgId><AgentID>1000002</AgentID></xml>

Sample AI bot push (body {"encrypt": "..."}, decrypted)::

    {"msgid": "CAIQ16HM", "aibotid": "AIBOT", "chatid": "wrkSFfCgAA", "chattype": "group",
     "from": {"userid": "lixl"}, "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=X",
     "msgtype": "text", "text": {"content": "@网格助手 查询 250101000001"}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time

import xmltodict
from flask import Blueprint, Response, current_app, request
from wechatpy.crypto import _get_signature
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot.admission import store_and_enqueue
from bot.messages import InboundPush, from_wechat_message
from bot.security import RejectedPush, check_timestamp, check_xml_shape, read_body
from ops import ratelimit

log = logging.getLogger(__name__)

bp = Blueprint("wecom", __name__)

# What the bot says at once; the ticket number follows through the message's response_url.
BOT_ACK = "已收到，正在受理，稍后回复处理结果。"
BOT_WELCOME = (
    "您好，我是网格工单助手。@我发送问题即可上报，可用【事项】【地点】【诉求人】【电话】【紧急】格式；"
    "发送“查询 工单号”“签收 工单号”“办结 工单号 说明”办理工单。"
)
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+)+\s*")


def _app_crypto() -> WeChatCrypto:
    config = current_app.config
    if not (config["WECOM_TOKEN"] and config["WECOM_AES_KEY"] and config["WECOM_CORP_ID"]):
        raise RejectedPush(403, "WECOM_TOKEN/WECOM_AES_KEY/WECOM_CORP_ID are not configured")
    return WeChatCrypto(config["WECOM_TOKEN"], config["WECOM_AES_KEY"], config["WECOM_CORP_ID"])


def _bot_crypto() -> WeChatCrypto:
    """The AI bot's ReceiveId is the empty string (not the corp id)."""
    config = current_app.config
    token = config["WECOM_BOT_TOKEN"] or config["WECOM_TOKEN"]
    aes_key = config["WECOM_BOT_AES_KEY"] or config["WECOM_AES_KEY"]
    if not (token and aes_key):
        raise RejectedPush(403, "the AI bot's token/EncodingAESKey are not configured")
    return WeChatCrypto(token, aes_key, "")


def _echo(crypto_factory) -> tuple:
    """URL verification: the echostr is encrypted; answer its plaintext, nothing else (no quotes, no newline)."""
    args = request.args
    try:
        echo = crypto_factory().check_signature(
            args.get("msg_signature", ""), args.get("timestamp", ""), args.get("nonce", ""), args.get("echostr", "")
        )
    except RejectedPush as rejected:
        log.warning("wecom verification refused: %s", rejected.reason)
        return "forbidden", 403
    except Exception as exc:  # bad signature, corp id, base64 or padding: not provably from WeCom
        log.warning("wecom verification refused: %s", type(exc).__name__)
        return "forbidden", 403
    return echo, 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/wechat/work")
def verify_app_url():
    return _echo(_app_crypto)


@bp.get("/wechat/work/bot")
def verify_bot_url():
    return _echo(_bot_crypto)


def _decrypt(crypto: WeChatCrypto, encrypt: str) -> str:
    args = request.args
    try:
        return crypto.decrypt_message(
            {"Encrypt": encrypt}, args.get("msg_signature", ""), args.get("timestamp", ""), args.get("nonce", "")
        )
    except InvalidSignatureException:
        raise RejectedPush(403, "bad msg_signature") from None
    except InvalidCorpIdException:
        raise RejectedPush(403, "ciphertext for another corp/bot") from None
    except Exception as exc:  # truncated or forged ciphertext: bad base64, padding, length, encoding
        raise RejectedPush(403, f"undecryptable: {type(exc).__name__}") from None


def _refused(rejected: RejectedPush, what: str):
    log.warning("%s refused: %s", what, rejected.reason, extra={"status": rejected.status})
    status = ratelimit.refused("wecom_bot" if "bot" in what else "wecom", rejected.status)
    return ("forbidden" if status == 403 else "bad request" if status == 400 else ratelimit.TOO_MANY), status


def _store(push: InboundPush) -> int:
    # Stored before the answer (over a rate limit too: only its processing waits); see bot/inbound_batch.py.
    row_id, _ = store_and_enqueue(push)
    return row_id


@bp.post("/wechat/work")
def receive_app_push():
    try:
        raw = _decode_app_push()
    except RejectedPush as rejected:
        return _refused(rejected, "wecom push")
    push = from_wechat_message("wecom", raw)
    if not push.sender and not push.msg_type.startswith("event:"):
        return "bad request", 400
    # An event may have no sender: 微信客服's kf_msg_or_event names only the account (OpenKfId). It is
    # recorded like any push and answered 200, or WeCom would retry it.
    _store(push)
    # An empty answer is WeCom's "received, no passive reply"; replies go out through the app.
    return "", 200, {"Content-Type": "text/plain; charset=utf-8"}


def _decode_app_push() -> dict:
    config = current_app.config
    crypto = _app_crypto()
    check_timestamp(request.args.get("timestamp"), config["WEBHOOK_MAX_CLOCK_SKEW"])
    text = check_xml_shape(read_body(request, config["MAX_WEBHOOK_BODY"]))
    try:
        encrypt = xmltodict.parse(text)["xml"]["Encrypt"]
    except Exception as exc:  # expat errors, no <xml>, no <Encrypt>
        raise RejectedPush(400, f"malformed envelope: {type(exc).__name__}") from None
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise RejectedPush(400, "envelope without Encrypt")
    xml = check_xml_shape(_decrypt(crypto, encrypt))
    try:
        message = parse_message(xml)
    except Exception as exc:
        raise RejectedPush(400, f"unparseable XML: {type(exc).__name__}") from None
    raw = dict(getattr(message, "_data", {}) or {})
    if not raw.get("MsgType"):
        raise RejectedPush(400, "push without MsgType")
    return raw


@bp.post("/wechat/work/bot")
def receive_bot_push():
    try:
        crypto, message = _decode_bot_push()
    except RejectedPush as rejected:
        return _refused(rejected, "wecom bot push")
    msgtype = str(message.get("msgtype") or "")
    if msgtype == "stream":
        # We never leave a stream open, so a refresh has nothing to add.
        return "", 200
    if msgtype == "event":
        event = message.get("event") if isinstance(message.get("event"), dict) else {}
        if event.get("eventtype") == "enter_chat":
            return _encrypted_json(crypto, {"msgtype": "text", "text": {"content": BOT_WELCOME}})
        return "", 200
    push = from_bot_message(message)
    if not push.sender:
        return "bad request", 400
    row_id = _store(push)
    return _encrypted_json(
        crypto, {"msgtype": "stream", "stream": {"id": f"inbound-{row_id}", "finish": True, "content": BOT_ACK}}
    )


def _decode_bot_push() -> tuple[WeChatCrypto, dict]:
    config = current_app.config
    crypto = _bot_crypto()
    check_timestamp(request.args.get("timestamp"), config["WEBHOOK_MAX_CLOCK_SKEW"])
    body = read_body(request, config["MAX_WEBHOOK_BODY"])
    try:
        envelope = json.loads(body)
    except ValueError:
        raise RejectedPush(400, "body is not JSON") from None
    encrypt = envelope.get("encrypt") if isinstance(envelope, dict) else None
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise RejectedPush(400, "JSON without encrypt")
    plaintext = _decrypt(crypto, encrypt)
    try:
        message = json.loads(plaintext)
    except ValueError:
        raise RejectedPush(400, "decrypted payload is not JSON") from None
    if not isinstance(message, dict) or not message.get("msgtype"):
        raise RejectedPush(400, "payload without msgtype")
    message["_digest"] = hashlib.sha256(plaintext.encode()).hexdigest()[:32]
    return crypto, message


def _encrypted_json(crypto: WeChatCrypto, reply: dict) -> Response:
    """The passive reply: {"encrypt", "msgsignature", "timestamp", "nonce"}, encrypted for ReceiveId ""."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    encrypt = PrpCrypto(crypto.key).encrypt(json.dumps(reply, ensure_ascii=False), "").decode()
    body = {
        "encrypt": encrypt,
        "msgsignature": _get_signature(crypto.token, timestamp, nonce, encrypt),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    return Response(json.dumps(body), status=200, mimetype="application/json")


def from_bot_message(message: dict) -> InboundPush:
    """Map a decrypted AI-bot message to an InboundPush. Group messages start with "@机器人名": dropped."""
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    msgtype = str(message["msgtype"]).lower()
    body = message.get(msgtype) if isinstance(message.get(msgtype), dict) else {}
    content, media_url, kind = None, None, msgtype
    if msgtype == "text":
        content = body.get("content")
    elif msgtype == "voice":
        content = body.get("content")  # WeCom sends the transcription
    elif msgtype == "mixed":
        items = [item for item in body.get("msg_item") or [] if isinstance(item, dict)]
        texts = [str((item.get("text") or {}).get("content") or "") for item in items if item.get("msgtype") == "text"]
        images = [(item.get("image") or {}).get("url") for item in items if item.get("msgtype") == "image"]
        content = " ".join(t for t in texts if t) or None
        media_url = next((url for url in images if url), None)
        kind = "text" if content else "image"
    elif msgtype in ("image", "file"):
        media_url = body.get("url")
    if isinstance(content, str):
        content = _LEADING_MENTIONS.sub("", content).strip()
    payload = {
        key: message.get(key)
        for key in ("msgid", "aibotid", "chatid", "chattype", "response_url", "msgtype")
        if isinstance(message.get(key), (str, int))
    }
    if media_url:
        payload["media_url"] = media_url
    msgid = message.get("msgid")
    dedup_key = f"msg:{msgid}" if msgid else f"digest:{message.get('_digest')}"
    return InboundPush("wecom_bot", dedup_key[:160], str(sender.get("userid") or ""), kind, content, payload)
