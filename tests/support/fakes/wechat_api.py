"""A fake WeChat/WeCom HTTP API on loopback: records every call, answers like the platform, injects faults."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.support.fakes.mass_send import MassSendFake, RandomFaults


@dataclass
class Call:
    method: str
    path: str
    args: dict
    body: dict | None
    at: float = 0.0  # time.time() when it arrived (benchmarks measure push → acknowledgement)
    at: float = 0.0  # the fake's clock when the call arrived (settable, for rate tests)


@dataclass
class FakeWeChatApi:
    """Start with `.start()`; `base_url` goes into WECHAT_API_BASE / WECOM_API_BASE."""

    calls: list[Call] = field(default_factory=list)
    # Queued fault answers per path: (http status, json body or None for the default success).
    faults: dict[str, deque] = field(default_factory=dict)
    tokens_issued: int = 0
    valid_tokens: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Group-robot keys WeCom no longer accepts (answered with errcode 93000).
    bad_robot_keys: set = field(default_factory=set)
    clock: Callable[[], float] = time.time
    # Official-account mass sends, tags and menu (per-recipient counts); seeded per-path random faults.
    mass: MassSendFake = field(default_factory=MassSendFake)
    random_faults: RandomFaults = field(default_factory=RandomFaults)
    # Temporary media by MediaId: (bytes, content type) answered by media/get, or a video's download URL
    # path (media/get then answers {"video_url": ...} and the fake serves the bytes at that path).
    media: dict = field(default_factory=dict)
    media_files: dict = field(default_factory=dict)

    def start(self) -> FakeWeChatApi:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.tokens_issued = 0
            self.valid_tokens.clear()
            self.bad_robot_keys.clear()
            self.mass.reset()
            self.random_faults.clear()
            self.clock = time.time
            self.media.clear()
            self.media_files.clear()

    def add_media(self, media_id: str, content: bytes, content_type: str, video: bool = False) -> None:
        """What media/get answers for `media_id` (WeChat keeps a resident's media three days)."""
        with self.lock:
            if video:
                self.media[media_id] = f"/media-files/{media_id}.mp4"
                self.media_files[self.media[media_id]] = (content, content_type)
            else:
                self.media[media_id] = (content, content_type)

    def fail_next(self, path: str, *answers: tuple[int, dict | None]) -> None:
        with self.lock:
            self.faults.setdefault(path, deque()).extend(answers)

    def expire_tokens(self) -> None:
        with self.lock:
            self.valid_tokens.clear()

    def sent(self, path: str = "/cgi-bin/message/custom/send") -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        body = None
        if request.data:
            try:
                body = json.loads(request.data)
            except ValueError:
                body = {"_raw": request.data.decode("utf-8", "replace")}
        call = Call(request.method, request.path, dict(request.args), body, self.clock())
        with self.lock:
            self.calls.append(call)
            queued = self.faults.get(request.path)
            fault = queued.popleft() if queued else None
        lost = False
        if fault is None:
            fault, lost = self.random_faults.draw(request.path)
        if fault is not None:
            if lost:
                self._answer(request)  # the call took effect; only its answer is lost
            status, payload = fault
            return Response(json.dumps(payload or {}), status=status, mimetype="application/json")(
                environ, start_response
            )
        binary = self._media_file(request)
        if binary is not None:
            content, content_type = binary
            headers = {"Content-Disposition": 'attachment; filename="media"'}
            return Response(content, content_type=content_type, headers=headers)(environ, start_response)
        return Response(json.dumps(self._answer(request), ensure_ascii=False), mimetype="application/json")(
            environ, start_response
        )

    def _media_file(self, request: Request) -> tuple[bytes, str] | None:
        """A file body for media/get (with a valid token) or a video download URL; None otherwise."""
        with self.lock:
            if request.path in self.media_files:
                return self.media_files[request.path]
            if request.path != "/cgi-bin/media/get" or request.args.get("access_token") not in self.valid_tokens:
                return None
            found = self.media.get(request.args.get("media_id"))
        return found if isinstance(found, tuple) else None

    def _answer(self, request: Request) -> dict:
        path = request.path
        if path in ("/cgi-bin/token", "/cgi-bin/gettoken"):
            with self.lock:
                self.tokens_issued += 1
                token = f"TOKEN{self.tokens_issued}"
                self.valid_tokens.add(token)
            return {"access_token": token, "expires_in": 7200}
        if path.startswith("/cgi-bin/webhook/"):
            if request.args.get("key") in self.bad_robot_keys:
                return {"errcode": 93000, "errmsg": "invalid webhook url, hint: [fake]"}
            return {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/cgi-bin/aibot/response"):
            return {"errcode": 0, "errmsg": "ok"}
        with self.lock:
            valid = request.args.get("access_token") in self.valid_tokens
        if not valid:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        answered = self.mass.answer(path, request)
        if answered is not None:
            return answered
        if path == "/cgi-bin/media/get":
            video = self.media.get(request.args.get("media_id"))
            if isinstance(video, str):
                return {"video_url": f"http://{request.host}{video}"}
            return {"errcode": 40007, "errmsg": "invalid media_id"}
        return {"errcode": 0, "errmsg": "ok"}


class _QuietHandler(WSGIRequestHandler):
    """No access log: tests and benchmarks read the recorded calls instead."""

    def log_request(self, *args, **kwargs) -> None:
        pass
