"""Shared model plumbing: the db object, portable types, timestamps."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite serves the web processes and the workers at once: WAL lets readers run beside one writer."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_for_update(conn, cursor, statement, parameters, context, executemany) -> None:
    """SQLite has no SELECT … FOR UPDATE (SQLAlchemy drops it): take the database's write lock instead.

    pysqlite runs reads outside any transaction, so two sessions could both read a ticket as "assigned" and
    both sign it. A locking read that is not yet in a transaction starts one with BEGIN IMMEDIATE, which
    waits (busy_timeout) for the other writer to commit, so the read-modify-write is serialised as the
    row lock serialises it on PostgreSQL. A transaction that has already written holds the lock anyway.
    """
    if conn.dialect.name != "sqlite" or context is None or context.compiled is None:
        return
    if getattr(context.compiled.statement, "_for_update_arg", None) is None:
        return
    if not conn.connection.dbapi_connection.in_transaction:
        cursor.execute("BEGIN IMMEDIATE")
