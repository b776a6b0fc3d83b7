"""Transient failures: retried with backoff, kept in memory by AsyncStore, never doubled.

Faults are injected with the driver's own exceptions (`inject.Faults`), seeded, before write
statements (nothing stored) and after commits (stored, but the client is told it failed).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from context_manager import Message, StoreError
from context_manager.live.records import (
    Compacted,
    ItemChanged,
    ItemStored,
    ItemsTruncated,
    Record,
    ResponseOutcome,
    SeedLinked,
    SessionEnded,
    SessionStarted,
)
from context_manager.server import Cost
from context_manager.server.usage import Usage
from context_manager.store import AsyncStore, Store
from context_manager.store.recorder import Recorder
from context_manager.tokens import ModalityTokens as M

from .inject import Faults

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback


def usage(n: int) -> Usage:
    return Usage(input=M(100 + n, 10), cached=M(64), output=M(n, 2 * n))


def test_a_store_retries_transient_failures_and_stores_each_write_exactly_once(
    db_url: str,
) -> None:
    store = Store(db_url, retry_seconds=5.0)
    cid = store.create_conversation()
    sid = store.start_session(cid, provider="azure", model="gpt-realtime")
    faults = Faults(store.engine, seed=7, before=0.1, after_commit=0.05)
    uids = []
    for n in range(100):
        uids += store.append(cid, [Message(role="user", text=f"m{n}", id=f"item_{n}")],
                             session_id=sid)  # fmt: skip
        store.record_usage(cid, usage(n), session_id=sid, response_id=f"r{n}", cost_usd=n / 1e4)
    faults.remove()
    assert faults.failed_before > 10 and faults.failed_after_commit > 5  # the seed's faults
    assert [i.text for i in store.load(cid).items] == [f"m{n}" for n in range(100)]
    assert store.server_ids(cid, sid) == {f"item_{n}": u for n, u in enumerate(uids)}
    rows = store.usage(cid)
    assert [r["response_id"] for r in rows] == [f"r{n}" for n in range(100)]
    assert [r["output_text"] for r in rows] == list(range(100))
    store.close()


def test_a_dropped_pooled_connection_is_replaced_before_use(db_url: str) -> None:
    """pool_pre_ping: a server restart between calls costs no write."""
    store = Store(db_url, retry_seconds=0)  # no retries: the pre-ping alone must do it
    cid = store.create_conversation()
    with store.engine.connect() as c:
        if store.engine.dialect.name == "postgresql":  # the server ends every other backend
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE pid <> pg_backend_pid() AND datname = current_database()"))  # fmt: skip
        pooled = c.connection.dbapi_connection
    if store.engine.dialect.name == "sqlite":
        assert pooled is not None
        pooled.close()  # the connection dies while it waits in the pool
    store.append(cid, [Message(role="user", text="after the restart")])
    assert [i.text for i in store.load(cid).items] == ["after the restart"]
    store.close()


def test_a_connection_lost_in_the_middle_of_a_write_is_retried_on_a_new_one(db_url: str) -> None:
    """A server restart mid-call: the connection dies between two statements of a write."""
    store = Store(db_url)
    cid = store.create_conversation()
    sid = store.start_session(cid, provider="azure", model="gpt-realtime")
    killed = []

    def kill(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO items") and not killed:
            killed.append(statement)
            if store.engine.dialect.name == "postgresql":
                pid = conn.connection.dbapi_connection.info.backend_pid
                with admin.connect() as c:
                    c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            else:
                conn.connection.dbapi_connection.close()

    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    event.listen(store.engine, "before_cursor_execute", kill)
    uids = store.append(cid, [Message(role="user", text="survives", id="item_1")],
                        session_id=sid)  # fmt: skip
    assert killed and [i.text for i in store.load(cid).items] == ["survives"]
    assert store.server_ids(cid, sid) == {"item_1": uids[0]}
    admin.dispose()
    store.close()


def _call(turns: int) -> list[Record]:
    """An engine's records for a call of `turns` turns over two sessions."""
    out: list[Record] = [SessionStarted(session=0, server_session_id="s0", model=None)]
    session = 0
    for n in range(turns):
        if n == turns // 2:
            out += [SessionEnded(session=0, reason="rollover"),
                    SessionStarted(session=1, server_session_id="s1", model=None),
                    SeedLinked(session=1, server_ids={"k0": "seeded_0", "k1": "seeded_1"})]  # fmt: skip
            session = 1
        item = Message(role="user", text=f"turn {n}", id=f"item_{n}")
        out.append(ItemStored(key=f"k{n}", item=item, session=session))
        if n % 7 == 3:
            out.append(ItemChanged(key=f"k{n}", item=Message(role="user", text=f"turn {n}!")))
        if n % 11 == 5:
            out.append(ItemsTruncated(keys=(f"k{n - 5}",)))
        if n % 13 == 12:
            out.append(Compacted(keys=(f"k{n - 12}", f"k{n - 11}"), summary=f"summary {n}",
                                 strategy="rolling-summary", session=session,
                                 tokens_before=900, tokens_after=300))  # fmt: skip
        u = usage(n)
        out.append(ResponseOutcome(
            session=session, response=n, response_id=f"r{n}", status="completed",
            predicted=u, observed=u, predicted_cost=Cost(), observed_cost=Cost(audio=n / 1e4),
            compared=True,
        ))  # fmt: skip
    return out


