"""A realtime agent whose context is managed: compaction, rollover, persistence, cost.

Offline (the default) it runs against the fake realtime server of `context_manager.testing`
on a virtual clock: a 70-minute call on Azure's 30-minute sessions, which the engine rolls over
twice before the cut, with a SQLite store and a cost report at the end. It needs no key and no
network and takes a few seconds:

    python examples/realtime_agent.py
    python examples/realtime_agent.py --minutes 95 --db sqlite:///call.db

With ``--voice`` the caller speaks instead (audio the fake server hears as words), with input
transcription off, as the API starts: no user turn has any text. The engine keeps the caller's
recent audio to re-send and has the realtime model summarize older turns out of band, so each
new session still knows every booking code the caller gave; the example prints how many.

With ``--real`` it talks to OpenAI (``OPENAI_API_KEY``) or, when ``AZURE_OPENAI_ENDPOINT`` is set,
to Azure OpenAI (``AZURE_OPENAI_API_KEY``, ``OPENAI_API_VERSION``, ``--model`` = the deployment)
for a few text turns on the real clock, with the same engine and store.

Needs the extras: ``pip install "context-manager[openai,store,testing]"``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from context_manager import ContextEngine, ManualClock, Message
from context_manager.compaction import RollingSummary
from context_manager.items import FunctionCallOutput, Item
from context_manager.realtime import ManagedConnection, RealtimeSummarizer, connect
from context_manager.rollover import RolloverPolicy
from context_manager.store import AsyncStore
from context_manager.testing import FakeRealtimeServer, Reply
from context_manager.testing.speech import say, silence

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


def fake_model(items: Sequence[Item]) -> Reply:
    """What the fake model says: a tool call for weather questions, else a spoken answer."""
    last = items[-1] if items else None
    if isinstance(last, FunctionCallOutput):
        return Reply.speech(f"It will be {last.output}. Anything else?")
    user = next((i for i in reversed(items) if isinstance(i, Message) and i.role == "user"), None)
    if user is not None and "weather" in user.text:
        return Reply.call("get_weather", {"city": "Oslo"})
    said = " ".join((user.text if user else "").split()[:12])
    return Reply.speech(f"Noted: {said}. I have added it to your plan.")


def voice_model(items: Sequence[Item]) -> Reply:
    """The fake model of the spoken call: it never repeats the caller's words, and summarizes
    what it heard (user turns are given to it as the words it heard) when asked to."""
    last = items[-1] if items else None
    if isinstance(last, Message) and last.role == "system" and "Summarize" in last.text:
        heard = [i.text for i in items[:-1] if isinstance(i, Message) and i.role != "assistant"]
        return Reply("; ".join(t for t in heard if t))
    return Reply.speech("Noted.")


def user_turn(n: int) -> str:
    if n % 20 == 5:
        return "What will the weather be like in Oslo?"
    return (
        f"For booking K{n:03d}, traveller {n % 7} wants an aisle seat, vegetarian meals"
        f" and a late checkout on day {n % 28 + 1}; the budget is {300 + n} euros a night."
    )


async def turn(conn: ManagedConnection, text: str) -> dict[str, Any]:
    """One user turn: send it, ask for a response, answer tool calls, wait for the end."""
    seen: dict[str, Any] = {"rollovers": []}
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()
    async for event in conn:
        if event.type == "context_manager.rollover":
            seen["rollovers"].append(event)
        elif event.type == "response.done":
            calls = [o for o in event.response.output or [] if o.type == "function_call"]
            if not calls:
                return seen
            for call in calls:  # the application runs its tools as usual
                output = {"type": "function_call_output", "call_id": call.call_id,
                          "output": "sunny, 21 °C"}  # fmt: skip
                await conn.conversation.item.create(item=output)
            await conn.response.create()
    return seen


async def run_call(
    client: Any,
    engine: ContextEngine,
    store: AsyncStore,
    model: str,
    *,
    turns: int,
    clock: ManualClock | None = None,
    minutes: float = 0.0,
) -> list[Any]:
    """Run user turns until `turns`, or until `minutes` of virtual time on `clock`."""
    rollovers: list[Any] = []
    async with connect(client, model=model, engine=engine, store=store) as conn:
        await conn.session.update(
            session={"type": "realtime", "instructions": INSTRUCTIONS, "tools": TOOLS}
        )
        for n in range(turns):
            if clock is not None:
                if clock.now >= minutes * 60:
                    break
                clock.advance(10.0)  # the user speaks for a while (virtual time)
            seen = await turn(conn, user_turn(n))
            for event in seen["rollovers"]:
                print(f"  rollover ({event.reason}) into session {event.session}:"
                      f" {event.seed_items} items, {event.seed_tokens} tokens seeded")  # fmt: skip
                rollovers.append(event)
        print(f"conversation {conn.conversation_id} stored")
    return rollovers


def report(engine: ContextEngine) -> None:
    c = engine.calibration
    print(f"sessions: {engine.session_index + 1}, responses: {engine.responses},"
          f" items: {len(engine.history)}, compactions: {engine.compactions}")  # fmt: skip
    print(f"prediction error: last {c.last_error} tokens, mean |error| {c.mean_abs_error:.1f}"
          f" (item overhead {c.item_overhead_tokens})")  # fmt: skip
    print(f"total cost: ${engine.total_cost_usd:.4f}")


async def offline(minutes: float, db: str) -> None:
    clock = ManualClock()
    engine = ContextEngine(
        "gpt-realtime",
        "azure",
        compaction=RollingSummary(trigger=0.3, keep=6),
        rollover=RolloverPolicy(budget_tokens=3000, carry="summary", summary_tokens=800),
        clock=clock,
    )
    from openai import AsyncOpenAI

    async with (
        FakeRealtimeServer(provider="azure", clock=clock, responder=fake_model) as server,
        AsyncStore(db) as store,
    ):
        client = AsyncOpenAI(api_key="offline", base_url=server.base_url)
        print(f"a {minutes:g}-minute call against the fake server at {server.url}")
        await run_call(
            client, engine, store, "gpt-realtime", turns=10**6, clock=clock, minutes=minutes
        )
        await client.close()
    report(engine)


async def voice_turn(conn: ManagedConnection, n: int) -> list[Any]:
    """One spoken turn (server VAD commits it and the model answers); the rollovers seen."""
    audio = say(f"my booking code is K{n:03d}") + silence(800)
    for start in range(0, len(audio), 9600):  # 200 ms chunks, as a microphone sends them
        chunk = base64.b64encode(audio[start : start + 9600]).decode()
        await conn.input_audio_buffer.append(audio=chunk)
    rollovers = []
    async for event in conn:
        if event.type == "context_manager.rollover":
            rollovers.append(event)
        elif event.type == "response.done":
            break
    return rollovers


async def voice(minutes: float, db: str) -> None:
    clock = ManualClock()
    summarizer = RealtimeSummarizer()  # the model that heard the caller writes the summaries
    engine = ContextEngine(
        "gpt-realtime",
        "azure",
        compaction=RollingSummary(trigger=0.05, keep=8, budget=1500, summarizer=summarizer),
        rollover=RolloverPolicy(carry="summary", summary_tokens=1500, summarizer=summarizer),
        keep_user_audio_seconds=120,  # the latest turns go to a new session as the caller's audio
        clock=clock,
    )
    from openai import AsyncOpenAI

    async with (
        FakeRealtimeServer(provider="azure", clock=clock, responder=voice_model) as server,
        AsyncStore(db) as store,
    ):
        client = AsyncOpenAI(api_key="offline", base_url=server.base_url)
        print(f"a {minutes:g}-minute spoken call, transcription off, at {server.url}")
        async with connect(client, model="gpt-realtime", engine=engine, store=store) as conn:
            n = 0
            while clock.now < minutes * 60:
                for event in await voice_turn(conn, n):
                    # What the new session holds of the caller's words: heard again, or read.
                    session = server.sessions[-1]
                    known = " ".join(
                        str(part.get("text") or "") + " " + (session.heard(str(item["id"])) or "")
                        for item in session.items
                        for part in item.get("content") or [{}]
                    )
                    kept = sum(f"K{k:03d}" in known for k in range(n + 1))
                    print(f"  rollover ({event.reason}) into session {event.session}: it knows"
                          f" {kept} of the caller's {n + 1} booking codes")  # fmt: skip
                clock.advance(30.0)
                n += 1
        await client.close()
    print(f"transcribed user turns: 0; summaries by the model: {summarizer.requests}")
    report(engine)


async def real(model: str, db: str) -> None:
    from openai import AsyncAzureOpenAI, AsyncOpenAI

    azure = bool(os.environ.get("AZURE_OPENAI_ENDPOINT"))
    client = AsyncAzureOpenAI() if azure else AsyncOpenAI()
    engine = ContextEngine(
        "gpt-realtime", "azure" if azure else "openai", compaction=RollingSummary()
    )
    async with AsyncStore(db) as store:
        await run_call(client, engine, store, model, turns=4)
    report(engine)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=70.0, help="length of the offline call")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL of the store")
    parser.add_argument("--real", action="store_true", help="talk to OpenAI or Azure OpenAI")
    parser.add_argument("--voice", action="store_true", help="a spoken call, transcription off")
    parser.add_argument("--model", default="gpt-realtime", help="model (Azure: deployment)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{tmp}/call.db"
        if args.real:
            asyncio.run(real(args.model, db))
        else:
            asyncio.run((voice if args.voice else offline)(args.minutes, db))


if __name__ == "__main__":
    main()
