"""Seeded database faults for the store's tests, through SQLAlchemy's own hooks.

`Faults` makes an engine fail the way a real database does, with the driver's own exception
types (so the store sees what it would see in production):

* before a write statement runs (``before``: a fraction of INSERT/UPDATE/DELETE statements), a
  transient error: SQLite's "database is locked", PostgreSQL's serialization failure;
* after a commit landed (``after_commit``: a fraction of commits), a lost connection: the row
  is stored but the client is told it failed, so a blind retry would store it twice;
* ``down``: every statement fails, as if the server were gone (SQLite: locked);
* ``error``: a permanent error to raise instead (a factory), e.g. a full disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Engine, event

WRITES = ("INSERT", "UPDATE", "DELETE")


class Faults:
    """Failures injected into `engine` until `remove` (seeded: the same run fails the same way)."""

    def __init__(
        self,
        engine: Engine,
        *,
        seed: int = 0,
        before: float = 0.0,
        after_commit: float = 0.0,
        down: bool = False,
        error: Callable[[], BaseException] | None = None,
    ) -> None:
        self.engine = engine
        self.rng = np.random.default_rng(seed)
        self.before, self.after_commit, self.down = before, after_commit, down
        self.error = error
        self.failed_before = 0
        self.failed_after_commit = 0
        self.postgres = engine.dialect.name == "postgresql"
        event.listen(engine, "before_cursor_execute", self._before)
        self._do_commit = engine.dialect.do_commit
        engine.dialect.do_commit = self._commit  # type: ignore[method-assign]

    def remove(self) -> None:
        """Stop failing."""
        event.remove(self.engine, "before_cursor_execute", self._before)
        self.engine.dialect.do_commit = self._do_commit  # type: ignore[method-assign]

    def transient(self) -> BaseException:
        """What the driver raises for a lock or serialization conflict."""
        if self.postgres:
            import psycopg

            return psycopg.errors.SerializationFailure("could not serialize access")
        return sqlite3.OperationalError("database is locked")

    def lost(self) -> BaseException:
        """What the driver raises when the connection dropped."""
        if self.postgres:
            import psycopg

            return psycopg.OperationalError("server closed the connection unexpectedly")
        return sqlite3.OperationalError("database is locked")

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.error is not None and statement.lstrip().upper().startswith(WRITES):
            raise self.error()
        if self.down:
            self.failed_before += 1
            raise self.lost()
        if statement.lstrip().upper().startswith(WRITES) and self.rng.random() < self.before:
            self.failed_before += 1
            raise self.transient()

    def _commit(self, dbapi_connection: Any) -> None:
        self._do_commit(dbapi_connection)
        if self.rng.random() < self.after_commit:
            self.failed_after_commit += 1
            raise self.lost()  # the commit landed; the client is told otherwise
