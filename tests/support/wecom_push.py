"""Build WeCom pushes exactly as WeCom sends them, with wechatpy 1.8.18's real enterprise crypto.

The self-built app: XML, encrypted for the corp id. The AI bot: JSON {"encrypt": ...}, encrypted for the
empty ReceiveId. URL verification: an encrypted echostr for both.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from tests.support.wechat_push import signature

CORP_ID = "ww0123456789abcdef"
TOKEN = "wecomtoken"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
AGENT_ID = "1000002"
SECRET = "wecomsecret"
BOT_TOKEN = "bottoken"
BOT_AES_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"


def wecom_settings() -> dict:
    return {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_SECRET": SECRET,
        "WECOM_AGENT_ID": AGENT_ID,
        "WECOM_BOT_TOKEN": BOT_TOKEN,
        "WECOM_BOT_AES_KEY": BOT_AES_KEY,
    }


def app_text_xml(userid: str, content: str, msg_id: int, create_time: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    )


def app_event_xml(userid: str, event: str, create_time: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><AgentID>{AGENT_ID}</AgentID></xml>"
    )


def _encrypt(plaintext: str, token: str, aes_key: str, receive_id: str, ts: str, nonce: str) -> tuple[str, str]:
    crypto = WeChatCrypto(token, aes_key, receive_id)
    encrypt = PrpCrypto(crypto.key).encrypt(plaintext, receive_id).decode()
    return encrypt, signature(token, ts, nonce, encrypt)


def app_push(
    xml: str, timestamp: int | None = None, nonce: str = "1372623149", token: str = TOKEN, corp_id: str = CORP_ID
) -> tuple[str, bytes]:
    """(query string, body) of a self-built app callback POST."""
    ts = str(timestamp or int(time.time()))
    envelope = WeChatCrypto(token, AES_KEY, corp_id).encrypt_message(xml, nonce, ts)
    encrypt = envelope.split("<Encrypt><![CDATA[")[1].split("]]></Encrypt>")[0]
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[{AGENT_ID}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    )
    query = urlencode({"msg_signature": signature(token, ts, nonce, encrypt), "timestamp": ts, "nonce": nonce})
    return query, body.encode()


def bot_message(userid: str, content: str, msgid: str, chattype: str = "group", msgtype: str = "text") -> dict:
    message = {
        "msgid": msgid,
        "aibotid": "AIBOTID",
        "chatid": "wrkSFfCgAAchat" if chattype == "group" else "",
        "chattype": chattype,
        "from": {"userid": userid},
        "response_url": f"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC{msgid}",
        "msgtype": msgtype,
    }
    if msgtype == "text":
        message["text"] = {"content": content}
    return message


def bot_push(message: dict, timestamp: int | None = None, nonce: str = "8675309", token: str = BOT_TOKEN):
    """(query string, JSON body) of an AI-bot callback POST."""
    ts = str(timestamp or int(time.time()))
    encrypt, msg_signature = _encrypt(json.dumps(message, ensure_ascii=False), token, BOT_AES_KEY, "", ts, nonce)
    query = urlencode({"msg_signature": msg_signature, "timestamp": ts, "nonce": nonce})
    return query, json.dumps({"encrypt": encrypt}).encode()


def verification_query(echo: str, bot: bool = False, nonce: str = "5555") -> str:
    """GET ?msg_signature&timestamp&nonce&echostr with an encrypted echostr, as WeCom verifies a URL."""
    ts = str(int(time.time()))
    token, aes_key, receive_id = (BOT_TOKEN, BOT_AES_KEY, "") if bot else (TOKEN, AES_KEY, CORP_ID)
    encrypt, msg_signature = _encrypt(echo, token, aes_key, receive_id, ts, nonce)
    return urlencode({"msg_signature": msg_signature, "timestamp": ts, "nonce": nonce, "echostr": encrypt})


def decrypt_bot_reply(body: bytes) -> dict:
    """What WeCom does with our passive reply: check its signature, decrypt it."""
    reply = json.loads(body)
    crypto = WeChatCrypto(BOT_TOKEN, BOT_AES_KEY, "")
    plaintext = crypto.decrypt_message(
        {"Encrypt": reply["encrypt"]}, reply["msgsignature"], reply["timestamp"], reply["nonce"]
    )
    return json.loads(plaintext)
