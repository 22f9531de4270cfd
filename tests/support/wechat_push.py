"""Build official-account pushes exactly as WeChat sends them, with wechatpy's real crypto."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlencode

from wechatpy.crypto import WeChatCrypto

TOKEN = "testtoken"
APPID = "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_demo_account"


def signature(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted([token, *parts])).encode()).hexdigest()


def text_xml(openid: str, content: str, msg_id: int, create_time: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def message_xml(
    openid: str, msg_type: str, fields: dict, msg_id: int | None = None, create_time: int | None = None
) -> str:
    inner = "".join(
        f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>" for k, v in fields.items()
    )
    tail = f"<MsgId>{msg_id}</MsgId>" if msg_id is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"{inner}{tail}</xml>"
    )


def event_xml(openid: str, event: str, create_time: int | None = None, **fields) -> str:
    return message_xml(openid, "event", {"Event": event, **fields}, create_time=create_time)


def plaintext_push(
    xml: str, token: str = TOKEN, timestamp: int | None = None, nonce: str = "12345"
) -> tuple[str, bytes]:
    """(query string, body) of a plaintext-mode push."""
    ts = str(timestamp or int(time.time()))
    return urlencode(
        {"signature": signature(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "x"}
    ), xml.encode()


def encrypted_push(
    xml: str,
    compatible: bool = False,
    token: str = TOKEN,
    aes_key: str = AES_KEY,
    appid: str = APPID,
    timestamp: int | None = None,
    nonce: str = "67890",
) -> tuple[str, bytes]:
    """(query string, body) of a safe-mode (or compatible-mode) push, encrypted by wechatpy."""
    ts = str(timestamp or int(time.time()))
    crypto = WeChatCrypto(token, aes_key, appid)
    envelope = crypto.encrypt_message(xml, nonce, ts)
    encrypt = envelope.split("<Encrypt><![CDATA[")[1].split("]]></Encrypt>")[0]
    msg_signature = signature(token, ts, nonce, encrypt)
    if compatible:
        body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    else:
        body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    query = urlencode(
        {
            "signature": signature(token, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": msg_signature,
            "openid": "x",
        }
    )
    return query, body.encode()
