"""The store's connection to its database: engines, retries and errors.

Every statement the store runs goes through `Runner`: one transaction per call, retried with
backoff when the failure is transient (a lost or refused connection, a serialization failure,
a deadlock, SQLite's "database is locked"), and any failure turned into a one-line `StoreError`
naming the problem, never the SQL or the values (they may be conversation text). Engines are
made with ``hide_parameters=True`` (SQLAlchemy's own messages and logs leave the values out)
and ``pool_pre_ping=True`` (a connection the server dropped, in a restart say, is replaced
before it is used, rather than failing the next write).

A write whose commit fails may have been stored anyway (the connection dropped after the
server committed). Such a write is marked; the next attempt first asks the database whether it
landed (`Call.done`) and, if so, returns what it stored instead of writing it twice.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc

from ..errors import ConfigurationError, StoreError

__all__ = [
    "DEFAULT_URL",
    "MISSING",
    "Call",
    "Runner",
    "classify",
    "is_database_error",
    "make_engine",
    "shown",
    "translate",
]

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///context_manager.db"
"""Where the store lives unless told otherwise: a SQLite file in the working directory."""

MISSING: Any = object()
"""What `Call.done` returns when the write did not land."""

_READ = "context_manager_read"
"""The execution option of a read-only connection (SQLite: a plain ``BEGIN``)."""


def make_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    """An engine for `url`: parameters hidden, pool pre-ping, SQLite in WAL mode."""
    try:
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
    except Exception as exc:  # the URL itself: a typo'd dialect or driver
        detail = str(exc).strip().split("\n")[0]  # SQLAlchemy's never shows the URL
        raise ConfigurationError(f"cannot use database URL: {detail}") from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are begun by hand (below), so pysqlite must not begin its own.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # The busy timeout first: switching a new file to WAL waits for other processes.
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA journal_mode=WAL")
            # Off while migrating: SQLite alters a table by copying it, which a referencing
            # table would block.
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            # A writer takes the write lock when it begins, so writers queue, never deadlock.
            read = connection.get_execution_options().get(_READ, False)
            connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    return engine


def shown(engine: Engine) -> str:
    """The engine's URL with its password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


# ---------------------------------------------------------------------- what went wrong

_PG_TRANSIENT = {
    "40001": ("busy", "a serialization conflict with another transaction"),
    "40P01": ("busy", "a deadlock with another transaction"),
    "55P03": ("busy", "a lock held by another transaction"),
    "57P01": ("unavailable", "the server is shutting down"),
    "57P02": ("unavailable", "the server crashed"),
    "57P03": ("unavailable", "the server is starting up"),
    "53300": ("unavailable", "too many connections"),
}
_PG_PERMANENT = {
    "53100": ("disk_full", "the disk is full"),
    "25006": ("read_only", "the database is read-only"),
    "3D000": ("refused", "no such database"),
    "28000": ("refused", "the login was refused"),
    "28P01": ("refused", "the login was refused"),
    "42P01": ("schema", "a table is missing: run `context-manager db upgrade`"),
    "42703": ("schema", "a column is missing: run `context-manager db upgrade`"),
    "23503": ("not_found", "a referenced row does not exist"),
    "23505": ("conflict", "an id is already taken"),
}
_SQLITE = {
    "SQLITE_BUSY": ("busy", "the database is locked by another writer", True),
    "SQLITE_LOCKED": ("busy", "a table is locked by another connection", True),
    "SQLITE_FULL": ("disk_full", "the disk (or the database's size limit) is full", False),
    "SQLITE_READONLY": ("read_only", "the database is read-only", False),
    "SQLITE_NOTADB": ("not_a_database", "the file is not a SQLite database", False),
    "SQLITE_CORRUPT": ("not_a_database", "the database file is damaged", False),
    "SQLITE_CANTOPEN": ("unavailable", "the file or its directory is missing", False),
    "SQLITE_CONSTRAINT": ("conflict", "a constraint failed", False),
    "SQLITE_IOERR": ("failed", "a disk I/O error", False),
    "SQLITE_PERM": ("read_only", "access to the file is denied", False),
}
# The unique constraints a write can meet, by name (PostgreSQL) and by columns (SQLite).
_UNIQUE = {
    # Two writers took the same position (without the append lock): the retry reads the new end.
    "uq_items_position": ("busy", True, "another writer took the same place in the conversation"),
    "uq_items_uid": ("conflict", False, "uids must be new and unique: one is taken already"),
    "uq_server_items": (
        "conflict",
        False,
        "server item ids must be unique in session: one is taken already",
    ),
}
_SQLITE_UNIQUE = (
    ("items.conversation_id, items.position", "uq_items_position"),
    ("items.conversation_id, items.uid", "uq_items_uid"),
    ("server_items.session_id, server_items.server_item_id", "uq_server_items"),
)
# Messages of SQLite errors made without an error code (older Pythons, test doubles).
_SQLITE_TEXT = (
    ("database is locked", "SQLITE_BUSY"),
    ("database table is locked", "SQLITE_LOCKED"),
    ("disk is full", "SQLITE_FULL"),
    ("readonly database", "SQLITE_READONLY"),
    ("not a database", "SQLITE_NOTADB"),
    ("malformed", "SQLITE_CORRUPT"),
    ("unable to open database", "SQLITE_CANTOPEN"),
    ("disk i/o error", "SQLITE_IOERR"),
    ("constraint failed", "SQLITE_CONSTRAINT"),
)


