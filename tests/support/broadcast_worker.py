"""An RQ worker in its own process, for tests that kill a worker mid-broadcast (SIGKILL, no cleanup).

    python -m tests.support.broadcast_worker '<settings as JSON>'

Builds the app with the given settings (the test's database, Redis and fake API) and drains every queue
in burst mode, exactly like `flask worker --burst`, then exits.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from app import create_app
    from config.queues import all_queues
    from jobs.worker import AppWorker
    from ops.queue import get_queue

    app = create_app("test", overrides=json.loads(sys.argv[1]))
    connection = app.extensions["redis"]
    with app.app_context():
        worker = AppWorker([get_queue(q, connection) for q in all_queues()], connection=connection, app=app)
        worker.work(burst=True, logging_level="ERROR")


if __name__ == "__main__":
    main()
