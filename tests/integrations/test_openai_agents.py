"""The OpenAI Agents SDK's real session, its model managed, against the fake server.

A 95-minute Azure call driven through ``RealtimeRunner``/``RealtimeSession`` (the SDK's own
session, its own tool runner): three rollovers before each cut, each new session seeded with a
summary and the latest turns, every item stored once, the cost the fake server's usage priced
by the profile, and a resume in a new process from the store.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner
from openai import AsyncOpenAI

from context_manager.compaction import RollingSummary
from context_manager.errors import ConfigurationError
from context_manager.integrations.openai_agents import (
    ContextReport,
    ManagedRealtimeModel,
)
from context_manager.live import ContextEngine
from context_manager.rollover import RolloverPolicy
from context_manager.server import ManualClock
from context_manager.store import AsyncStore
from context_manager.testing import FakeRealtimeServer, Reply
from context_manager.testing.speech import say, silence
from context_manager.testing.voicecall import phrase

from ..engine.test_realtime_e2e import INSTRUCTIONS, _stored_rows, responder, user_text
from .checks import assert_the_cost_is_the_servers, in_a_new_process, served_usd

pytestmark = pytest.mark.network_allowed

SEED = RolloverPolicy(budget_tokens=3000, carry="summary", summary_tokens=800)


@function_tool
def get_weather(city: str) -> str:
    """Look up the weather for a city."""
    return json.dumps({"city": city, "sky": "clear", "high_c": 21})


@dataclass
class Call:
    texts: list[str] = field(default_factory=list)
    reports: list[ContextReport] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    tools: int = 0


async def _turn(session: Any, model: ManagedRealtimeModel, call: Call, text: str) -> None:
    """One user turn: the text, then events until its response (and a tool's) is done."""
    expected = model.engine.responses + (2 if "weather" in text else 1)
    await session.send_message(text)
    call.texts.append(text)
    async for event in session:
        if event.type == "raw_model_event" and event.data.type == "other":
            if isinstance(event.data.data, ContextReport):
                call.reports.append(event.data.data)
        elif event.type == "error":
            call.errors.append(event.error)
        elif event.type == "tool_end":
            call.tools += 1
        elif event.type == "agent_end" and model.engine.responses >= expected:
            return


def _model(engine: ContextEngine, server: FakeRealtimeServer, store: AsyncStore,
           conversation_id: str | None = None) -> ManagedRealtimeModel:  # fmt: skip
    client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    return ManagedRealtimeModel(engine, client=client, model="gpt-realtime", store=store,
                                conversation_id=conversation_id)  # fmt: skip


async def _run(
    db_url: str,
    minutes: float,
    *,
    provider: str = "azure",
    compaction: bool = True,
    drop_at_minute: float | None = None,
) -> tuple[Call, ManagedRealtimeModel, Any, str]:
    """A call of text turns through the SDK's session; the server may drop its socket once."""
    clock = ManualClock()
    summary = RollingSummary(trigger=0.3, keep=6, budget=600) if compaction else None
    engine = ContextEngine("gpt-realtime", provider, compaction=summary, rollover=SEED,
                           rollover_margin_seconds=120, clock=clock)  # fmt: skip
    call = Call()
    async with (
        FakeRealtimeServer(
            provider=provider, clock=clock, responder=responder, expiry_poll_seconds=None
        ) as server,  # fmt: skip
        AsyncStore(db_url) as store,
    ):
        model = _model(engine, server, store)
        agent = RealtimeAgent(name="Travel agent", instructions=INSTRUCTIONS, tools=[get_weather])
        session = await RealtimeRunner(agent, model=model).run()
        async with session:
            turn = 0
            dropped = False
            while clock.now < minutes * 60:
                if drop_at_minute is not None and not dropped and clock.now >= drop_at_minute * 60:
                    await server.drop()
                    dropped = True
                clock.advance(9.0)
                await _turn(session, model, call, user_text(turn))
                turn += 1
            assert model.connection is not None
            await model.connection.flush()
        cid = model.conversation_id
        assert cid is not None
        # What the server said it served, priced by the profile.
        served = served_usd(server.sessions)
        sessions = server.sessions
    return call, model, (served, sessions), cid


def test_a_95_minute_azure_call_through_the_agents_sdk(db_url: str) -> None:
    call, model, (served, sessions), cid = asyncio.run(_run(db_url, 95))
    conn = model.connection
    assert conn is not None
    assert [r.reason for r in conn.rollovers] == ["rollover"] * 3
    assert len(sessions) == 4
    assert not call.errors
    assert call.tools >= 3  # the SDK ran the tool itself
    # Each new session: the app's instructions and tools, then the summary first, then the
    # latest turns; nothing the session sent after the seed was cut is lost.
    for n in range(1, 4):
        received = sessions[n].received
        update = next(e for e in received if e["type"] == "session.update")
        assert update["session"].get("instructions") == INSTRUCTIONS
        assert [t["name"] for t in update["session"]["tools"]] == ["get_weather"]
        creates = [e["item"] for e in received if e["type"] == "conversation.item.create"]
        seeded = [i for i in creates if str(i.get("id", "")).startswith(("seed", "summary_"))]
        assert seeded[0]["role"] == "system" and seeded[0]["content"][0]["text"]
        latest = [i["content"][0]["text"] for i in seeded if i.get("role") == "user"]
        assert latest and latest[-1] in call.texts
    # Reports: one per response and one per rollover, the cost rising to the engine's total.
    responses = [r for r in call.reports if r.kind == "response"]
    assert [r.rollovers for r in call.reports if r.kind == "rollover"] == [1, 2, 3]
    assert responses[-1].cost_usd <= model.engine.total_cost_usd
    assert all(r.history_tokens <= r.history_limit for r in responses)
    # The engine's model is the fake server's: every input prediction exact.
    assert all(r.prediction_error_tokens == 0 for r in responses)
    # Every user turn stored once; the usage of every response; the cost the server's usage.
    rows = _stored_rows(db_url, cid)
    users = Counter(c.get("text") for c, _ in rows if c.get("role") == "user")
    assert all(users[t] == 1 for t in call.texts), "every user item stored exactly once"
    assert sum(users.values()) == len(call.texts)
    assert_the_cost_is_the_servers(db_url, cid, model.engine, served)


RESUME = textwrap.dedent(
    """
    import asyncio, sys
    from agents.realtime import RealtimeAgent, RealtimeRunner
    from openai import AsyncOpenAI
    from context_manager.integrations.openai_agents import ManagedRealtimeModel
    from context_manager.live import ContextEngine
    from context_manager.store import AsyncStore

    async def main(url, db_url, cid):
        engine = ContextEngine("gpt-realtime", "openai")
        async with AsyncStore(db_url) as store:
            client = AsyncOpenAI(api_key="test-key", base_url=url)
            model = ManagedRealtimeModel(engine, client=client, model="gpt-realtime",
                                         store=store, conversation_id=cid)
            session = await RealtimeRunner(RealtimeAgent(name="a"), model=model).run()
            async with session:
                await session.send_message("Turn 999: I am back, where were we?")
                async for event in session:
                    if event.type == "agent_end":
                        break
                await model.connection.flush()
            print(model.connection.rollovers[0].reason, model.engine.responses)

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def _first_call_then_resume(db_url: str) -> tuple[str, list[Any], str]:
    clock = ManualClock()
    engine = ContextEngine("gpt-realtime", "openai", clock=clock)
    async with (
        FakeRealtimeServer(provider="openai", responder=responder) as server,
        AsyncStore(db_url) as store,
    ):
        model = _model(engine, server, store)
        session = await RealtimeRunner(RealtimeAgent(name="a"), model=model).run()
        call = Call()
        async with session:
            for turn in range(4):
                clock.advance(9.0)
                await _turn(session, model, call, user_text(turn))
            assert model.connection is not None
            await model.connection.flush()
        cid = model.conversation_id
        assert cid is not None
        # A new process, the same conversation id: it resumes from the store.
        out = await in_a_new_process(RESUME, server.base_url, db_url, cid)
        return out, server.sessions, cid


def test_a_call_resumes_in_a_new_process_from_the_store(db_url: str) -> None:
    out, sessions, cid = asyncio.run(_first_call_then_resume(db_url))
    assert out.split() == ["resume", "1"]
    resumed = sessions[-1].received
    texts = [e["item"]["content"][0]["text"] for e in resumed
             if e["type"] == "conversation.item.create" and e["item"].get("role") == "user"]  # fmt: skip
    assert user_text(3) in texts  # the last call's latest turn, seeded
    assert texts[-1] == "Turn 999: I am back, where were we?"
    rows = _stored_rows(db_url, cid)
    users = [c.get("text") for c, _ in rows if c.get("role") == "user"]
    assert users == [user_text(n) for n in range(4)] + ["Turn 999: I am back, where were we?"]


async def _voice_call(minutes: float) -> tuple[list[int], list[int], Any, ManagedRealtimeModel]:
    """Audio-only turns (the SDK's semantic VAD ends each), on Azure; when each rollover came."""
    clock = ManualClock()
    engine = ContextEngine("gpt-realtime", "azure", clock=clock, compaction=RollingSummary(),
                           rollover=RolloverPolicy(carry="summary"),
                           keep_user_audio_seconds=120)  # fmt: skip
    said: list[int] = []
    switched: list[int] = []  # turns said before each rollover
    async with (
        FakeRealtimeServer(
            provider="azure", clock=clock, responder=lambda items: Reply.speech("Noted.")
        ) as server,  # fmt: skip
        AsyncStore(f"sqlite:///{tempfile.mkdtemp()}/voice.db") as store,
    ):
        model = _model(engine, server, store)
        session = await RealtimeRunner(RealtimeAgent(name="a"), model=model).run()
        async with session:
            n = 0
            while clock.now < minutes * 60:
                # The SDK's default turn detection is semantic VAD: 4 s of silence ends a turn.
                await session.send_audio(say(phrase(n)) + silence(4500))
                async for event in session:
                    report = getattr(getattr(event, "data", None), "data", None)
                    if isinstance(report, ContextReport) and report.kind == "rollover":
                        switched.append(len(said))
                    if event.type == "agent_end":
                        break
                said.append(n)
                clock.advance(30.0)
                n += 1
            assert model.connection is not None
            await model.connection.flush()
        sessions = server.sessions
    return said, switched, sessions, model


def test_every_turn_of_a_voice_call_is_in_each_new_session() -> None:
    said, switched, sessions, model = asyncio.run(_voice_call(65))
    assert len(switched) == 2 and len(sessions) == 3
    for index, before in enumerate(switched, start=1):
        session = sessions[index]
        known = [str(p.get("text") or p.get("transcript") or "")
                 for item in session.items for p in item.get("content") or []]  # fmt: skip
        known += [session.heard(str(i["id"])) or "" for i in session.items
                  if i.get("role") == "user"]  # fmt: skip
        text = "\n".join(known)
        # Every turn said before the switch: in the summary, as text, or as audio heard again.
        assert [n for n in said[:before] if phrase(n) not in text] == []
    assert model.engine.uncarried_turns == 0


def test_a_model_without_a_client_is_one_clear_error() -> None:
    engine = ContextEngine("gpt-realtime", "openai")
    with pytest.raises(ConfigurationError, match="client must be an AsyncOpenAI .* got NoneType"):
        ManagedRealtimeModel(engine, client=None)  # type: ignore[arg-type]


def test_a_dropped_socket_mid_call_goes_on_in_a_new_session(db_url: str) -> None:
    # An OpenAI call (no compaction) whose socket the server drops at minute 12.
    call, model, (_, sessions), cid = asyncio.run(
        _run(db_url, 20, provider="openai", compaction=False, drop_at_minute=12)
    )
    conn = model.connection
    assert conn is not None
    assert [r.reason for r in conn.rollovers] == ["disconnected"]
    assert len(sessions) == 2
    assert not call.errors  # the SDK's session never saw the drop
    # The new session was seeded with the latest turns before the drop; every turn answered.
    seeded = [e["item"]["content"][0]["text"] for e in sessions[1].received
              if e["type"] == "conversation.item.create" and e["item"].get("role") == "user"]  # fmt: skip
    assert any(text in call.texts for text in seeded)
    assert model.engine.responses >= len(call.texts)
    users = Counter(c.get("text") for c, _ in _stored_rows(db_url, cid) if c.get("role") == "user")
    assert all(users[t] == 1 for t in call.texts), "every user item stored exactly once"
