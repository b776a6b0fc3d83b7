"""Every failure is a one-line StoreError naming the problem, with no SQL and no conversation text."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from context_manager import Message, StoreError
from context_manager.cli import main
from context_manager.server.usage import Usage
from context_manager.store import AsyncStore, Store, upgrade
from context_manager.tokens import ModalityTokens as M

from .conftest import PG_URL
from .inject import Faults

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback

SECRET = "Zanzibar quokka 4471 passport"  # conversation text that must never leave the store


def one_line(exc: StoreError) -> str:
    message = str(exc)
    assert "\n" not in message
    assert not any(word in message for word in ("SELECT", "INSERT", "UPDATE", "[SQL", "sqlalche"))
    return message


def test_an_unknown_session_or_conversation_is_named_at_once(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation("c1")
    other = store.create_conversation("c2")
    sid = store.start_session(other, provider="openai", model="gpt-realtime")
    hello = [Message(role="user", text="hello")]
    start = time.monotonic()
    with pytest.raises(StoreError, match="no session 99 in Store") as err:
        store.append(cid, hello, session_id=99)
    assert err.value.reason == "not_found" and time.monotonic() - start < 0.5  # no retries
    with pytest.raises(StoreError, match="session .* is not a session of conversation 'c1'"):
        store.append(cid, hello, session_id=sid)
    usage = Usage(input=M(5), cached=M(), output=M())
    for call in (
        lambda: store.record_usage(cid, usage, session_id=99),
        lambda: store.record_compaction(cid, covers=[], summary=None, strategy="x",
                                        session_id=99),
        lambda: store.record_server_ids(cid, 99, {}),
        lambda: store.end_session(99, "closed"),
    ):  # fmt: skip
        with pytest.raises(StoreError, match="no session 99") as err:
            call()
        assert err.value.reason == "not_found"
    (uid,) = store.append(cid, hello)
    with pytest.raises(StoreError, match="uids must be new and unique: one is taken") as err:
        store.append(cid, hello, uids=[uid])
    assert err.value.reason == "conflict"
    with pytest.raises(StoreError, match="no conversation 'nope'") as err:
        store.record_usage("nope", usage)
    assert err.value.reason == "not_found" and len(store.load(cid).items) == 1
    store.close()


def test_an_unreachable_server_is_named_and_transient() -> None:
    with pytest.raises(StoreError) as err:
        Store("postgresql+psycopg://agent:pw@127.0.0.1:9/calls")
    assert one_line(err.value).startswith(
        "cannot reach postgresql+psycopg://agent:***@127.0.0.1:9/calls: connection refused"
    )
    assert (err.value.reason, err.value.transient) == ("unavailable", True)


@pytest.mark.skipif(not PG_URL, reason="needs CONTEXT_MANAGER_TEST_PG_URL")
def test_a_missing_postgres_database_is_refused() -> None:
    from sqlalchemy import make_url

    assert PG_URL is not None
    url = make_url(PG_URL).set(database="cm_no_such_database").render_as_string(False)
    with pytest.raises(StoreError, match="refused the connection: no such database") as err:
        Store(url)
    assert (err.value.reason, err.value.transient) == ("refused", False)


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError, match="notes.db: the file is not a SQLite database") as err:
        Store(f"sqlite:///{path}")
    assert err.value.reason == "not_a_database"
    one_line(err.value)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open sqlite:///.*/missing/x.db: the file") as err:
        Store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    assert err.value.reason == "unavailable" and not err.value.transient


def test_a_read_only_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    Store(f"sqlite:///{path}").create_conversation("c")
    store = Store(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(StoreError, match="could not append 1 item to 'c': .* read-only") as err:
        store.append("c", [Message(role="user", text=SECRET)])
    assert err.value.reason == "read_only" and SECRET not in str(err.value)
    assert store.load("c").items == ()  # reading still works
    store.close()


def test_a_full_disk_is_named(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    if store.engine.dialect.name == "sqlite":  # the file may not grow: SQLite reports it full

        @event.listens_for(store.engine, "connect")
        def cap(dbapi_connection: Any, _record: Any) -> None:
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

        store.engine.dispose()
    else:  # what PostgreSQL raises when it cannot extend a file
        import psycopg

        Faults(store.engine, error=lambda: psycopg.errors.DiskFull("could not extend file"))
    with pytest.raises(StoreError, match="out of space|is full") as err:
        store.append(cid, [Message(role="user", text=SECRET * 2000)])
    assert (err.value.reason, err.value.transient) == ("disk_full", False)
    assert SECRET not in str(err.value)
    store.close()


@pytest.mark.parametrize("revision", ["head+1", "", "nope", "0001:0002"])
def test_an_unknown_revision_is_a_store_error(db_url: str, revision: str) -> None:
    expected = f"cannot migrate .* to revision {re.escape(repr(revision))}: "
    with pytest.raises(StoreError, match=expected) as err:
        upgrade(db_url, revision)
    assert err.value.reason == "schema"
    assert "revisions: base, 0001, 0002, 0003, 0004, 0005, 0006, head" in one_line(err.value)


def test_db_upgrade_to_a_bad_revision_prints_one_line(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["db", "upgrade", "--url", db_url, "--revision", "head+1"])
    err = capsys.readouterr().err
    assert err.startswith("error: cannot migrate ") and err.count("\n") == 1


def test_no_conversation_text_reaches_logs_or_errors(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A distinctive text written through failing stores: refused values, a database error
    whose driver message quotes the statement's values, and writes an AsyncStore keeps."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    store = Store(db_url, retry_seconds=0.1)
    cid = store.create_conversation()
    for call in (
        lambda: store.create_conversation(title=SECRET * 20),  # too long
        lambda: store.record_compaction(cid, covers=[], summary=SECRET + "\x00", strategy="x"),
        lambda: store.start_session(cid, provider=SECRET * 3, model="m"),
    ):
        with pytest.raises(StoreError) as err:
            call()
        errors.append(err.value)

    def quoting() -> BaseException:  # as PostgreSQL's "unnamed portal parameter $1 = '...'"
        if store.engine.dialect.name == "postgresql":
            import psycopg

            return psycopg.errors.SerializationFailure(f"conflict; parameter $1 = '{SECRET}'")
        return sqlite3.OperationalError(f"database is locked ('{SECRET}')")

    faults = Faults(store.engine, error=quoting)
    with pytest.raises(StoreError) as err:
        store.append(cid, [Message(role="user", text=SECRET)])
    errors.append(err.value)
    faults.remove()
    store.close()

    async def kept() -> None:
        async with AsyncStore(db_url, retry_seconds=0, flush_seconds=0.1) as aio:
            assert aio._store is not None
            Faults(aio._store.engine, error=quoting)
            await aio.append(cid, [Message(role="user", text=SECRET)])  # kept, logged
            assert aio.pending == 1

    with pytest.raises(StoreError) as err:
        asyncio.run(kept())
    errors.append(err.value)
    for exc in errors:
        one_line(exc)  # type: ignore[arg-type]
        assert SECRET not in "".join(traceback.format_exception(exc))
    assert "keeping store writes in memory" in caplog.text
    assert SECRET not in caplog.text
