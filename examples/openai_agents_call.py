"""An OpenAI Agents SDK voice agent whose context is managed, beside the SDK's default.

Offline, against the fake realtime server on a virtual clock: the same scripted 95-minute call
on Azure (30-minute sessions) runs twice through the SDK's own ``RealtimeRunner`` and session,
with the same agent and tool:

* with the SDK's model as it ships (``OpenAIRealtimeWebSocketModel``): the session ends at the
  30-minute cut and the rest of the call cannot be sent;
* with `ManagedRealtimeModel` (three lines changed): the call rolls over before each cut,
  seeded with a summary and the latest turns, compacts, is stored in SQLite, and reports its
  cost as it goes.

It prints what each answered, lost and cost. No key and no network (loopback only); about
20 seconds::

    python examples/openai_agents_call.py [--turns 400] [--db sqlite:///call.db]

Needs the extras: ``pip install "context-manager[agents,openai,store,testing]"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock, Message, get_model_profile
from context_manager.compaction import RollingSummary
from context_manager.integrations.openai_agents import ContextReport, ManagedRealtimeModel
from context_manager.items import FunctionCallOutput, Item
from context_manager.rollover import RolloverPolicy
from context_manager.server.pricing import price
from context_manager.server.usage import Usage
from context_manager.store import AsyncStore
from context_manager.testing import FakeRealtimeServer, Reply

INSTRUCTIONS = "You are a travel agent on the phone. Keep answers short and warm."


@function_tool
def get_weather(city: str) -> str:
    """Look up the weather for a city."""
    return json.dumps({"city": city, "sky": "clear", "high_c": 21})


def caller(turn: int) -> str:
    """What the caller says at `turn` (every 25th turn asks for the weather)."""
    if turn % 25 == 7:
        return f"Turn {turn}: what will the weather be like when we land?"
    return (
        f"Turn {turn}: for booking K{turn:03d} please remember that traveller number {turn % 9}"
        f" prefers an aisle seat and a late checkout on day {turn % 28 + 1}."
    )


def model_reply(items: Sequence[Item]) -> Reply:
    """The fake model: the weather tool when asked, else a short spoken answer."""
    last = items[-1] if items else None
    if isinstance(last, FunctionCallOutput):
        return Reply.speech(f"The forecast says {last.output}. Anything else for the trip?")
    user = next((i for i in reversed(items) if isinstance(i, Message) and i.role == "user"), None)
    text = user.text if user is not None else ""
    if "weather" in text:
        return Reply.call("get_weather", {"city": "Oslo"})
    return Reply.speech("Noted, " + " ".join(text.split()[:8]) + ". Added to your plan.")


@dataclass
class Outcome:
    """What one run of the scripted call gave."""

    model: str
    turns: int
    answered: int
    sessions: int
    resent_tokens: int
    """Tokens re-sent to seed new sessions (0 when it never opens one)."""
    cost_usd: float
    """What the server's usage costs at the profile's prices."""
    reports: int = 0


async def _answer(session: Any, text: str, responses: int) -> bool:
    """Send one turn; whether it was answered (its responses, a tool's too, are done)."""
    ended = 0
    try:
        await session.send_message(text)
        async for event in session:
            if event.type == "agent_end":
                ended += 1
                if ended >= responses:
                    return True
    except Exception:  # the SDK's own model: the session is gone after the cut
        return False
    return False


async def scripted_call(managed: bool, turns: int = 400, db_url: str | None = None) -> Outcome:
    """The scripted call on Azure (`turns` turns, 400 about 95 minutes), with either model."""
    clock = ManualClock()
    agent = RealtimeAgent(name="Travel agent", instructions=INSTRUCTIONS, tools=[get_weather])
    async with FakeRealtimeServer(provider="azure", clock=clock, responder=model_reply,
                                  expiry_poll_seconds=None) as server:  # fmt: skip
        store = AsyncStore(db_url or f"sqlite:///{tempfile.mkdtemp()}/call.db")
        async with store:
            model: Any
            config: Any = {}
            if managed:
                # The three lines an agent adds: an engine, the model, and the store.
                engine = ContextEngine(
                    "gpt-realtime",
                    "azure",
                    compaction=RollingSummary(),
                    rollover=RolloverPolicy(carry="summary"),
                    clock=clock,
                )
                client = AsyncOpenAI(api_key="offline", base_url=server.base_url)
                model = ManagedRealtimeModel(engine, client=client, model="gpt-realtime",
                                             store=store)  # fmt: skip
            else:
                model = OpenAIRealtimeWebSocketModel()
                config = {"url": f"{server.url}?model=gpt-realtime", "api_key": "offline"}
            session = await RealtimeRunner(agent, model=model).run(model_config=config)
            answered = 0
            async with session:
                for turn in range(turns):
                    clock.advance(9.0)  # the caller speaks, then waits
                    text = caller(turn)
                    if await _answer(session, text, 2 if "weather" in text else 1):
                        answered += 1
                if managed:
                    await model.connection.flush()
    prices = get_model_profile("gpt-realtime").prices_per_million
    cost = sum(price(Usage.from_dict(e["response"]["usage"] or {}), prices).total
               for s in server.sessions for e in s.sent if e["type"] == "response.done")  # fmt: skip
    resent = sum(r.seed_tokens for r in model.connection.rollovers) if managed else 0
    reports = len([r for r in getattr(model, "reports", []) if isinstance(r, ContextReport)])
    return Outcome("ManagedRealtimeModel" if managed else "OpenAIRealtimeWebSocketModel", turns,
                   answered, len(server.sessions), resent, cost, reports)  # fmt: skip


def comparison_table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a markdown table (docs/openai-agents.md shows this one)."""
    lines = [
        "| model | turns answered | turns lost | sessions | tokens re-sent | USD | USD per answered turn |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        per_turn = o.cost_usd / o.answered if o.answered else 0.0
        lines.append(f"| `{o.model}` | {o.answered:,} | {o.turns - o.answered:,} | {o.sessions}"
                     f" | {o.resent_tokens:,} | {o.cost_usd:.4f} | {per_turn:.4f} |")  # fmt: skip
    return "\n".join(lines)


def _turns(value: str) -> int:
    try:
        turns = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--turns must be a whole number, got {value!r}") from None
    if turns < 1:
        raise argparse.ArgumentTypeError(f"--turns must be at least 1, got {turns}")
    return turns


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=_turns, default=400, help="400: about 95 minutes")
    parser.add_argument("--db", default=None, help="the managed run's store (SQLAlchemy URL)")
    args = parser.parse_args(argv)
    outcomes = [asyncio.run(scripted_call(m, args.turns, args.db)) for m in (False, True)]
    print(comparison_table(outcomes))


if __name__ == "__main__":
    main()
