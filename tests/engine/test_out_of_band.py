"""Out-of-band responses (``conversation: "none"``) cost money: the engine predicts and prices
them and the store keeps their usage rows, marked, with the response's metadata (real `openai` client,
managed connection, fake server, SQLite)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock
from context_manager.realtime import connect
from context_manager.store import AsyncStore, Store
from context_manager.testing import FakeRealtimeServer

pytestmark = pytest.mark.network_allowed


async def _call(db: str) -> tuple[ContextEngine, str]:
    engine = ContextEngine("gpt-realtime", clock=ManualClock())
    async with FakeRealtimeServer(clock=engine.clock) as server, AsyncStore(db) as store:
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(client, model="gpt-realtime", engine=engine, store=store) as conn:
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "Is my order late?"}]})  # fmt: skip
            for response in (
                {},
                {"conversation": "none", "output_modalities": ["text"],
                 "instructions": "Classify the caller's mood in one word.",
                 "metadata": {"purpose": "mood"}},
            ):  # fmt: skip
                await conn.response.create(response=response)  # type: ignore[arg-type]
                while (await conn.recv()).type != "response.done":
                    pass
            await conn.flush()
            cid = conn.conversation_id
        await client.close()
    assert cid is not None
    return engine, cid


def test_out_of_band_usage_is_priced_and_stored_marked(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    engine, cid = asyncio.run(_call(db))
    store = Store(db)
    try:
        rows: list[dict[str, Any]] = store.usage(cid)
    finally:
        store.close()
    assert [r["out_of_band"] for r in rows] == [False, True]
    assert [r["response_metadata"] for r in rows] == [None, {"purpose": "mood"}]
    oob = rows[1]
    assert oob["input_text"] > 0 and oob["cost_usd"] > 0
    # Predicted by the same request model as any other (its own instructions, the whole
    # conversation), exactly what the fake server reports; always counted in the cost.
    assert oob["predicted_input_text"] == oob["input_text"]
    assert engine.responses == 2
    assert engine.total_cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-12)
