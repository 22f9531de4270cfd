"""The fake WeChat API with per-call faults on customer-service messages, and a ledger of what took effect.

`policy(body, call_number)` returns None (answer normally) or a fault: ("errcode", code), ("http", status)
or ("hang", seconds) — a call that is never answered in time and has no effect. The ledger records, per
recipient, the calls that really delivered a message (answered errcode 0), so a test can tell "sent
once" from "sent twice" however many faulted attempts came before.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.wrappers import Response

from tests.support.fakes.wechat_api import FakeWeChatApi

CUSTOM_SEND = "/cgi-bin/message/custom/send"


@dataclass
class FaultyApi(FakeWeChatApi):
    policy: Callable[[dict, int], tuple | None] | None = None
    delivered: Counter = field(default_factory=Counter)  # touser -> messages that really went out
    faults: Counter = field(default_factory=Counter)  # fault kind -> times injected
    custom_calls: int = 0
    ledger_lock: threading.Lock = field(default_factory=threading.Lock)

    def _wsgi(self, environ, start_response):
        if environ.get("PATH_INFO") != CUSTOM_SEND:
            return super()._wsgi(environ, start_response)
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(data)
        body = json.loads(data or b"{}")
        with self.ledger_lock:
            self.custom_calls += 1
            number = self.custom_calls
        fault = self.policy(body, number) if self.policy else None
        if fault is not None:
            kind, value = fault
            with self.ledger_lock:
                self.faults[f"{kind} {value}"] += 1
            if kind == "hang":
                time.sleep(value)
                return Response("", status=504)(environ, start_response)
            if kind == "http":
                return Response("<html>bad gateway</html>", status=value)(environ, start_response)
            payload = {"errcode": value, "errmsg": "injected"}
            return Response(json.dumps(payload), mimetype="application/json")(environ, start_response)
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return start_response(status, headers, exc_info)

        answer = b"".join(super()._wsgi(environ, capture))
        try:
            errcode = json.loads(answer).get("errcode", 0)
        except ValueError:
            errcode = None
        if errcode == 0 and captured.get("status", "").startswith("200"):
            with self.ledger_lock:
                self.delivered[body.get("touser")] += 1
        return [answer]

    def reset(self) -> None:
        super().reset()
        with self.ledger_lock:
            self.delivered.clear()
            self.faults.clear()
            self.custom_calls = 0
        self.policy = None
