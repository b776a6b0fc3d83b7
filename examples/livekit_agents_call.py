"""A LiveKit Agents voice agent whose context is managed, beside LiveKit's default.

Offline, against the fake realtime server on a virtual clock: the same scripted 95-minute call
on Azure (30-minute sessions) runs twice through LiveKit's own ``AgentSession``, with the same
agent and tool:

* with LiveKit's OpenAI realtime model as it ships: at each cut it reconnects and replays its
  whole chat context into the new session (its own 20-minute recycle counts wall-clock time,
  which this accelerated call never reaches; it would replay the same way, more often);
* with `ManagedRealtimeModel` (the ``llm`` changed): the call rolls over before each cut,
  seeded with a summary and the latest turns, compacts, is stored in SQLite, and reports its
  cost as it goes.

It prints what each answered, lost, re-sent and cost. No key and no network (loopback only);
about 30 seconds::

    python examples/livekit_agents_call.py [--turns 400] [--db sqlite:///call.db]

Needs the extras: ``pip install "context-manager[livekit,openai,store,testing]"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from livekit.agents import Agent, AgentSession, function_tool
from livekit.plugins.openai.realtime import RealtimeModel
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock, Message, get_model_profile
from context_manager.compaction import RollingSummary
from context_manager.integrations.livekit_agents import ManagedRealtimeModel
from context_manager.items import FunctionCallOutput, Item
from context_manager.rollover import RolloverPolicy
from context_manager.server.pricing import price
from context_manager.server.usage import Usage
from context_manager.store import AsyncStore
from context_manager.testing import FakeRealtimeServer, Reply
from context_manager.tokens import TokenCounter
from context_manager.wire import item_from_wire

_CODE = re.compile(r"\bK\d{3}\b")
INSTRUCTIONS = "You are a travel agent on the phone. Keep answers short and warm."


class TravelAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=INSTRUCTIONS)

    @function_tool
    async def get_weather(self, city: str) -> str:
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
    """The fake model: the weather tool when asked, else a short answer."""
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
    """Tokens of earlier sessions' items sent again into a new one (replay or seed)."""
    cost_usd: float
    """What the server's usage costs at the profile's prices."""
    codes_held: int
    """Booking codes the caller gave that the last session still holds (the model's memory)."""
    reports: int = 0

    @property
    def codes_given(self) -> int:
        """Booking codes the caller gave (every turn but the weather questions)."""
        return sum(1 for turn in range(self.turns) if _CODE.search(caller(turn)))


def codes_held(session: Any) -> int:
    """Distinct booking codes (``K042``) in the text a session holds at the end."""
    texts = (str(p.get("text") or p.get("transcript") or "")
             for item in session.items for p in item.get("content") or [])  # fmt: skip
    return len(set(_CODE.findall("\n".join(texts))))


def replayed_tokens(sessions: Sequence[Any], counter: TokenCounter) -> int:
    """Tokens of the items each session was sent again, by id, from the sessions before it."""
    seen: set[str] = set()
    total = 0
    for session in sessions:
        for event in session.received:
            if event["type"] != "conversation.item.create":
                continue
            item_id = event["item"].get("id")
            if item_id in seen:
                total += counter.items([item_from_wire(event["item"])]).total
        seen.update(str(i["id"]) for i in session.items)
        seen.update(str(e["item"].get("id")) for e in session.received
                    if e["type"] == "conversation.item.create")  # fmt: skip
    return total


async def scripted_call(managed: bool, turns: int = 400, db_url: str | None = None) -> Outcome:
    """The scripted call on Azure (`turns` turns, 400 about 95 minutes), with either model."""
    clock = ManualClock()
    profile = get_model_profile("gpt-realtime")
    async with FakeRealtimeServer(provider="azure", clock=clock, responder=model_reply,
                                  expiry_poll_seconds=None) as server:  # fmt: skip
        store = AsyncStore(db_url or f"sqlite:///{tempfile.mkdtemp()}/call.db")
        async with store:
            llm: Any
            if managed:
                # What an agent adds: an engine, the managed model, and the store.
                engine = ContextEngine(
                    "gpt-realtime",
                    "azure",
                    compaction=RollingSummary(),
                    rollover=RolloverPolicy(carry="summary"),
                    clock=clock,
                )
                client = AsyncOpenAI(api_key="offline", base_url=server.base_url)
                llm = ManagedRealtimeModel(engine, client=client, store=store,
                                           modalities=["text"])  # fmt: skip
            else:
                # Its failures at each cut are logged with tracebacks; the table counts them.
                logging.getLogger("livekit.agents").setLevel(logging.CRITICAL)
                llm = RealtimeModel(api_key="offline", base_url=server.base_url,
                                    modalities=["text"])  # fmt: skip
            answered = 0
            async with AgentSession(llm=llm) as session:
                await session.start(TravelAgent())
                for turn in range(turns):
                    clock.advance(14.25)  # the caller speaks, then waits
                    try:
                        result = await asyncio.wait_for(
                            session.run(user_input=caller(turn)), timeout=30
                        )
                    except Exception:  # LiveKit's own model: the turn failed at a cut
                        continue
                    if any(e.type == "message" for e in result.events):
                        answered += 1
                if managed:
                    await llm.connection.flush()
            await llm.aclose()
    prices = profile.prices_per_million
    cost = sum(price(Usage.from_dict(e["response"]["usage"] or {}), prices).total
               for s in server.sessions for e in s.sent if e["type"] == "response.done")  # fmt: skip
    if managed:
        resent = sum(r.seed_tokens for r in llm.connection.rollovers)
    else:
        resent = replayed_tokens(server.sessions, TokenCounter(profile))
    reports = len(llm.reports) if managed else 0
    name = "ManagedRealtimeModel" if managed else "openai.realtime.RealtimeModel"
    held = codes_held(server.sessions[-1])
    return Outcome(name, turns, answered, len(server.sessions), resent, cost, held, reports)


def comparison_table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a markdown table (docs/livekit-agents.md shows this one)."""
    lines = [
        "| model | turns answered | turns lost | sessions | tokens re-sent"
        " | booking codes held at the end | USD | USD per answered turn |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        per_turn = o.cost_usd / o.answered if o.answered else 0.0
        lines.append(f"| `{o.model}` | {o.answered:,} | {o.turns - o.answered:,} | {o.sessions}"
                     f" | {o.resent_tokens:,} | {o.codes_held} / {o.codes_given}"
                     f" | {o.cost_usd:.4f} | {per_turn:.4f} |")  # fmt: skip
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
