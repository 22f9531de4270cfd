"""The hostile-input corpus: requests that must be refused, and hostile text that must be kept verbatim.

Every inbound endpoint gets every class that applies to it. Ciphertexts are built with wechatpy's real
crypto and then tampered with; where a case is about what happens AFTER the signature check (a truncated
ciphertext from a broken proxy, an entity bomb inside a push), the tampered ciphertext is signed again, as
someone holding the token could.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto

from tests.support import wecom_push as wc
from tests.support.wechat_push import ACCOUNT, AES_KEY, APPID, TOKEN, signature, text_xml

MP, APP, BOT = "/wechat/mp", "/wechat/work", "/wechat/work/bot"
XML, JSON = "text/xml", "application/json"

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">' for i in range(1, 10))
    + "]><xml><ToUserName>gh</ToUserName><FromUserName>oEvil</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>gh</ToUserName><FromUserName>oEvil</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"
)
PARAMETER_ENTITY = (
    '<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>'
    "<xml><MsgType>text</MsgType><FromUserName>oEvil</FromUserName></xml>"
)
LOWERCASE_DOCTYPE = '<!doctype xml [<!entity a "b">]><xml><MsgType>text</MsgType><FromUserName>o</FromUserName></xml>'
DEEP = "<xml><MsgType>text</MsgType><FromUserName>oDeep</FromUserName>" + "<a>" * 50_000 + "</a>" * 50_000 + "</xml>"
WIDE = "<xml>" + "<MsgType>text</MsgType>" * 20_000 + "<FromUserName>oWide</FromUserName></xml>"

INJECTIONS = [
    "'); DROP TABLE tickets; --",
    "阳光花园路灯坏了' OR '1'='1",
    '1; UPDATE users SET role="admin" WHERE 1=1; --',
    "<script>alert('xss')</script>幸福里小区垃圾没人清",
    '"><img src=x onerror=alert(1)>西环路井盖松动',
    "{{7*7}} ${7*7} <%= 7*7 %> 建设路噪音",
    "${jndi:ldap://127.0.0.1/a} 滨河小区停水",
    "javascript:alert(document.cookie)",
    "\u202e\u2066反转文字\u2069 书香苑 \u200b零宽",
    "A" * 4000 + "超长内容",
]


@dataclass(frozen=True)
class Case:
    endpoint: str
    klass: str
    name: str
    query: str
    body: bytes
    content_type: str = XML

    @property
    def id(self) -> str:
        return f"{self.endpoint.rsplit('/', 1)[-1]}-{self.klass}-{self.name}"


def _now() -> str:
    return str(int(time.time()))


# Official account ---------------------------------------------------------------------------------------


def mp_plain(body: bytes | str, ts: str | None = None, token: str = TOKEN, sig: str | None = None) -> tuple[str, bytes]:
    ts = ts or _now()
    nonce = "424242"
    query = {"signature": sig if sig is not None else signature(token, ts, nonce), "timestamp": ts, "nonce": nonce}
    return urlencode(query), body.encode() if isinstance(body, str) else body


def mp_encrypt_value(xml: str, appid: str = APPID) -> str:
    envelope = WeChatCrypto(TOKEN, AES_KEY, appid).encrypt_message(xml, "1", _now())
    return envelope.split("<Encrypt><![CDATA[")[1].split("]]></Encrypt>")[0]


def mp_safe(encrypt: str, ts: str | None = None, resign: bool = True, msg_sig: str | None = None) -> tuple[str, bytes]:
    ts = ts or _now()
    nonce = "777"
    query = {
        "signature": signature(TOKEN, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": msg_sig if msg_sig is not None else signature(TOKEN if resign else "x", ts, nonce, encrypt),
    }
    body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return urlencode(query), body.encode()


# WeCom app and bot ----------------------------------------------------------------------------------------


def work_encrypt_value(plaintext: str, receive_id: str = wc.CORP_ID, bot: bool = False) -> str:
    token, key = (wc.BOT_TOKEN, wc.BOT_AES_KEY) if bot else (wc.TOKEN, wc.AES_KEY)
    crypto = WorkCrypto(token, key, receive_id)
    return PrpCrypto(crypto.key).encrypt(plaintext, receive_id).decode()


def work_query(encrypt: str, bot: bool = False, ts: str | None = None, msg_sig: str | None = None) -> str:
    ts = ts or _now()
    nonce = "31337"
    token = wc.BOT_TOKEN if bot else wc.TOKEN
    return urlencode(
        {
            "msg_signature": msg_sig if msg_sig is not None else signature(token, ts, nonce, encrypt),
            "timestamp": ts,
            "nonce": nonce,
        }
    )


def app_envelope(encrypt: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{wc.CORP_ID}]]></ToUserName><AgentID><![CDATA[{wc.AGENT_ID}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()


def bot_envelope(encrypt: str) -> bytes:
    return json.dumps({"encrypt": encrypt}).encode()


# Tampering ------------------------------------------------------------------------------------------------


def ciphertext_variants(encrypt: str) -> dict[str, str]:
    raw = base64.b64decode(encrypt)
    flipped = bytearray(raw)
    flipped[20] ^= 0x55
    return {
        "truncated-chars": encrypt[:-7],
        "truncated-block": base64.b64encode(raw[:-16]).decode(),
        "truncated-to-one-block": base64.b64encode(raw[:16]).decode(),
        "padded-block": base64.b64encode(raw + b"\x10" * 16).decode(),
        "padded-zeros": base64.b64encode(raw + b"\x00" * 32).decode(),
        "not-a-block-multiple": base64.b64encode(raw + b"\x01\x02\x03").decode(),
        "bit-flipped": base64.b64encode(bytes(flipped)).decode(),
        "not-base64": "!!!~~~not base64~~~!!!",
        "empty": "",
    }


def refused_cases() -> list[Case]:
    """Requests that must be answered 4xx (429 allowed) and leave nothing stored."""
    cases: list[Case] = []
    good_xml = text_xml("oEvilResident", "阳光花园路灯坏了", msg_id=66_000_001)
    old, future = str(int(time.time()) - 3600), str(int(time.time()) + 3600)

    # Forged signatures
    cases += [
        Case(MP, "forged signature", "zeros", *mp_plain(good_xml, sig="0" * 40)),
        Case(MP, "forged signature", "missing", "timestamp=" + _now() + "&nonce=1", good_xml.encode()),
        Case(MP, "forged signature", "other-token", *mp_plain(good_xml, token="not-the-token")),
        Case(MP, "forged signature", "aes-bad-msg-signature", *mp_safe(mp_encrypt_value(good_xml), msg_sig="f" * 40)),
        Case(MP, "forged signature", "aes-signed-with-other-token", *mp_safe(mp_encrypt_value(good_xml), resign=False)),
    ]
    app_xml = wc.app_text_xml("evilofficer", "路灯坏了", msg_id=66_000_002)
    app_enc = work_encrypt_value(app_xml)
    bot_json = json.dumps(wc.bot_message("evilofficer", "路灯坏了", "evilmsg1"))
    bot_enc = work_encrypt_value(bot_json, receive_id="", bot=True)
    cases += [
        Case(APP, "forged signature", "zeros", work_query(app_enc, msg_sig="0" * 40), app_envelope(app_enc)),
        Case(APP, "forged signature", "missing", "timestamp=" + _now() + "&nonce=1", app_envelope(app_enc)),
        Case(
            BOT,
            "forged signature",
            "zeros",
            work_query(bot_enc, bot=True, msg_sig="0" * 40),
            bot_envelope(bot_enc),
            JSON,
        ),
        Case(BOT, "forged signature", "app-token-for-bot", work_query(bot_enc), bot_envelope(bot_enc), JSON),
    ]

    # Replayed (stale) and future timestamps, correctly signed
    for label, ts in (("one-hour-old", old), ("one-hour-ahead", future), ("not-a-number", "yesterday")):
        cases.append(Case(MP, "replayed timestamp", label, *mp_plain(good_xml, ts=ts)))
        cases.append(Case(APP, "replayed timestamp", label, work_query(app_enc, ts=ts), app_envelope(app_enc)))
        cases.append(
            Case(BOT, "replayed timestamp", label, work_query(bot_enc, bot=True, ts=ts), bot_envelope(bot_enc), JSON)
        )

    # Ciphertext for another AppId / CorpId / bot (signed with our token)
    cases += [
        Case(MP, "wrong AppId/CorpId", "other-appid", *mp_safe(mp_encrypt_value(good_xml, appid="wxEVIL00000000000"))),
        Case(
            APP,
            "wrong AppId/CorpId",
            "other-corp",
            work_query(e := work_encrypt_value(app_xml, "wwEVIL")),
            app_envelope(e),
        ),
        Case(
            BOT,
            "wrong AppId/CorpId",
            "corp-id-instead-of-empty",
            work_query(e2 := work_encrypt_value(bot_json, receive_id=wc.CORP_ID, bot=True), bot=True),
            bot_envelope(e2),
            JSON,
        ),
    ]

    # Truncated, padded and corrupted ciphertexts, signed again
    for label, enc in ciphertext_variants(mp_encrypt_value(good_xml)).items():
        cases.append(Case(MP, "truncated/padded ciphertext", label, *mp_safe(enc)))
    for label, enc in ciphertext_variants(app_enc).items():
        cases.append(Case(APP, "truncated/padded ciphertext", label, work_query(enc), app_envelope(enc)))
    for label, enc in ciphertext_variants(bot_enc).items():
        cases.append(
            Case(BOT, "truncated/padded ciphertext", label, work_query(enc, bot=True), bot_envelope(enc), JSON)
        )

    # DTDs and entities: in the body, and inside a correctly encrypted and signed payload
    for label, xml in (
        ("billion-laughs", BILLION_LAUGHS),
        ("external-entity", EXTERNAL_ENTITY),
        ("parameter-entity", PARAMETER_ENTITY),
        ("lowercase-doctype", LOWERCASE_DOCTYPE),
    ):
        cases.append(Case(MP, "XML entities (billion laughs, XXE)", f"plain-{label}", *mp_plain(xml)))
        cases.append(
            Case(MP, "XML entities (billion laughs, XXE)", f"encrypted-{label}", *mp_safe(mp_encrypt_value(xml)))
        )
        cases.append(
            Case(
                APP,
                "XML entities (billion laughs, XXE)",
                f"envelope-{label}",
                work_query(app_enc),
                xml.replace("<Content>", f"<Encrypt>{app_enc}</Encrypt><Content>").encode(),
            )
        )
        cases.append(
            Case(
                APP,
                "XML entities (billion laughs, XXE)",
                f"encrypted-{label}",
                work_query(e3 := work_encrypt_value(xml)),
                app_envelope(e3),
            )
        )

    # Deeply nested and very wide XML
    cases += [
        Case(MP, "deeply nested XML", "plain-50000-deep", *mp_plain(DEEP)),
        Case(MP, "deeply nested XML", "encrypted-50000-deep", *mp_safe(mp_encrypt_value(DEEP))),
        Case(MP, "deeply nested XML", "plain-20000-repeated-fields", *mp_plain(WIDE)),
        Case(
            APP,
            "deeply nested XML",
            "encrypted-50000-deep",
            work_query(e4 := work_encrypt_value(DEEP)),
            app_envelope(e4),
        ),
    ]

    # Not UTF-8
    gbk = good_xml.encode("gbk")
    utf16 = good_xml.encode("utf-16")
    noise = bytes(range(256)) * 4
    for label, body in (
        ("gbk", gbk),
        ("utf-16-bom", utf16),
        ("binary-noise", noise),
        ("latin1", "<xml>é\xff</xml>".encode("latin-1")),
    ):
        cases.append(Case(MP, "non-UTF-8 body", label, mp_plain(b"")[0], body))
        cases.append(Case(APP, "non-UTF-8 body", label, work_query(app_enc), body))
        cases.append(Case(BOT, "non-UTF-8 body", label, work_query(bot_enc, bot=True), body, JSON))

    # Oversized bodies
    big = b"<xml><Content>" + b"A" * (10 * 1024 * 1024) + b"</Content></xml>"
    big_json = b'{"encrypt": "' + b"A" * (10 * 1024 * 1024) + b'"}'
    cases += [
        Case(MP, "10 MiB body", "xml", mp_plain(b"")[0], big),
        Case(APP, "10 MiB body", "xml", work_query(app_enc), big),
        Case(BOT, "10 MiB body", "json", work_query(bot_enc, bot=True), big_json, JSON),
    ]

    # The wrong format
    json_push = json.dumps({"ToUserName": ACCOUNT, "FromUserName": "oJson", "MsgType": "text", "Content": "路灯坏了"})
    cases += [
        Case(MP, "JSON where XML is due, and the reverse", "json-body", *mp_plain(json_push), JSON),
        Case(
            MP,
            "JSON where XML is due, and the reverse",
            "json-encrypt-envelope",
            mp_safe(mp_encrypt_value(good_xml))[0],
            json.dumps({"Encrypt": mp_encrypt_value(good_xml)}).encode(),
            JSON,
        ),
        Case(
            APP,
            "JSON where XML is due, and the reverse",
            "json-envelope",
            work_query(app_enc),
            json.dumps({"encrypt": app_enc}).encode(),
            JSON,
        ),
        Case(
            BOT,
            "JSON where XML is due, and the reverse",
            "xml-envelope",
            work_query(bot_enc, bot=True),
            app_envelope(bot_enc),
        ),
        Case(
            BOT,
            "JSON where XML is due, and the reverse",
            "encrypted-xml-payload",
            work_query(e5 := work_encrypt_value(app_xml, receive_id="", bot=True), bot=True),
            bot_envelope(e5),
            JSON,
        ),
        Case(
            BOT, "JSON where XML is due, and the reverse", "json-array", work_query(bot_enc, bot=True), b"[1,2,3]", JSON
        ),
        Case(MP, "JSON where XML is due, and the reverse", "empty-body", *mp_plain(b"")),
    ]
    return cases


def injection_pushes() -> list[tuple[str, str, str, bytes, str, str]]:
    """(endpoint, name, query, body, content type, the text that must come back verbatim)."""
    pushes = []
    for index, text in enumerate(INJECTIONS):
        xml = text_xml(f"oInject{index}", text, msg_id=67_000_000 + index)
        pushes.append((MP, f"mp-{index}", *mp_safe(mp_encrypt_value(xml)), XML, text))
        app_enc = work_encrypt_value(wc.app_text_xml(f"inject{index}", text, msg_id=67_100_000 + index))
        pushes.append((APP, f"work-{index}", work_query(app_enc), app_envelope(app_enc), XML, text))
        bot_enc = work_encrypt_value(
            json.dumps(wc.bot_message(f"inject{index}", text, f"inj{index}"), ensure_ascii=False),
            receive_id="",
            bot=True,
        )
        pushes.append((BOT, f"bot-{index}", work_query(bot_enc, bot=True), bot_envelope(bot_enc), JSON, text))
    # A hostile openid too: stored as given, used only as a bound parameter.
    xml = text_xml("o'); DROP TABLE residents;--", "路灯坏了", msg_id=67_200_000)
    pushes.append((MP, "mp-openid", *mp_safe(mp_encrypt_value(xml)), XML, "路灯坏了"))
    return pushes
