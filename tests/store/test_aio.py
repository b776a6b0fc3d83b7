"""AsyncStore: the same store from asyncio, with every database call off the event loop."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest

from context_manager import Message, StoreError
from context_manager.server.usage import Usage
from context_manager.store import AsyncStore, Store
from context_manager.store.database import Call
from context_manager.tokens import ModalityTokens as M

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback


def test_async_calls_run_in_the_store_thread_in_order(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real_run = Store.run

    def run(self: Store, call: Call, **kwargs: bool) -> object:
        if call.what.startswith("append"):
            threads.append(threading.current_thread().name)
        return real_run(self, call, **kwargs)

    monkeypatch.setattr(Store, "run", run)

    async def main() -> tuple[list[str | None], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick = asyncio.create_task(ticker())
        async with AsyncStore(db_url) as store:
            cid = await store.create_conversation()
            sid = await store.start_session(cid, provider="azure", model="gpt-realtime")
            # Issued together; one worker thread keeps them in the order they were made.
            uids = await asyncio.gather(*(
                store.append(cid, [Message(role="user", text=f"m{n}")], session_id=sid)
                for n in range(30)
            ))  # fmt: skip
            assert await store.server_ids(cid, sid) == {}
            await store.record_server_ids(cid, sid, {uids[0][0]: "item_1"})
            assert await store.server_ids(cid, sid) == {"item_1": uids[0][0]}
            await store.record_usage(cid, Usage(input=M(10), cached=M(5), output=M()))
            assert len(await store.usage(cid)) == 1
            with pytest.raises(StoreError, match="no conversation 'nope'"):
                await store.load("nope")
            texts = [i.text for i in (await store.load(cid)).items]
        tick.cancel()
        return texts, ticks

    texts, ticks = asyncio.run(main())
    assert texts == [f"m{n}" for n in range(30)]
    assert ticks > 0  # the loop kept running while the store worked
    assert len(threads) == 30 and all(t.startswith("context-manager-store") for t in threads)


def test_async_store_keeps_the_store_s_signatures() -> None:
    """The live adapter's recorder calls these: same parameters as `Store`, as coroutines."""
    same = ("create_conversation", "conversations", "start_session", "end_session", "append",
            "update_item", "record_server_ids", "server_ids", "mark", "usage", "load", "seed")  # fmt: skip
    for name in same:
        mine, theirs = getattr(AsyncStore, name), getattr(Store, name)
        assert inspect.iscoroutinefunction(mine), name
        assert (
            inspect.signature(mine).parameters.keys() == inspect.signature(theirs).parameters.keys()
        )
    assert list(inspect.signature(AsyncStore.record_usage).parameters) == [
        "self", "conversation_id", "observed", "kwargs"]  # fmt: skip
    assert list(inspect.signature(AsyncStore.record_compaction).parameters) == [
        "self", "conversation_id", "kwargs"]  # fmt: skip