def is_database_error(exc: BaseException) -> bool:
    """Whether `exc` came from the database, its driver or SQLAlchemy."""
    return isinstance(exc, sa_exc.SQLAlchemyError | sqlite3.Error) or (
        type(exc).__module__.split(".")[0] == "psycopg"
    )


def classify(exc: BaseException) -> tuple[str, bool, str]:
    """``(reason, transient, description)`` of a database failure; never the driver's text.

    The driver's message is read to tell failures apart, but not repeated: PostgreSQL's can
    quote the values of the statement.
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return "busy", True, "no connection was free in the pool"
    orig = getattr(exc, "orig", None) if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "unavailable", True, "the connection was lost"
    if isinstance(orig, sqlite3.Error):
        return _classify_sqlite(orig)
    if orig is not None and type(orig).__module__.split(".")[0] == "psycopg":
        return _classify_pg(orig)
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        return "invalid", False, "a value could not be sent to the database"
    if isinstance(exc, sa_exc.DisconnectionError):
        return "unavailable", True, "the connection was lost"
    name = type(orig or exc).__name__
    return "failed", False, f"a database error ({name})"


def _classify_sqlite(orig: sqlite3.Error) -> tuple[str, bool, str]:
    code = getattr(orig, "sqlite_errorname", None) or ""
    if not code:
        text = str(orig).lower()
        code = next((c for needle, c in _SQLITE_TEXT if needle in text), "")
    for prefix, (reason, description, transient) in _SQLITE.items():
        if code.startswith(prefix):
            if prefix == "SQLITE_CONSTRAINT":
                text = str(orig)  # names the columns only: "... failed: items.uid"
                if "FOREIGN KEY" in text:
                    return "not_found", False, "a referenced row does not exist"
                for columns, constraint in _SQLITE_UNIQUE:
                    if text.endswith(columns):
                        return _UNIQUE[constraint]
            return reason, transient, description
    if "no such table" in str(orig) or "no such column" in str(orig):
        return "schema", False, "a table is missing: run `context-manager db upgrade`"
    return "failed", False, f"a database error ({code or type(orig).__name__})"


def _classify_pg(orig: BaseException) -> tuple[str, bool, str]:
    state = getattr(orig, "sqlstate", None)
    if state in _PG_TRANSIENT:
        reason, description = _PG_TRANSIENT[state]
        return reason, True, description
    if state == "23505":
        constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
        if constraint in _UNIQUE:
            return _UNIQUE[constraint]
    if state in _PG_PERMANENT:
        reason, description = _PG_PERMANENT[state]
        return reason, False, description
    if state is not None and state.startswith("08"):
        return "unavailable", True, "the connection was lost"
    if state is not None and state.startswith("22"):
        return "invalid", False, f"a value does not fit its column (SQLSTATE {state})"
    if state is None and type(orig).__name__ in {"OperationalError", "InterfaceError"}:
        # A connection that failed or broke: psycopg gives no SQLSTATE.
        text = str(orig).lower()
        if "does not exist" in text and "database" in text:
            return "refused", False, "no such database"
        if "authentication" in text or ("role" in text and "does not exist" in text):
            return "refused", False, "the login was refused"
        if "translate host name" in text or "name or service not known" in text:
            return "unavailable", False, "unknown host"
        if "refused" in text:
            return "unavailable", True, "connection refused"
        if "timeout" in text or "timed out" in text:
            return "unavailable", True, "the connection timed out"
        return "unavailable", True, "the connection failed or was lost"
    where = f", SQLSTATE {state}" if state else ""
    return "failed", False, f"a database error ({type(orig).__name__}{where})"


def translate(exc: BaseException, where: str, what: str | None = None) -> StoreError:
    """`exc` as a one-line `StoreError` (`what`: the call, for the message)."""
    reason, transient, description = classify(exc)
    if reason == "unavailable":
        head = f"cannot {'open' if where.startswith('sqlite') else 'reach'} {where}"
    elif reason == "refused":
        head = f"{where} refused the connection"
    else:
        head = where
    message = f"{head}: {description}"
    if what is not None:
        message = f"could not {what}: {message}"
    return StoreError(message, reason=reason, transient=transient)


# ---------------------------------------------------------------------- transactions


@dataclass(eq=False)
class Call:
    """One store call's transaction, ready to run (and to run again).

    Attributes:
        what: the call, for messages (``append 2 items to 'c1'``: ids and counts, no text).
        work: runs the transaction's statements; returns the call's result.
        done: if an earlier attempt may have committed, whether it did: its result, or
            `MISSING`.
        result: what the call returns when the write is kept for later (`AsyncStore`).
        new_id: the call returns the id of a row it adds (``session`` or ``compaction``),
            known only once it is written (`AsyncStore` returns a provisional one meanwhile).
        uncertain: an attempt failed while committing, so the write may be stored already.
    """

    what: str
    work: Callable[[Connection], Any]
    done: Callable[[Connection], Any] | None = None
    result: Any = None
    new_id: str | None = None
    uncertain: bool = False


class Runner:
    """Runs transactions on an engine, retrying transient failures with backoff.

    Args:
        engine: the engine.
        retry_seconds: how long to keep retrying a transient failure (0: never retry).
        first_delay: the first wait; each next one doubles (with jitter)...
        max_delay: ...up to this.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retry_seconds: float = 2.0,
        first_delay: float = 0.02,
        max_delay: float = 0.5,
    ) -> None:
        self.engine = engine
        self.where = shown(engine)
        self.retry_seconds = retry_seconds
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._jitter = np.random.default_rng()

    def run(self, call: Call, *, read: bool = False, retry: bool = True) -> Any:
        """Run `call` in one transaction and return its result.

        Raises:
            StoreError: what `call.work` raised, or the database's failure (after retries,
                when it was transient: then ``transient`` is true).
        """
        start = time.monotonic()
        delay = self.first_delay
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._once(call, read)
            except Exception as exc:
                if not is_database_error(exc):
                    raise  # a StoreError the work raised, or a bug: not the database's
                error = translate(exc, self.where, call.what)
            waited = time.monotonic() - start
            if not (error.transient and retry and waited + delay <= self.retry_seconds):
                if error.transient and attempts > 1:
                    error = StoreError(
                        f"{error} (tried {attempts} times over {waited:.1f} s)",
                        reason=error.reason,
                        transient=True,
                    )
                raise error
            log.info("%s: %s; retrying in %.2f s", call.what, error.reason, delay)
            time.sleep(delay * float(self._jitter.uniform(0.5, 1.0)))
            delay = min(delay * 2, self.max_delay)

    def _once(self, call: Call, read: bool) -> Any:
        with self.engine.connect() as c:
            if read:
                c.execution_options(**{_READ: True})
            tx = c.begin()
            try:
                result = MISSING
                if call.uncertain and call.done is not None:
                    result = call.done(c)
                if result is MISSING:
                    result = call.work(c)
            except BaseException:
                with suppress(Exception):
                    tx.rollback()
                raise
            try:
                tx.commit()
            except BaseException:
                call.uncertain = not read
                raise
            return result
