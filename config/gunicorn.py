"""gunicorn hooks, passed by the launcher with `-c python:config.gunicorn` (the bare benchmark app gets them too)."""

from __future__ import annotations

import gc


def post_worker_init(worker) -> None:
    """The app and its libraries are loaded by now: hundreds of thousands of long-lived objects that every
    full collection would walk while all request threads wait (40-55 ms each, measured under a burst: the
    webhook's p99). Frozen, they are never scanned again; full collections see only what requests make."""
    gc.freeze()
