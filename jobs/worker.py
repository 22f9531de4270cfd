"""The RQ worker class: no fork per job (connections and the parser are reused), a fresh app context per job."""

from __future__ import annotations

from flask import Flask
from rq.worker import SimpleWorker


class AppWorker(SimpleWorker):
    """SimpleWorker with each job (and its callbacks) inside its own Flask app context, so every job gets a
    fresh database session that is removed when it ends."""

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job, queue):
        with self.app.app_context():
            return super().execute_job(job, queue)