def test_an_async_store_keeps_what_fails_and_writes_it_in_order_exactly_once(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The live adapter's path (Recorder -> AsyncStore) with 10% of writes failing.

    With no retries in the store itself, every failure is kept in memory and written again
    before later writes; commits that landed but reported a failure are not written twice.
    """
    caplog.set_level(logging.INFO, logger="context_manager")
    records = _call(60)

    async def main() -> tuple[str, int, Faults]:
        async with AsyncStore(db_url, retry_seconds=0) as store:
            cid = await store.create_conversation()
            assert store._store is not None
            faults = Faults(store._store.engine, seed=11, before=0.1, after_commit=0.05)
            recorder = Recorder(store, cid, provider="azure", model="gpt-realtime")
            most = 0
            for record in records:
                await recorder.write(record)
                most = max(most, store.pending)
            await store.flush()
            assert store.pending == 0
            faults.remove()
        return cid, most, faults

    cid, most, faults = asyncio.run(main())
    assert most > 0 and faults.failed_before > 5 and faults.failed_after_commit > 2
    assert "keeping store writes in memory" in caplog.text
    store = Store(db_url)
    loaded = store.load(cid)
    expected = [f"turn {n}" + ("!" if n % 7 == 3 else "") for n in range(60)]
    compacted = {n - k for n in range(60) if n % 13 == 12 for k in (12, 11)}
    assert [i.text for i in loaded.items] == [t for n, t in enumerate(expected)
                                              if n not in compacted]  # fmt: skip
    assert loaded.summary == "summary 51"
    rows = store.usage(cid)
    assert [r["response_id"] for r in rows] == [f"r{n}" for n in range(60)]
    with store.engine.connect() as c:
        sessions = c.execute(text("SELECT id, end_reason FROM sessions ORDER BY id")).all()
        assert [tuple(r)[1] for r in sessions] == ["rollover", None]
        by_session = c.execute(text("SELECT session_id, count(*) FROM usage GROUP BY session_id"
                                    " ORDER BY session_id")).all()  # fmt: skip
        assert [tuple(r) for r in by_session] == [(sessions[0][0], 30), (sessions[1][0], 30)]
        assert c.execute(text("SELECT count(*) FROM compactions")).scalar() == 4
    second = store.server_ids(cid, sessions[1][0])
    assert (second["seeded_0"], second["seeded_1"], second["item_59"]) == ("k0", "k1", "k59")
    store.close()


def test_an_outage_is_bridged_with_provisional_ids_and_a_bounded_queue(db_url: str) -> None:
    async def main() -> None:
        async with AsyncStore(db_url, retry_seconds=0, max_pending=4) as store:
            cid = await store.create_conversation()
            assert store._store is not None
            faults = Faults(store._store.engine, down=True)
            sid = await store.start_session(cid, provider="openai", model="gpt-realtime")
            assert sid < 0  # provisional: the session is not stored yet
            uids = await store.append(cid, [Message(role="user", text="hi", id="item_1")],
                                      session_id=sid)  # fmt: skip
            await store.record_usage(cid, usage(1), session_id=sid, response_id="r1")
            await store.end_session(sid, "expired")
            assert store.pending == 4
            with pytest.raises(StoreError) as full:
                await store.record_usage(cid, usage(2), session_id=sid)
            assert (full.value.reason, full.value.pending, full.value.transient) == (
                "pending", 4, True)  # fmt: skip
            assert "4 writes are waiting for the database" in str(full.value)
            with pytest.raises(StoreError, match="a read now would miss them") as read:
                await store.load(cid)
            assert read.value.reason == "pending" and store.pending == 4
            with pytest.raises(StoreError, match="must be finite"):  # refused at once, not kept
                await store.record_usage(cid, usage(3), cost_usd=float("nan"))
            faults.down = False
            loaded = await store.load(cid)  # writes what is kept first
            assert store.pending == 0 and [i.id for i in loaded.items] == uids
            assert await store.server_ids(cid, sid) == {"item_1": uids[0]}  # the alias holds
            rows = await store.usage(cid)
            assert [r["response_id"] for r in rows] == ["r1"] and rows[0]["session_id"] > 0
            faults.remove()

    asyncio.run(main())


def test_closing_with_writes_still_kept_says_how_many_are_lost(db_url: str) -> None:
    async def main() -> None:
        store = AsyncStore(db_url, retry_seconds=0, flush_seconds=0.3)
        cid = await store.create_conversation()
        assert store._store is not None
        Faults(store._store.engine, down=True)
        await store.append(cid, [Message(role="user", text="one")])
        await store.append(cid, [Message(role="user", text="two")])
        with pytest.raises(StoreError) as err:
            await store.close()
        assert err.value.pending == 2 and "closed with 2 writes never stored" in str(err.value)
        assert "\n" not in str(err.value)

    asyncio.run(main())


def test_a_store_gives_up_on_a_lasting_outage_with_a_transient_error(db_url: str) -> None:
    store = Store(db_url, retry_seconds=0.2)
    cid = store.create_conversation()
    Faults(store.engine, down=True)
    with pytest.raises(StoreError) as err:
        store.append(cid, [Message(role="user", text="x")])
    assert err.value.transient and err.value.reason in {"busy", "unavailable"}
    assert "tried" in str(err.value) and "\n" not in str(err.value)
    store.close()
