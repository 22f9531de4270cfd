"""Group commit for webhook pushes: a burst of requests costs one transaction and one Redis round trip.

Every push must be durable before the platform hears "success". Committed one request at a time, pushes
queue for the database's write lock (SQLite has one, and its busy handler sleeps in steps of up to 100 ms
while it waits): under a burst that wait is the webhook's p99. So a request hands its push to this
process's writer thread and waits for the answer. The writer takes everything that arrived meanwhile,
inserts all of it with one statement in one transaction, then counts it against the rate limits and queues
the new rows in one Redis script call. A lone push costs what it did before; a burst pays per batch, not per push.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections import deque
from dataclasses import dataclass

from flask import Flask, current_app
from redis.exceptions import RedisError
from sqlalchemy.dialects import postgresql, sqlite

from bot.messages import InboundPush
from jobs.intake import Admission, admit_inbound
from models import InboundMessage, InboundStatus, db, utcnow
from ops import metrics, ratelimit

log = logging.getLogger(__name__)

# Larger batches only lengthen the wait of the first push in them; 64 is far past where commits stop mattering.
MAX_BATCH = 64
# Under a burst (the last batch held more than one push) the writer waits this long for more before writing:
# fewer, larger batches cost less CPU per push, which the webhook needs when it shares two cores with workers.
# A lone push is written at once.
LINGER = 0.002
WEB_CHECKPOINT_PAGES = 20000
# Past this the request answers an error and the platform retries (a row that lands late is deduplicated).
STORE_TIMEOUT = 4.0


class _Signal:
    """Wakes the writer thread through a pipe. Writing and waiting are system calls that release the GIL: a
    thread descheduled while waking another (the kernel favours the thread it just woke) would otherwise
    hold the GIL off-CPU and stall every thread in the process, which is what threading's locks and
    futures do here under a burst."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)

    def set(self) -> None:
        try:
            os.write(self.write_fd, b"!")
        except BlockingIOError:  # the pipe is full of wake-ups already: the waiter will wake
            pass

    def wait(self, timeout: float | None) -> bool:
        """True when woken (all pending wake-ups are consumed), False after `timeout` seconds."""
        ready, _, _ = select.select([self.read_fd], [], [], timeout)
        if ready:
            os.read(self.read_fd, 4096)
        return bool(ready)

    def __del__(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


class _Wakeup:
    """Wakes every request thread whose push was put while it was open, with one system call: closing the
    pipe's write end leaves it readable for good (end of file). A write per push instead made the writer
    release and re-take the GIL once per push, a fifth of its time under a burst (measured)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.outstanding = 0  # pushes put under it and not yet answered; changed under _Writer.lock

    def wait(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.read_fd], [], [], timeout)
        return bool(ready)

    def fire(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def __del__(self) -> None:
        os.close(self.read_fd)
        self.fire()


@dataclass
class _Pending:
    push: InboundPush
    ip: str
    wakeup: _Wakeup
    outcome: tuple[int, bool] | None = None
    error: BaseException | None = None
    done: bool = False

    def finish(self, outcome: tuple[int, bool] | None = None, error: BaseException | None = None) -> None:
        self.outcome, self.error, self.done = outcome, error, True


def store_and_enqueue(push: InboundPush) -> tuple[int, bool]:
    """Store the push durably and queue it for processing; (row id, False) for a platform retry.

    Raises what the database raised when the push could not be stored (the caller answers 5xx, the platform
    retries), or TimeoutError past STORE_TIMEOUT. Redis trouble never fails this: a stored push is recovered
    later.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    pending = _writer(app).put(push, ratelimit.client_ip())
    deadline = time.monotonic() + STORE_TIMEOUT
    while not pending.done:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not pending.wakeup.wait(remaining):
            if pending.done:
                break
            raise TimeoutError(f"inbound push not stored within {STORE_TIMEOUT} s")
    if pending.error is not None:
        raise pending.error
    return pending.outcome


class _Writer:
    """One per web process: a daemon thread with its own app context, fed through a deque.

    Requests put pushes under the open _Wakeup; taking a batch opens a new one, and a _Wakeup fires once
    every push put under it is answered. The writer sleeps on its own _Signal, which a put sets only when
    the writer is (about to be) asleep: while it works, requests add to the deque without a system call."""

    def __init__(self, app: Flask):
        self.app = app
        self.pid = os.getpid()
        self.lock = threading.Lock()  # held for a few bytecodes, never across a system call
        self.waiting: deque[_Pending] = deque()
        self.open = _Wakeup()
        self.sleeping = False
        self.signal = _Signal()
        threading.Thread(target=self._run, name="inbound-writer", daemon=True).start()

    def put(self, push: InboundPush, ip: str) -> _Pending:
        with self.lock:
            pending = _Pending(push, ip, self.open)
            self.open.outstanding += 1
            self.waiting.append(pending)
            wake = self.sleeping
        if wake:
            self.signal.set()
        return pending

    def _sleep(self, timeout: float | None) -> None:
        with self.lock:
            if self.waiting:
                return
            self.sleeping = True
        self.signal.wait(timeout)
        self.sleeping = False

    def _take(self, limit: int) -> list[_Pending]:
        if not self.waiting:
            return []
        fresh = _Wakeup()  # made outside the lock: a pipe is a system call, which lets other threads run
        with self.lock:
            taken: list = []
            while self.waiting and len(taken) < limit:
                taken.append(self.waiting.popleft())
            if taken and taken[-1].wakeup is self.open:
                self.open = fresh  # what is put from now on is answered with a later batch
        return taken

    def _answered(self, batch: list[_Pending]) -> None:
        """Fire each _Wakeup of the batch whose pushes are all answered (one put late, or past MAX_BATCH,
        keeps its _Wakeup for the batch that answers it)."""
        fired = []
        with self.lock:
            for pending in batch:
                wakeup = pending.wakeup
                wakeup.outstanding -= 1
                if wakeup.outstanding == 0 and wakeup is not self.open:
                    fired.append(wakeup)
        for wakeup in fired:
            wakeup.fire()

    def _run(self) -> None:
        busy = False
        while True:
            self._sleep(None)
            batch = self._take(MAX_BATCH)
            if busy and len(batch) < MAX_BATCH:
                deadline = time.monotonic() + LINGER
                while len(batch) < MAX_BATCH and (remaining := deadline - time.monotonic()) > 0:
                    self._sleep(remaining)
                    batch += self._take(MAX_BATCH - len(batch))
            if not batch:
                continue
            busy = len(batch) > 1
            with self.app.app_context():
                try:
                    _write(batch)
                except BaseException as exc:  # the writer must outlive any batch; its requests get the error
                    for pending in batch:
                        if not pending.done:
                            pending.finish(error=exc)
                finally:
                    db.session.remove()
                    self._answered(batch)


_writers: dict[int, _Writer] = {}
_writers_lock = threading.Lock()


def _writer(app: Flask) -> _Writer:
    # Keyed by app and checked against the pid: a forked process must start its own thread.
    writer = _writers.get(id(app))
    if writer is None or writer.pid != os.getpid():
        with _writers_lock:
            writer = _writers.get(id(app))
            if writer is None or writer.pid != os.getpid():
                writer = _writers[id(app)] = _Writer(app)
    return writer


def _write(batch: list[_Pending]) -> None:
    try:
        stored = _insert_all([pending.push for pending in batch])
        db.session.commit()
    except Exception:
        db.session.rollback()
        if len(batch) == 1:
            raise
        # One push the database refuses must not fail the others: store each on its own.
        log.warning("group insert of %d pushes failed; storing them one by one", len(batch))
        for pending in batch:
            try:
                stored_one = _insert_all([pending.push])
                db.session.commit()
            except Exception as exc:
                db.session.rollback()
                pending.finish(error=exc)
            else:
                _admit([pending], stored_one)
        return
    _admit(batch, stored)


def _admit(batch: list[_Pending], stored: list[tuple[int, bool]]) -> None:
    """Count the pushes against their rate limits and queue the new rows under them; then answer."""
    admissions = [
        Admission(
            row_id if is_new else None,
            metrics.counter_field("inbound", p.push.channel),
            ratelimit.inbound_limits(p.push.channel, p.push.sender, p.ip),
        )
        for p, (row_id, is_new) in zip(batch, stored, strict=True)
    ]
    try:
        deferred = admit_inbound(admissions)
    except RedisError as exc:
        # Stored is what matters: the recovery sweep queues them once Redis is back (limits fail open).
        log.warning("%d inbound pushes stored, enqueue deferred: %s", len(batch), exc)
        deferred = []
    for pending, (row_id, is_new), reason in zip(batch, stored, deferred, strict=False):
        if reason:
            ratelimit.note_deferred(pending.push.channel, reason)
            if is_new:
                _mark_deferred(row_id, reason)
    for pending, outcome in zip(batch, stored, strict=True):
        pending.finish(outcome)


def _mark_deferred(row_id: int, reason: str) -> None:
    """Over a limit the row waits for the recovery sweep; staff see why on the row."""
    try:
        row = db.session.get(InboundMessage, row_id)
        row.payload = {**(row.payload or {}), "_deferred": reason}
        db.session.commit()
    except Exception:  # stored and answered either way; the note is only for staff
        db.session.rollback()
        log.exception("could not note the deferral of inbound %s", row_id)


def _insert_statement(dialect_name: str):
    """One compiled statement for every batch: INSERT … ON CONFLICT DO NOTHING RETURNING, values bound."""
    statement = _INSERTS.get(dialect_name)
    if statement is None:
        dialect = sqlite if dialect_name == "sqlite" else postgresql
        table = InboundMessage.__table__
        statement = _INSERTS[dialect_name] = (
            dialect.insert(table)
            .on_conflict_do_nothing(index_elements=["channel", "dedup_key"])
            .returning(table.c.id, table.c.channel, table.c.dedup_key)
        )
    return statement


_INSERTS: dict = {}


def _insert_all(pushes: list[InboundPush]) -> list[tuple[int, bool]]:
    """Insert the batch in one statement inside the session's transaction; per push (row id, is new)."""
    connection = db.session.connection()  # Core on the session's transaction: no ORM unit of work
    if connection.dialect.name == "sqlite" and not connection.info.get("web_checkpoint"):
        # The commit that crosses SQLite's checkpoint threshold copies the WAL into the database and syncs it,
        # tens of milliseconds that every push in the batch would wait for: leave that to the workers'
        # commits (default threshold), and checkpoint here only if the WAL grows past ~80 MB. The setting
        # lasts as long as the pooled connection, whose info remembers it.
        connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={WEB_CHECKPOINT_PAGES}")
        connection.info["web_checkpoint"] = True
    now = utcnow()
    rows = [
        {
            "channel": push.channel,
            "dedup_key": push.dedup_key,
            "sender": push.sender,
            "msg_type": push.msg_type,
            "content": push.content,
            "payload": push.payload,
            "status": InboundStatus.RECEIVED,
            "attempts": 0,
            "received_at": now,
        }
        for push in pushes
    ]
    inserted = {
        (channel, key): row_id
        for row_id, channel, key in connection.execute(_insert_statement(connection.dialect.name), rows)
    }
    stored, claimed = [], set()
    for push in pushes:
        key = (push.channel, push.dedup_key)
        row_id = inserted.get(key)
        if row_id is not None and key not in claimed:
            claimed.add(key)  # the first of two copies in one batch is the new one
            stored.append((row_id, True))
            continue
        if row_id is None:  # a platform retry of a push stored earlier
            table = InboundMessage.__table__
            row_id = connection.execute(
                db.select(table.c.id).where(table.c.channel == push.channel, table.c.dedup_key == push.dedup_key)
            ).scalar_one()
        stored.append((row_id, False))
    return stored
