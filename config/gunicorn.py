"""gunicorn hooks and settings, passed by the launcher with `-c python:config.gunicorn` (the bare benchmark app
gets them too)."""

from __future__ import annotations

import gc
import signal

from gunicorn.workers.base import Worker

# Seconds a stopping web worker may finish the requests in flight (a webhook answers in milliseconds);
# the launcher waits a little longer than this before it kills what is left of the web server.
graceful_timeout = 10

# Open311 clients put whole id lists in the URL (FixMyStreet asks for every open request it holds): the
# default 4094-byte request line answers an HTML 414 at about 300 ids. 8190 is gunicorn's largest bounded
# value (0 would mean no bound at all); longer lists go in a POST body (docs/open311.md).
limit_request_line = 8190


def post_worker_init(worker) -> None:
    """The app and its libraries are loaded by now: hundreds of thousands of long-lived objects that every
    full collection would walk while all request threads wait (40-55 ms each, measured under a burst: the
    webhook's p99). Frozen, they are never scanned again; full collections see only what requests make."""
    gc.freeze()
    if worker is not None:
        quit_once(worker)


def quit_once(worker) -> None:
    """Make a worker's quick shutdown (SIGQUIT, SIGINT) safe to signal twice.

    gthread's handler shuts its thread pool down inside the signal handler. A second signal arriving
    meanwhile (the terminal's SIGINT and the master's SIGQUIT, a few milliseconds apart) ran the handler
    again on the same thread, which then waited for ever on the pool's shutdown lock that its first run
    held: a worker left behind, still holding the port. Here the first signal does the base worker's quick
    exit (the interpreter shuts the pool down on its way out, outside any handler) and later ones return.
    """
    quitting = False

    def handle_quit(signum, frame) -> None:
        nonlocal quitting
        if quitting:
            return
        quitting = True
        Worker.handle_quit(worker, signum, frame)

    worker.handle_quit = handle_quit
    signal.signal(signal.SIGQUIT, handle_quit)
    signal.signal(signal.SIGINT, handle_quit)
