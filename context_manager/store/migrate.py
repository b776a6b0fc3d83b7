"""Schema migrations (Alembic), safe to run from several processes at once.

A migration holds a database-wide lock for its whole transaction: on PostgreSQL a
transaction-level advisory lock (``pg_advisory_xact_lock``), taken before Alembic looks at the
schema; on SQLite the write lock, taken when the transaction begins (``BEGIN IMMEDIATE``; SQLite
DDL is transactional). So when several processes migrate a new database at once (four
``context-manager db upgrade`` runs, four `Store` constructors), one creates the schema and the
others wait for it, then find it done. A downgrade that would lose data refuses to run (see the
revisions); every failure is a one-line `StoreError`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from ..errors import StoreError
from .database import DEFAULT_URL, Call, Runner, is_database_error, make_engine, shown

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATION_LOCK", "downgrade", "upgrade"]

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x636F6E746578746D  # "contextm": the PostgreSQL advisory lock's key
"""The key of the PostgreSQL advisory lock every migration holds."""

_ATTEMPTS = 8


def upgrade(url: str = DEFAULT_URL, revision: str = "head") -> str:
    """Migrate the database at `url` to `revision` (Alembic; creates the schema the first time).

    Returns the URL with its password hidden, for messages.

    Raises:
        StoreError: the database cannot be reached or migrated, or `revision` is unknown.
    """
    return _migrate(url, revision, down=False)


def downgrade(url: str, revision: str) -> str:
    """Migrate the database at `url` back to `revision` (``base``: drop the empty tables).

    Raises:
        StoreError: as `upgrade`, and when a step would lose data (reason ``schema``): a
            revision whose tables cannot hold what is stored refuses to go back.
    """
    return _migrate(url, revision, down=True)


def _migrate(url: str, revision: str, *, down: bool) -> str:
    from alembic import command
    from alembic.config import Config

    engine = make_engine(url, foreign_keys=False)
    where = shown(engine)
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    run = command.downgrade if down else command.upgrade

    def work(connection: Connection) -> None:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        try:
            run(config, revision)
        except StoreError:
            raise
        except Exception as exc:
            if is_database_error(exc):
                raise
            raise _bad_revision(config, where, revision, exc) from None

    # Only lock waits are retried (SQLite's wait 30 s each): an unreachable server is reported
    # at once.
    runner = Runner(engine, retry_seconds=0)
    step = Call(f"migrate {where} to {revision!r}", work)
    try:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                runner.run(step)
                break
            except StoreError as exc:
                if exc.reason != "busy" or attempt == _ATTEMPTS:
                    raise _plain(exc, step.what) from None
                log.info("%s: waiting for another migration", step.what)
                # SQLite may refuse at once, without its busy wait (switching a new file to
                # WAL, or upgrading a read to a write): back off, so racing processes spread.
                time.sleep(min(0.05 * 2**attempt, 2.0) * (1 + os.getpid() % 7 / 7))
    finally:
        engine.dispose()
    return where


def _plain(exc: StoreError, what: str) -> StoreError:
    """`exc` without the ``could not migrate ...:`` prefix when it names the database already."""
    message = str(exc).removeprefix(f"could not {what}: ")
    return StoreError(message, reason=exc.reason, transient=exc.transient)


def _bad_revision(config: Config, where: str, revision: str, exc: Exception) -> StoreError:
    from alembic.script import ScriptDirectory

    known = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]
    detail = str(exc).strip().split("\n")[0] or "no such revision"
    return StoreError(
        f"cannot migrate {where} to revision {revision!r}: {detail}"
        f" (revisions: base, {', '.join(reversed(known))}, head)",
        reason="schema",
    )
