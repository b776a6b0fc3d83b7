"""Client events naming an item of an earlier session, after a rollover (`realtime.stale`).

A framework remembers the ids it has seen; after a switch they name nothing on the server.
Real `openai` client, managed connection (raw, as the integrations use it), fake server: the
seed carries the latest turns only, so some items of the first session have a copy in the
second and some have none.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock
from context_manager.realtime import ManagedConnection, RolloverEvent, connect
from context_manager.rollover import RolloverPolicy
from context_manager.testing import FakeRealtimeServer

pytestmark = pytest.mark.network_allowed

LONG = " ".join(["The itinerary covers Lisbon, Porto and the Douro valley by train."] * 40)


def _user(item_id: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "id": item_id,
            "content": [{"type": "input_text", "text": text}]}  # fmt: skip


async def _until(conn: ManagedConnection, kind: str) -> list[Any]:
    """Events up to the first of `kind` (a server event type, or ``"rollover"``)."""
    seen: list[Any] = []
    while True:
        event = await asyncio.wait_for(conn.recv(), 10)
        seen.append(event)
        if isinstance(event, RolloverEvent) and kind == "rollover":
            return seen
        if isinstance(event, dict) and event.get("type") == kind:
            return seen


async def _turn(conn: ManagedConnection, item_id: str, text: str) -> str:
    """A user item and its response; the id of the assistant's reply."""
    await conn.send({"type": "conversation.item.create", "item": _user(item_id, text)})
    await conn.send({"type": "response.create"})
    done = (await _until(conn, "response.done"))[-1]
    return str(done["response"]["output"][0]["id"])


async def _scenario() -> dict[str, Any]:
    engine = ContextEngine("gpt-realtime", clock=ManualClock(),
                           rollover=RolloverPolicy(budget_tokens=300))  # fmt: skip
    out: dict[str, Any] = {}
    async with FakeRealtimeServer(clock=engine.clock) as server:
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(client, model="gpt-realtime", engine=engine, raw=True) as conn:
            old_reply = out["old_reply"] = await _turn(conn, "app_first", LONG)  # no seed room
            out["last_reply"] = await _turn(conn, "app_last", "Book the window seat, please.")
            await server.drop()
            out["rolled"] = [(await _until(conn, "rollover"))[-1].reason]
            new = server.sessions[-1]
            copies = {i["id"]: i for i in new.items}
            out["copy_of_last"] = next(
                i for i, item in copies.items()
                if item.get("role") == "user" and "window seat" in item["content"][0]["text"]
            )  # fmt: skip
            out["first_copied"] = any(
                item.get("role") == "user" and LONG in item["content"][0]["text"]
                for item in copies.values()
            )  # fmt: skip
            before = len(new.received)
            # 1. Placed after the last item the framework knew: after its copy.
            await conn.send({"type": "conversation.item.create", "previous_item_id": "app_last",
                             "item": _user("app_next", "And a taxi.")})  # fmt: skip
            added = (await _until(conn, "conversation.item.added"))[-1]
            out["placed_after"] = added["previous_item_id"]
            # 2. Placed after an item with no copy: last.
            out["tail"] = new.items[-1]["id"]
            await conn.send({"type": "conversation.item.create", "previous_item_id": "app_first",
                             "item": _user("app_more", "Two bags.")})  # fmt: skip
            added = (await _until(conn, "conversation.item.added"))[-1]
            out["placed_last_after"] = added["previous_item_id"]
            # 3. A delete and a truncate of items the new session does not hold: answered here.
            await conn.send({"type": "conversation.item.delete", "item_id": "app_first"})
            out["deleted"] = (await _until(conn, "conversation.item.deleted"))[-1]
            await conn.send({"type": "conversation.item.truncate", "item_id": old_reply,
                             "content_index": 0, "audio_end_ms": 640})  # fmt: skip
            out["truncated"] = (await _until(conn, "conversation.item.truncated"))[-1]
            # 4. A delete of an item the call never had goes to the server, which refuses it.
            await conn.send({"type": "conversation.item.delete", "item_id": "no_such_item"})
            out["refused"] = (await _until(conn, "error"))[-1]["error"]["code"]
            sent = new.received[before:]
            out["server_got"] = [(e["type"], e.get("previous_item_id"), e.get("item_id"))
                                 for e in sent]  # fmt: skip
        await client.close()
    return out


def test_ids_of_an_earlier_session_are_said_again_for_the_new_one() -> None:
    out = asyncio.run(_scenario())
    assert out["rolled"] == ["disconnected"]
    assert not out["first_copied"]  # the long turn did not fit the 300-token seed
    copy = out["copy_of_last"]
    assert copy.startswith("seed")
    # The server placed it after the copy; the application is told "after app_last", the
    # id it knows that item by.
    assert out["placed_after"] == "app_last"
    # With no copy to place it after, the item went last: after the copy of the first
    # session's last reply, which the application knows by that reply's first id.
    assert out["tail"].startswith("seed")
    assert out["placed_last_after"] == out["last_reply"]
    assert out["deleted"]["item_id"] == "app_first"
    truncated = out["truncated"]
    assert (truncated["item_id"], truncated["audio_end_ms"]) == (out["old_reply"], 640)
    assert out["refused"] == "item_not_found"
    # The server got the two creates (restated) and the unknown delete, nothing else.
    assert out["server_got"] == [
        ("conversation.item.create", copy, None),
        ("conversation.item.create", None, None),
        ("conversation.item.delete", None, "no_such_item"),
    ]
