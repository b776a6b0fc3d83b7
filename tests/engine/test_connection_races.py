"""The adapter when two of the application's tasks meet it at once, and at its close.

An application that reads in one task and sends in another (the usual shape of a voice
agent) can cancel its reader, find a drop from both sides at once, or close while a response
is still coming: real `openai` client, managed connection, fake server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock
from context_manager.realtime import ManagedConnection, connect
from context_manager.server import Usage, price
from context_manager.store import AsyncStore, Store
from context_manager.testing import FakeRealtimeServer

pytestmark = pytest.mark.network_allowed

USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello?"}]}


async def _reader(conn: ManagedConnection, into: list[Any]) -> None:
    async for event in conn:
        into.append(event)


def test_cancelling_the_reading_task_ends_it_every_time() -> None:
    """The cancel lands whatever the reader was doing (a frame arriving, an idle poll)."""

    async def main() -> list[bool]:
        engine = ContextEngine("gpt-realtime", clock=ManualClock())
        ended = []
        async with FakeRealtimeServer(clock=engine.clock) as server:
            client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
            async with connect(client, model="gpt-realtime", engine=engine) as conn:
                for n in range(30):
                    events: list[Any] = []
                    reader = asyncio.create_task(_reader(conn, events))
                    await conn.conversation.item.create(item=USER)  # type: ignore[arg-type]
                    await conn.response.create()
                    for _ in range(n % 7):  # cancel at a different point of the stream
                        await asyncio.sleep(0)
                    reader.cancel()
                    done, _ = await asyncio.wait({reader}, timeout=5)
                    ended.append(reader in done and reader.cancelled())
            await client.close()
        return ended

    assert all(asyncio.run(main()))


def test_a_drop_found_by_the_reader_and_a_sender_at_once_switches_once() -> None:
    """One new session; the application's session update, sent into the dead socket, is
    made again there and answered."""

    async def main() -> tuple[list[str], int, Any]:
        engine = ContextEngine("gpt-realtime", clock=ManualClock())
        async with FakeRealtimeServer(clock=engine.clock) as server:
            client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
            async with connect(client, model="gpt-realtime", engine=engine) as conn:
                events: list[Any] = []
                reader = asyncio.create_task(_reader(conn, events))
                await server.drop()
                await conn.session.update(session={"type": "realtime", "audio": {  # type: ignore[typeddict-item]
                    "input": {"turn_detection": None}}})  # fmt: skip
                for _ in range(500):
                    if any(e.type == "session.updated" for e in events):
                        break
                    await asyncio.sleep(0.01)
                reader.cancel()
                kinds = [e.type for e in events]
                detection = server.sessions[-1].session["audio"]["input"]["turn_detection"]
                sessions = len(server.sessions)
            await client.close()
        return kinds, sessions, detection

    kinds, sessions, detection = asyncio.run(main())
    assert kinds.count("context_manager.rollover") == 1
    assert "session.updated" in kinds[kinds.index("context_manager.rollover") :]
    assert sessions == 2
    assert detection is None


def test_close_waits_for_a_response_on_its_way_and_counts_it(tmp_path: Path) -> None:
    """A response asked for just before the close is billed: its usage is read and stored."""
    db = f"sqlite:///{tmp_path / 'call.db'}"

    async def main() -> tuple[float, float, str]:
        engine = ContextEngine("gpt-realtime", clock=ManualClock())
        async with FakeRealtimeServer(clock=engine.clock) as server, AsyncStore(db) as store:
            client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
            async with connect(client, model="gpt-realtime", engine=engine, store=store) as conn:
                await conn.conversation.item.create(item=USER)  # type: ignore[arg-type]
                await conn.response.create(response={  # type: ignore[typeddict-item]
                    "conversation": "none", "output_modalities": ["text"]})  # fmt: skip
                cid = conn.conversation_id
            await client.close()
            billed = sum(
                price(Usage.from_dict(e["response"]["usage"]), engine.profile.prices_per_million).total
                for s in server.sessions
                for e in s.sent
                if e["type"] == "response.done"
            )  # fmt: skip
        assert cid is not None
        return engine.total_cost_usd, billed, cid

    total, billed, cid = asyncio.run(main())
    store = Store(db)
    try:
        rows = store.usage(cid)
    finally:
        store.close()
    assert billed > 0
    assert total == pytest.approx(billed, abs=1e-12)
    assert [r["out_of_band"] for r in rows] == [True]
