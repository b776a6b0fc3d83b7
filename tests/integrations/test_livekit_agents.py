"""LiveKit Agents' real `AgentSession`, its realtime model managed, against the fake server.

A 95-minute Azure call driven through ``AgentSession.run`` (LiveKit's own session, agent
activity and tool runner): three rollovers before each cut, each new session seeded with a
summary and the latest turns, every item stored once, the cost the fake server's usage priced
by the profile, a dropped socket, and a resume in a new process from the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, function_tool
from openai import AsyncOpenAI

from context_manager.compaction import RollingSummary
from context_manager.errors import ConfigurationError
from context_manager.integrations.livekit_agents import ContextReport, ManagedRealtimeModel
from context_manager.live import ContextEngine
from context_manager.rollover import RolloverPolicy
from context_manager.server import ManualClock
from context_manager.store import AsyncStore
from context_manager.testing import FakeRealtimeServer

from ..engine.test_realtime_e2e import INSTRUCTIONS, _stored_rows, responder, user_text
from .checks import assert_the_cost_is_the_servers, in_a_new_process, served_usd

pytestmark = pytest.mark.network_allowed

SEED = RolloverPolicy(budget_tokens=3000, carry="summary", summary_tokens=800)


class TravelAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=INSTRUCTIONS)
        self.tools_run = 0

    @function_tool
    async def get_weather(self, city: str) -> str:
        """Look up the weather for a city."""
        self.tools_run += 1
        return json.dumps({"city": city, "sky": "clear", "high_c": 21})


@dataclass
class Call:
    texts: list[str] = field(default_factory=list)
    reports: list[ContextReport] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    answers: int = 0


class _Warnings(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def _model(engine: ContextEngine, server: FakeRealtimeServer, store: AsyncStore,
           conversation_id: str | None = None) -> ManagedRealtimeModel:  # fmt: skip
    client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    return ManagedRealtimeModel(engine, client=client, store=store,
                                conversation_id=conversation_id, modalities=["text"])  # fmt: skip


async def _run(
    db_url: str,
    minutes: float,
    *,
    provider: str = "azure",
    compaction: bool = True,
    drop_at_minute: float | None = None,
) -> tuple[Call, ManagedRealtimeModel, TravelAgent, Any, str]:
    """A call of text turns through LiveKit's session; the server may drop its socket once."""
    clock = ManualClock()
    summary = RollingSummary(trigger=0.3, keep=6, budget=600) if compaction else None
    engine = ContextEngine("gpt-realtime", provider, compaction=summary, rollover=SEED,
                           rollover_margin_seconds=120, clock=clock)  # fmt: skip
    call = Call()
    watch = _Warnings(call.warnings)
    logging.getLogger("livekit.agents").addHandler(watch)
    try:
        async with (
            FakeRealtimeServer(
                provider=provider, clock=clock, responder=responder, expiry_poll_seconds=None
            ) as server,  # fmt: skip
            AsyncStore(db_url) as store,
        ):
            model = _model(engine, server, store)
            model.on("context_report", call.reports.append)
            agent = TravelAgent()
            async with AgentSession(llm=model) as session:
                session.on("error", call.errors.append)
                await session.start(agent)
                turn = 0
                dropped = False
                while clock.now < minutes * 60:
                    if drop_at_minute is not None and not dropped and clock.now >= drop_at_minute * 60:  # fmt: skip
                        await server.drop()
                        dropped = True
                    clock.advance(9.0)
                    result = await session.run(user_input=user_text(turn))
                    call.texts.append(user_text(turn))
                    call.answers += sum(e.type == "message" for e in result.events)
                    turn += 1
                assert model.connection is not None
                await model.connection.flush()
            cid = model.conversation_id
            assert cid is not None
            served = served_usd(server.sessions)
            sessions = server.sessions
    finally:
        logging.getLogger("livekit.agents").removeHandler(watch)
    return call, model, agent, (served, sessions), cid


