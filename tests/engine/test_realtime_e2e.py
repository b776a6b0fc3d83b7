"""End to end: the real `openai` client, the managed connection, the fake server, a real store.

A call longer than the provider's session maximum, on a virtual clock: the engine rolls over
before every cut, seeds each new session within budget, compacts when the window fills, and
the store ends up with every item of the call once and every response's usage with its
prediction. A second call loses its connection mid-session and resumes from the store.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from openai import AsyncOpenAI
from sqlalchemy import create_engine, select

from context_manager import Message
from context_manager.compaction import RollingSummary
from context_manager.items import FunctionCallOutput, Item
from context_manager.live import ContextEngine
from context_manager.realtime import ManagedConnection, connect
from context_manager.rollover import RolloverPolicy
from context_manager.server import ManualClock
from context_manager.store import AsyncStore, Store
from context_manager.store.models import ItemRow
from context_manager.testing import FakeRealtimeServer, Reply

pytestmark = pytest.mark.network_allowed

INSTRUCTIONS = "You are a travel agent on the phone. Keep answers short and warm."
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Look up the weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
SEED = RolloverPolicy(budget_tokens=3000, carry="summary", summary_tokens=800)


def responder(items: Sequence[Item]) -> Reply:
    """Speaks back about the latest user turn; asks the weather tool when the user asks."""
    last = items[-1] if items else None
    if isinstance(last, FunctionCallOutput):
        return Reply.speech(f"The forecast says {last.output}. Anything else for the trip?")
    user = next((i for i in reversed(items) if isinstance(i, Message) and i.role == "user"), None)
    text = user.text if user is not None else ""
    if "weather" in text:
        return Reply.call("get_weather", {"city": "Oslo"})
    words = text.split()[:14]
    return Reply.speech("Noted, " + " ".join(words) + ". I have added that to your trip plan.")


def user_text(turn: int) -> str:
    if turn % 25 == 7:
        return f"Turn {turn}: what will the weather be like when we land?"
    return (
        f"Turn {turn}: for booking K{turn:03d} please remember that traveller number {turn % 9}"
        f" prefers an aisle seat, vegetarian meals, a quiet room away from the lift, and a late"
        f" checkout on day {turn % 28 + 1}; also note the budget of {400 + turn} euros per night."
    )


@dataclass
class Call:
    """What the application saw."""

    texts: list[str] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    responses: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    rollovers: list[Any] = field(default_factory=list)
    rollover_times: list[float] = field(default_factory=list)
    clock: ManualClock = field(default_factory=ManualClock)


async def _turn(conn: ManagedConnection, call: Call, text: str) -> None:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    call.texts.append(text)
    await conn.response.create()
    while True:
        event = await conn.recv()
        if event.type == "context_manager.rollover":
            call.rollovers.append(event)
            call.rollover_times.append(call.clock.now)
        elif event.type == "error":
            call.errors.append(event.error.model_dump())
        elif event.type == "response.done":
            call.responses += 1
            outputs = event.response.output or []
            for output in outputs:
                if output.type == "message":
                    call.transcripts.extend(
                        c.transcript or c.text or "" for c in output.content or []
                    )
            calls = [o for o in outputs if o.type == "function_call"]
            if not calls:
                return
            for fc in calls:
                await conn.conversation.item.create(
                    item={
                        "type": "function_call_output",
                        "call_id": fc.call_id,
                        "output": json.dumps({"city": "Oslo", "sky": "clear", "high_c": 21}),
                    }
                )
            await conn.response.create()


async def _run_call(
    db_url: str, *, provider: str, minutes: float, drop_at_minute: float | None = None
) -> tuple[Call, ContextEngine, FakeRealtimeServer, str]:
    clock = ManualClock()
    engine = ContextEngine(
        "gpt-realtime",
        provider,
        compaction=RollingSummary(trigger=0.3, keep=6, budget=600),
        rollover=SEED,
        rollover_margin_seconds=120,
        clock=clock,
    )
    call = Call(clock=clock)
    async with (
        # Expiry shows at a session's next event, not on a real-time poll: the call's clock is
        # virtual (a turn of 9 s passes in milliseconds), so a poll would expire an old
        # session in the moment its socket is being closed after a rollover.
        FakeRealtimeServer(
            provider=provider, clock=clock, responder=responder, expiry_poll_seconds=None
        ) as server,
        AsyncStore(db_url) as store,
    ):
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(client, model="gpt-realtime", engine=engine, store=store) as conn:
            await conn.session.update(
                session={"type": "realtime", "instructions": INSTRUCTIONS, "tools": TOOLS}
            )
            while (await conn.recv()).type != "session.updated":
                pass
            turn = 0
            dropped = False
            while clock.now < minutes * 60:
                if drop_at_minute is not None and not dropped and clock.now >= drop_at_minute * 60:
                    await server.drop()
                    dropped = True
                clock.advance(9.0)  # the user speaks, then waits for the answer
                await _turn(conn, call, user_text(turn))
                turn += 1
            await conn.flush()
            cid = conn.conversation_id
            assert cid is not None
        await client.close()
    return call, engine, server, cid


def _stored_rows(db_url: str, cid: str) -> list[tuple[dict[str, Any], str]]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(
            select(ItemRow.content, ItemRow.status)
            .where(ItemRow.conversation_id == cid)
            .order_by(ItemRow.position)
        ).all()
    engine.dispose()
    return [(dict(r.content), r.status) for r in rows]


def _check_store(
    db_url: str, cid: str, call: Call, engine: ContextEngine, *, compacted: bool = True
) -> list[dict[str, Any]]:
    rows = _stored_rows(db_url, cid)
    user = Counter(c.get("text") for c, _ in rows if c.get("role") == "user")
    assistant = Counter(c.get("text") for c, _ in rows if c.get("role") == "assistant")
    assert all(user[t] == 1 for t in call.texts), "every user item stored exactly once"
    assert sum(user.values()) == len(call.texts)
    extra, lost = assistant - Counter(call.transcripts), Counter(call.transcripts) - assistant
    assert not extra, f"stored more than once: {list(extra.items())[:3]}"
    assert not lost, f"never stored: {list(lost.items())[:3]}"
    assert ("compacted" in {s for _, s in rows}) == compacted
    store = Store(db_url)
    try:
        usage = store.usage(cid)
    finally:
        store.close()
    assert len(usage) == call.responses == engine.responses
    assert all(u["predicted_input_text"] is not None for u in usage)
    assert sum(u["cost_usd"] for u in usage) == pytest.approx(engine.total_cost_usd)
    return usage


def _check_seed(server: FakeRealtimeServer, index: int, texts: Sequence[str]) -> None:
    session = server.sessions[index]
    creates = [e for e in session.received if e["type"] == "conversation.item.create"]
    update = next(e for e in session.received if e["type"] == "session.update")
    assert update["session"].get("instructions") == INSTRUCTIONS, update
    assert [t["name"] for t in update["session"]["tools"]] == ["get_weather"]
    seeded = [c for c in creates if str(c["item"].get("id", "")).startswith(("seed", "summary_"))]
    assert seeded[0]["item"]["role"] == "system", "the summary comes first"
    assert seeded[0]["item"]["content"][0]["text"]
    latest = [c["item"]["content"][0]["text"] for c in seeded if c["item"].get("role") == "user"]
    assert latest, "the latest turns come after the summary"
    # The seed ends with the last turn the old session acknowledged; anything sent after it
    # (into the old session, unacknowledged) follows the seed in the new session.
    assert latest[-1] in texts[-2:]
    resent = [
        c["item"]["content"][0]["text"]
        for c in creates
        if str(c["item"].get("id", "")).startswith("app_") and c["item"].get("role") == "user"
    ]
    missing = texts[texts.index(latest[-1]) + 1 :]
    assert resent[: len(missing)] == missing


def test_a_95_minute_azure_call_rolls_over_before_each_cut(db_url: str) -> None:
    call, engine, server, cid = asyncio.run(_run_call(db_url, provider="azure", minutes=95))

    assert [r.reason for r in call.rollovers] == ["rollover"] * 3
    assert len(server.sessions) == 4
    assert not call.errors
    for session in server.sessions:
        assert all((e.get("error") or {}).get("code") != "session_expired" for e in session.sent)
    # Each switch came within the margin (2 minutes) before Azure's 30-minute cut.
    starts = [0.0, *call.rollover_times]
    ages = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(1800 - 120 <= age < 1800 for age in ages), ages
    sent_before: list[str] = []
    for n, rollover in enumerate(call.rollovers, start=1):
        assert 0 < rollover.seed_tokens <= SEED.budget_tokens
        received = server.sessions[n - 1].received
        sent_before = [
            e["item"]["content"][0]["text"]
            for e in received
            if e["type"] == "conversation.item.create" and e["item"].get("role") == "user"
            and str(e["item"].get("id", "")).startswith("app_")
        ]  # fmt: skip
        _check_seed(server, n, sent_before)
    usage = _check_store(db_url, cid, call, engine)
    # The engine's model is the fake's: predictions are exact, and the error is stored as 0.
    errors = [u["input_text"] - u["predicted_input_text"] for u in usage]
    assert errors == [0] * len(usage)
    assert engine.calibration.mean_abs_error == 0
    assert engine.total_cost_usd > 0


def test_a_dropped_connection_resumes_from_the_store(db_url: str) -> None:
    call, engine, server, cid = asyncio.run(
        _run_call(db_url, provider="openai", minutes=45, drop_at_minute=25)
    )

    assert [r.reason for r in call.rollovers] == ["disconnected"]
    assert len(server.sessions) == 2
    assert server.sessions[0].close_reason == "dropped"
    received = server.sessions[0].received
    before = [
        e["item"]["content"][0]["text"]
        for e in received
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "user"
    ]
    _check_seed(server, 1, before)
    _check_store(db_url, cid, call, engine, compacted=True)
