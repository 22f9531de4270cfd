"""Coverage-guided fuzzing of POST /wechat/mp with atheris (libFuzzer). Run by tests/security/test_fuzz.py:

    python -m tests.security.atheris_webhook -runs=3000 -max_total_time=40

The app runs on a throwaway SQLite file and an unreachable Redis (enqueueing fails and is logged, as when
Redis is down). The first byte picks the mode (plaintext body, or the body as a safe-mode Encrypt value);
the rest is the body. Any answer of 500 or more, or any exception out of the app, is a crash.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["bot", "xmltodict", "wechatpy"]):
    from app import create_app

from tests.support.corpus import mp_plain, mp_safe
from tests.support.wechat_push import AES_KEY, APPID, TOKEN


def build_app():
    from flask_migrate import upgrade

    folder = os.environ.get("INSTANCE_PATH") or tempfile.mkdtemp(prefix="atheris-")
    os.environ["INSTANCE_PATH"] = folder
    app = create_app(
        "test",
        overrides={
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/fuzz.db",
            "REDIS_URL": "redis://127.0.0.1:9/0",
            "SECRET_KEY": "fuzz",
            "WECHAT_TOKEN": TOKEN,
            "WECHAT_APPID": APPID,
            "WECHAT_AES_KEY": AES_KEY,
        },
    )
    with app.app_context():
        upgrade(directory=os.path.join(os.path.dirname(__file__), "..", "..", "migrations"))
    app.config["PROPAGATE_EXCEPTIONS"] = True  # an exception is a finding, not a quiet 500
    logging.disable(logging.CRITICAL)
    return app


APP = build_app()
CLIENT = APP.test_client()


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 2, data[1:]
    if mode == 0:
        query, payload = mp_plain(body)
    else:
        query, payload = mp_safe(body.decode("latin-1"))
    response = CLIENT.post(f"/wechat/mp?{query}", data=payload, content_type="text/xml")
    if response.status_code >= 500:
        raise RuntimeError(f"HTTP {response.status_code} for {data[:80]!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