def test_a_95_minute_azure_call_through_livekit_agents(db_url: str) -> None:
    call, model, agent, (served, sessions), cid = asyncio.run(_run(db_url, 95))
    conn = model.connection
    assert conn is not None
    assert [r.reason for r in conn.rollovers] == ["rollover"] * 3
    assert len(sessions) == 4
    assert not call.errors
    # Not even a note: items placed after a seed's copy name the item LiveKit knows.
    assert call.warnings == []
    assert agent.tools_run >= 3  # LiveKit ran the tool itself, in every session
    assert call.answers == len(call.texts)  # every turn answered, none lost at a cut
    # LiveKit's own reconnect (a full replay) never ran: each new session got the engine's
    # seed, the app's instructions and tools, and no more of the call than the seed.
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
        # LiveKit placed its next item after the last one it knew (an earlier session's):
        # it went in after that item's copy, or last; the server refused nothing.
        assert not [e for e in sessions[n].sent if e["type"] == "error"]
    # Reports: one per response and one per rollover, the cost rising to the engine's total.
    responses = [r for r in call.reports if r.kind == "response"]
    assert [r.rollovers for r in call.reports if r.kind == "rollover"] == [1, 2, 3]
    assert call.reports == model.reports
    assert responses[-1].cost_usd <= model.engine.total_cost_usd
    assert all(r.history_tokens <= r.history_limit for r in responses)
    assert all(r.prediction_error_tokens == 0 for r in responses)
    # Every user turn stored once; the usage of every response; the cost the server's usage.
    rows = _stored_rows(db_url, cid)
    users = Counter(c.get("text") for c, _ in rows if c.get("role") == "user")
    assert all(users[t] == 1 for t in call.texts), "every user item stored exactly once"
    assert sum(users.values()) == len(call.texts)
    assert_the_cost_is_the_servers(db_url, cid, model.engine, served)


def test_a_dropped_socket_mid_call_goes_on_in_a_new_session(db_url: str) -> None:
    call, model, _, (_, sessions), cid = asyncio.run(
        _run(db_url, 20, provider="openai", compaction=False, drop_at_minute=12)
    )
    conn = model.connection
    assert conn is not None
    assert [r.reason for r in conn.rollovers] == ["disconnected"]
    assert len(sessions) == 2
    assert not call.errors  # LiveKit's session never saw the drop
    assert call.answers == len(call.texts)
    seeded = [e["item"]["content"][0]["text"] for e in sessions[1].received
              if e["type"] == "conversation.item.create" and e["item"].get("role") == "user"]  # fmt: skip
    assert any(text in call.texts for text in seeded)
    users = Counter(c.get("text") for c, _ in _stored_rows(db_url, cid) if c.get("role") == "user")
    assert all(users[t] == 1 for t in call.texts), "every user item stored exactly once"


RESUME = textwrap.dedent(
    """
    import asyncio, sys
    from livekit.agents import Agent, AgentSession
    from openai import AsyncOpenAI
    from context_manager.integrations.livekit_agents import ManagedRealtimeModel
    from context_manager.live import ContextEngine
    from context_manager.store import AsyncStore

    async def main(url, db_url, cid):
        engine = ContextEngine("gpt-realtime", "openai")
        async with AsyncStore(db_url) as store:
            client = AsyncOpenAI(api_key="test-key", base_url=url)
            model = ManagedRealtimeModel(engine, client=client, store=store,
                                         conversation_id=cid, modalities=["text"])
            async with AgentSession(llm=model) as session:
                await session.start(Agent(instructions="Be brief."))
                await session.run(user_input="Turn 999: I am back, where were we?")
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
        async with AgentSession(llm=model) as session:
            await session.start(Agent(instructions="Be brief."))
            for turn in range(4):
                clock.advance(9.0)
                await session.run(user_input=user_text(turn))
            assert model.connection is not None
            await model.connection.flush()
        cid = model.conversation_id
        assert cid is not None
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
    assert not [e for e in sessions[-1].sent if e["type"] == "error"]
    rows = _stored_rows(db_url, cid)
    users = [c.get("text") for c, _ in rows if c.get("role") == "user"]
    assert users == [user_text(n) for n in range(4)] + ["Turn 999: I am back, where were we?"]


def test_bad_arguments_are_one_clear_error() -> None:
    engine = ContextEngine("gpt-realtime", "openai")
    with pytest.raises(ConfigurationError, match="client must be an AsyncOpenAI .* got NoneType"):
        ManagedRealtimeModel(engine, client=None)  # type: ignore[arg-type]
    client = AsyncOpenAI(api_key="test-key", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="drop api_key, max_session_duration"):
        ManagedRealtimeModel(engine, client=client, api_key="k", max_session_duration=60)


def test_a_model_that_cannot_connect_ends_the_session_with_one_clear_error() -> None:
    async def main() -> list[Any]:
        engine = ContextEngine("gpt-realtime", "openai")
        client = AsyncOpenAI(api_key="secret-key", base_url="http://127.0.0.1:9")  # closed
        model = ManagedRealtimeModel(engine, client=client, modalities=["text"])
        errors: list[Any] = []
        async with AgentSession(llm=model) as session:
            session.on("error", errors.append)
            await session.start(Agent(instructions="Be brief."))
            await asyncio.wait_for(session.run(user_input="Hello?"), 30)
        return errors

    errors = asyncio.run(main())
    assert len(errors) == 1
    error = errors[0].error
    assert not error.recoverable
    assert str(error.error) == "could not open a session (ConnectionRefusedError)"
    assert "secret-key" not in repr(errors)
