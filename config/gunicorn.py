"""gunicorn hooks and settings, passed by the launcher with `-c python:config.gunicorn` (the bare benchmark app
gets them too)."""

from __future__ import annotations

import gc

# Open311 clients put whole id lists in the URL (FixMyStreet asks for every open request it holds): the
# default 4094-byte request line answers an HTML 414 at about 300 ids. 8190 is gunicorn's largest bounded
# value (0 would mean no bound at all); longer lists go in a POST body (docs/open311.md).
limit_request_line = 8190


def post_worker_init(worker) -> None:
    """The app and its libraries are loaded by now: hundreds of thousands of long-lived objects that every
    full collection would walk while all request threads wait (40-55 ms each, measured under a burst: the
    webhook's p99). Frozen, they are never scanned again; full collections see only what requests make."""
    gc.freeze()
