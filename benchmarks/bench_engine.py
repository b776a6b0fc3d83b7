"""The live engine's cost per event on a 60-minute Realtime event stream.

The stream is recorded first, in this process, from the fake server (`FakeSession`, no
sockets): a 60-minute voice call on OpenAI's 60-minute session, text user turns of 25-100
words, spoken assistant answers with their transcript deltas and audio deltas (250 ms chunks),
a tool call every 25 turns, truncation by the server as the window fills. Then two loops run
over the same server events:

* ``tokenize once``: encode the new text each event carries (item texts, transcript deltas,
  function arguments and outputs) with tiktoken, nothing else: the floor of any accounting;
* ``engine``: `ContextEngine.feed` for every event (a fresh engine: every text tokenized for
  real), with the rolling-summary compaction on;
* ``engine, no plans``: the same without a compaction strategy (mirror, budget, forecast,
  usage prediction with the prompt cache, calibration, records).

It prints microseconds per event for both, their ratio (target, DESIGN.md: within 1.5x), and
the engine's time per event in each tenth of the call, last tenth over first, to show that
nothing grows with the length of the call (target: about 1).

Timings are the best of ``--repeats`` interleaved runs. Run:
``python benchmarks/bench_engine.py [--minutes 60] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from context_manager import ContextEngine, ManualClock, Message, get_encoding
from context_manager.compaction import RollingSummary
from context_manager.items import FunctionCallOutput, Item
from context_manager.testing import FakeSession, Reply

WORDS = (
    "booking flight Oslo Lisbon seat window aisle refund voucher code K7QX2P Tuesday Friday "
    "March April passport name Marcelo Alice baggage allowance upgrade premium economy fare "
    "price euros dollars callback number confirm change cancel hotel night breakfast transfer "
    "airport terminal gate delay weather forecast rain meeting schedule reminder allergy"
).split()


def record(minutes: float, seed: int) -> list[dict[str, Any]]:
    """The server events of a `minutes`-long call, in order."""
    rng = random.Random(seed)
    clock = ManualClock()

    def answer(items: Sequence[Item]) -> Reply:
        last = items[-1]
        if isinstance(last, Message) and last.text.startswith("weather"):
            return Reply.call("get_weather", {"city": rng.choice(WORDS)})
        if isinstance(last, FunctionCallOutput):
            return Reply.speech(f"It will be {last.output} there.")
        return Reply.speech(" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))))

    session = FakeSession(clock=clock, responder=answer, send_audio=True)
    events = list(session.opening())

    def send(event: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = session.receive(event)
        events.extend(out)
        return out

    send({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}})
    turn = 0
    while clock.now < minutes * 60 - 30:
        clock.advance(rng.uniform(2.0, 9.0))  # the user speaks
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 100)))
        text = f"weather {words}" if turn % 25 == 24 else words
        item = {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": text}]}  # fmt: skip
        send({"type": "conversation.item.create", "item": item})
        done = send({"type": "response.create"})
        calls = [
            o
            for e in done if e["type"] == "response.done"
            for o in e["response"]["output"] if o["type"] == "function_call"
        ]  # fmt: skip
        for call in calls:
            output = {"type": "function_call_output", "call_id": call["call_id"],
                      "output": json.dumps({"sky": rng.choice(WORDS), "high_c": 21})}  # fmt: skip
            send({"type": "conversation.item.create", "item": output})
            send({"type": "response.create"})
        turn += 1
    return events


def new_text(event: Mapping[str, Any]) -> str:
    """The text an event brings that an accountant must tokenize once."""
    kind = event.get("type")
    if kind in ("response.output_audio_transcript.delta", "response.output_text.delta"):
        return str(event.get("delta") or "")
    if kind == "conversation.item.added":
        item = event.get("item") or {}
        if item.get("type") == "function_call_output":
            return str(item.get("output") or "")
        if item.get("type") == "function_call":
            return str(item.get("arguments") or "")
        return "".join(str(p.get("text") or "") for p in item.get("content") or [])
    return ""


def floor(events: Sequence[Mapping[str, Any]]) -> list[float]:
    encode = get_encoding().encode_ordinary
    times = []
    for event in events:
        start = time.perf_counter()
        encode(new_text(event))
        times.append(time.perf_counter() - start)
    return times


def engine_loop(events: Sequence[Mapping[str, Any]], *, compaction: bool = True) -> list[float]:
    engine = ContextEngine(
        "gpt-realtime", compaction=RollingSummary() if compaction else None, clock=ManualClock()
    )
    feed = engine.feed
    times = []
    for event in events:
        start = time.perf_counter()
        feed(event)
        times.append(time.perf_counter() - start)
    engine.take_records()
    return times


def best(loop: Callable[[Sequence[Mapping[str, Any]]], list[float]],
         events: Sequence[Mapping[str, Any]], results: dict[str, list[float]],
         name: str) -> None:  # fmt: skip
    gc.collect()
    gc.disable()
    try:
        times = loop(events)
    finally:
        gc.enable()
    if name not in results or sum(times) < sum(results[name]):
        results[name] = times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    events = record(args.minutes, args.seed)
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    print(f"stream: {len(events):,} server events over {args.minutes:g} minutes,"
          f" {kinds.get('response.done', 0)} responses,"
          f" {kinds.get('response.output_audio.delta', 0):,} audio deltas")  # fmt: skip
    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        best(floor, events, results, "tokenize once")
        best(engine_loop, events, results, "engine")
        best(partial(engine_loop, compaction=False), events, results, "engine, no plans")
    base = sum(results["tokenize once"])
    print(f"{'loop':<16}{'total ms':>10}{'us/event':>10}{'ratio':>8}")
    for name, times in results.items():
        total = sum(times)
        print(f"{name:<16}{total * 1e3:>10.1f}{total / len(times) * 1e6:>10.2f}"
              f"{total / base:>8.2f}")  # fmt: skip
    tenths = [results["engine"][k * len(events) // 10 : (k + 1) * len(events) // 10]
              for k in range(10)]  # fmt: skip
    per = [sum(t) / len(t) * 1e6 for t in tenths]
    print("engine us/event by tenth of the call: " + " ".join(f"{p:.1f}" for p in per))
    print(f"last tenth / first tenth: {per[-1] / per[0]:.2f}")


if __name__ == "__main__":
    main()
