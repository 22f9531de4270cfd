"""The floor for the webhook benchmark: a Flask app that does only what WeChat requires
(check the signature, decrypt, parse_message, answer "success") — nothing stored, nothing queued."""

from __future__ import annotations

import os

from flask import Flask, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature


def create_bare_app() -> Flask:
    app = Flask(__name__)
    token, aes_key, appid = os.environ["WECHAT_TOKEN"], os.environ["WECHAT_AES_KEY"], os.environ["WECHAT_APPID"]

    @app.post("/wechat/mp")
    def receive():
        args = request.args
        check_signature(token, args["signature"], args["timestamp"], args["nonce"])
        xml = WeChatCrypto(token, aes_key, appid).decrypt_message(
            request.data, args["msg_signature"], args["timestamp"], args["nonce"]
        )
        parse_message(xml)
        return "success"

    @app.get("/healthz")
    def health():
        return {"status": "ok"}

    return app
