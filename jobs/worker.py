"""The RQ worker class: no fork per job (connections and the parser are reused), a fresh app context per job."""

from __future__ import annotations

import ctypes
import os
import signal

from flask import Flask
from rq.worker import SimpleWorker

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class AppWorker(SimpleWorker):
    """SimpleWorker with each job (and its callbacks) inside its own Flask app context, so every job gets a
    fresh database session that is removed when it ends."""

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job, queue):
        with self.app.app_context():
            return super().execute_job(job, queue)


def children_die_with_this_process() -> None:
    """Children forked from here on (RQ's scheduler process) get SIGTERM when this process dies.

    A forked child holds copies of the parent's sockets. When a worker is SIGKILLed (the OOM killer, kill
    -9) the scheduler child it forked lives on, and with it the dead worker's database connections: an
    open transaction is never ended by the server and its row locks stall every later worker, for ever.
    Linux only (prctl); elsewhere a supervisor that kills the whole process group does the same.
    """
    parent = os.getpid()

    def after_in_child() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    os.register_at_fork(after_in_child=after_in_child)
