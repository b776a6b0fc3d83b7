"""An error answering one of the adapter's own client events is not the application's.

The adapter names its events (``cm_…`` event ids); the server's refusal of one is fed to the
engine and kept from the application, which did not send it (Pipecat, for one, ends its
receive loop on any error it is given). The application's own refusals still reach it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock
from context_manager.realtime import connect
from context_manager.testing import FakeRealtimeServer

pytestmark = pytest.mark.network_allowed


async def _scenario() -> tuple[list[Any], list[Any], list[str]]:
    engine = ContextEngine("gpt-realtime", clock=ManualClock())
    async with FakeRealtimeServer(clock=engine.clock) as server:
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(client, model="gpt-realtime", engine=engine, raw=True) as conn:
            assert conn._conn is not None
            # One of the adapter's own (as a compaction's delete is sent), then the app's.
            await conn._send_all(
                conn._conn, [{"type": "conversation.item.delete", "item_id": "gone"}]
            )
            await conn.send({"type": "conversation.item.delete", "item_id": "also_gone"})
            seen: list[Any] = []
            while not any(isinstance(e, dict) and e.get("type") == "error" for e in seen):
                seen.append(await asyncio.wait_for(conn.recv(), 10))
            ids = [e.get("event_id") for e in server.sessions[-1].received
                   if e["type"] == "conversation.item.delete"]  # fmt: skip
        await client.close()
    return seen, list(engine.errors), ids


def test_the_adapter_s_refused_event_is_kept_from_the_application() -> None:
    seen, engine_errors, ids = asyncio.run(_scenario())
    errors = [e["error"] for e in seen if isinstance(e, dict) and e.get("type") == "error"]
    assert str(ids[0]).startswith("cm_") and ids[1] is None  # the app named none
    # The application is told of its own refused delete only; the engine saw both.
    assert [(e["code"], e.get("event_id")) for e in errors] == [("item_not_found", None)]
    assert [e.get("event_id") for e in engine_errors] == ids
