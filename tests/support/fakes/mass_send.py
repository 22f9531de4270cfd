"""The official account's mass-send, tag and menu endpoints for the fake API, and seeded random faults.

Behaves like WeChat where the broadcast code relies on it:
- `message/mass/send` (2–10,000 openids, else 40130) and `message/mass/sendall` (filter.tag_id) deliver to
  each recipient and count it; a clientmsgid that already went out answers 45065 with the first msg_id and
  delivers nothing;
- each user takes at most `monthly_limit` mass messages; beyond that WeChat filters them out (counted);
- tags: create (45157 for a taken name), get, members/batchtagging / batchuntagging (≤50 openids);
- menu/create stores the menu;
- `user/get` pages through `followers` (`followers_page` a page, WeChat's 10,000 by default) after
  `next_openid`, and `message/mass/sendall` with `filter.is_to_all` delivers to every follower;
- WeCom app `message/send` with `enable_duplicate_check` (the broadcast's): delivers to each userid once per
  identical content (WeCom's duplicate check) and counts it. Other app messages are left to the fake.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

MASS_PATHS = ("/cgi-bin/message/mass/send", "/cgi-bin/message/mass/sendall")


@dataclass
class MassSendFake:
    delivered: Counter = field(default_factory=Counter)  # openid -> mass messages received
    filtered: Counter = field(default_factory=Counter)  # openid -> mass messages WeChat dropped (over 4/month)
    by_clientmsgid: dict = field(default_factory=dict)  # clientmsgid -> msg_id
    mass_calls: int = 0
    duplicates_refused: int = 0  # 45065 answers
    tags: dict = field(default_factory=dict)  # tag id -> name
    tag_members: dict = field(default_factory=dict)  # tag id -> set of openids
    menus: list = field(default_factory=list)
    app_delivered: Counter = field(default_factory=Counter)  # WeCom userid -> broadcast app messages received
    app_duplicates: int = 0  # recipients WeCom's duplicate check dropped
    _app_seen: set = field(default_factory=set)  # (userid, content)
    monthly_limit: int = 4
    followers: list = field(default_factory=list)  # the account's followers, in WeChat's order
    followers_page: int = 10_000
    # Called (outside the lock) with the number of mass sends delivered so far, after each delivery and
    # before the answer goes back: a test can kill the worker that is waiting for that answer.
    on_delivered: Callable[[int], None] | None = None
    _next_id: int = 1000
    _deliveries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.delivered.clear()
            self.filtered.clear()
            self.by_clientmsgid.clear()
            self.tags.clear()
            self.tag_members.clear()
            self.menus.clear()
            self.app_delivered.clear()
            self._app_seen.clear()
            self.app_duplicates = 0
            self.mass_calls = self.duplicates_refused = self._deliveries = 0
            self.on_delivered = None
            self.monthly_limit = 4
            self.followers = []
            self.followers_page = 10_000

    def answer(self, path: str, request) -> dict | None:
        """The answer for one of our paths, or None to let the fake answer as usual."""
        if path == "/cgi-bin/user/get":
            return self._followers_after(str(request.args.get("next_openid") or ""))
        if not path.startswith(("/cgi-bin/message/mass/", "/cgi-bin/tags/", "/cgi-bin/menu/", "/cgi-bin/message/send")):
            return None
        try:
            body = json.loads(request.data or b"{}")
        except ValueError:
            return {"errcode": 47001, "errmsg": "data format error"}
        if path == "/cgi-bin/message/send":
            return self._app_message(body) if body.get("enable_duplicate_check") else None
        if path in MASS_PATHS:
            return self._mass(path, body)
        if path == "/cgi-bin/tags/create":
            return self._create_tag(str((body.get("tag") or {}).get("name") or ""))
        if path == "/cgi-bin/tags/get":
            with self.lock:
                return {"tags": [{"id": i, "name": n, "count": len(self.tag_members[i])} for i, n in self.tags.items()]}
        if path in ("/cgi-bin/tags/members/batchtagging", "/cgi-bin/tags/members/batchuntagging"):
            return self._tagging(path.endswith("batchtagging"), body)
        if path == "/cgi-bin/menu/create":
            with self.lock:
                self.menus.append(body)
            return {"errcode": 0, "errmsg": "ok"}
        return {"errcode": 0, "errmsg": "ok"}

    def _mass(self, path: str, body: dict) -> dict:
        clientmsgid = str(body.get("clientmsgid") or "")
        with self.lock:
            self.mass_calls += 1
            if clientmsgid and clientmsgid in self.by_clientmsgid:
                self.duplicates_refused += 1
                return {"errcode": 45065, "errmsg": "clientmsgid exist", "msg_id": self.by_clientmsgid[clientmsgid]}
            if path.endswith("/send"):
                touser = body.get("touser") or []
                if not 2 <= len(touser) <= 10_000:
                    return {"errcode": 40130, "errmsg": "invalid openid list size, at least two openid"}
                recipients = list(dict.fromkeys(touser))
            elif (body.get("filter") or {}).get("is_to_all"):
                recipients = list(dict.fromkeys(self.followers))
            else:
                tag_id = int((body.get("filter") or {}).get("tag_id") or 0)
                if tag_id not in self.tags:
                    return {"errcode": 40050, "errmsg": "invalid tag id"}
                recipients = sorted(self.tag_members[tag_id])
            for openid in recipients:
                if self.delivered[openid] >= self.monthly_limit:
                    self.filtered[openid] += 1
                else:
                    self.delivered[openid] += 1
            self._next_id += 1
            msg_id = self._next_id
            if clientmsgid:
                self.by_clientmsgid[clientmsgid] = msg_id
            self._deliveries += 1
            deliveries = self._deliveries
        if self.on_delivered is not None:
            self.on_delivered(deliveries)
        return {"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id, "msg_data_id": msg_id}

    def _followers_after(self, next_openid: str) -> dict:
        """WeChat's paging: the page after `next_openid`, whose last openid is the next `next_openid`; past the
        end, count 0 and an empty next_openid."""
        with self.lock:
            followers = list(self.followers)
        if next_openid and next_openid not in followers:
            return {"errcode": 40003, "errmsg": "invalid openid"}
        start = followers.index(next_openid) + 1 if next_openid else 0
        page = followers[start : start + self.followers_page]
        answer: dict = {"total": len(followers), "count": len(page), "next_openid": page[-1] if page else ""}
        if page:
            answer["data"] = {"openid": page}
        return answer

    def _app_message(self, body: dict) -> dict:
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        content = json.dumps(body.get(body.get("msgtype") or "text"), sort_keys=True, ensure_ascii=False)
        with self.lock:
            for user in dict.fromkeys(users):
                if (user, content) in self._app_seen:
                    self.app_duplicates += 1
                    continue
                self._app_seen.add((user, content))
                self.app_delivered[user] += 1
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"app{len(self._app_seen)}"}

    def _create_tag(self, name: str) -> dict:
        if not name or len(name) > 30:
            return {"errcode": 45158, "errmsg": "tag name too long"}
        with self.lock:
            if name in self.tags.values():
                return {"errcode": 45157, "errmsg": "invalid tag name"}
            tag_id = 100 + len(self.tags)
            self.tags[tag_id] = name
            self.tag_members[tag_id] = set()
        return {"tag": {"id": tag_id, "name": name}}

    def _tagging(self, add: bool, body: dict) -> dict:
        openids = body.get("openid_list") or []
        tag_id = int(body.get("tagid") or 0)
        if len(openids) > 50:
            return {"errcode": 40032, "errmsg": "invalid openid list size"}
        with self.lock:
            if tag_id not in self.tags:
                return {"errcode": 45159, "errmsg": "invalid tag id"}
            if add:
                self.tag_members[tag_id].update(openids)
            else:
                self.tag_members[tag_id].difference_update(openids)
        return {"errcode": 0, "errmsg": "ok"}


@dataclass
class RandomFaults:
    """Per path: answer `fault` on a share of the calls, drawn from a seeded RNG (reproducible runs).

    `lost_share` of those faults happen AFTER the call took effect (the message went out, only the answer
    is lost): the case a clientmsgid exists for.
    """

    rules: dict = field(default_factory=dict)  # path -> (rate, (status, body), lost_share)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    injected: Counter = field(default_factory=Counter)  # path -> faults answered
    lost: Counter = field(default_factory=Counter)  # path -> faults answered after the call took effect
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(
        self,
        path: str,
        rate: float,
        fault: tuple[int, dict | None] = (200, {"errcode": -1, "errmsg": "system error"}),
        lost_share: float = 0.0,
        seed: int | None = None,
    ) -> None:
        with self.lock:
            self.rules[path] = (rate, fault, lost_share)
            if seed is not None:
                self.rng = random.Random(seed)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.injected.clear()
            self.lost.clear()

    def draw(self, path: str) -> tuple[tuple[int, dict | None] | None, bool]:
        """(fault or None, whether the call takes effect anyway)."""
        with self.lock:
            rule = self.rules.get(path)
            if rule is None:
                return None, False
            rate, fault, lost_share = rule
            if self.rng.random() >= rate:
                return None, False
            self.injected[path] += 1
            lost = self.rng.random() < lost_share
            if lost:
                self.lost[path] += 1
            return fault, lost
