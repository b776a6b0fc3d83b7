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

Then the user's own audio, which the engine keeps (`AudioKeeper`, ``engine.audio``) so a
seed can re-send turns nobody transcribed. A synthetic call appends PCM16 at 24 kHz (48,000
bytes a second) in 100 ms ``input_audio_buffer.append`` chunks, the user speaking 4 s turns
between silences of 0.8-2 s, each ended by the server's ``speech_started``/``speech_stopped``
(the VAD marks on the session's input timeline), ``committed`` and ``conversation.item.added``.
It prints the audio kept and the memory traced (tracemalloc) by a keeper alone and by a whole
engine (appends through `ContextEngine.sent`, server events through `ContextEngine.feed`):
per minute of kept speech (2.88 MB of PCM16), and with a 60 s bound flat at the bound however
long the call (``--audio-minutes`` and three times as long; ``evicted`` counts the turns let
go). Then the microseconds per append through `ContextEngine.sent` with the keeper on (the
default 120 s) over the keeper off (``keep_user_audio_seconds=0``, the baseline), with
base64-decoding the chunk alone for scale, and the keeper's time per append by tenth of the
long feed, last tenth over first (target: about 1).

Timings are the best of ``--repeats`` interleaved runs. Run:
``python benchmarks/bench_engine.py [--minutes 60] [--repeats 5] [--audio-minutes 10]``
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import random
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from context_manager import ContextEngine, ManualClock, Message, get_encoding, get_provider_profile
from context_manager.compaction import RollingSummary
from context_manager.items import FunctionCallOutput, Item
from context_manager.live.audio import AudioKeeper
from context_manager.testing import FakeSession, Reply

WORDS = (
    "booking flight Oslo Lisbon seat window aisle refund voucher code K7QX2P Tuesday Friday "
    "March April passport name Marcelo Alice baggage allowance upgrade premium economy fare "
    "price euros dollars callback number confirm change cancel hotel night breakfast transfer "
    "airport terminal gate delay weather forecast rain meeting schedule reminder allergy"
).split()


# One session for the whole call, so the window fills and stays full (a real call would roll
# over at 60 minutes; the engine's cost at a full window is what is measured here).
UNBOUNDED = get_provider_profile("openai").model_copy(update={"max_session_seconds": 1e9})


def record(minutes: float, seed: int) -> list[tuple[float, dict[str, Any]]]:
    """The server events of a `minutes`-long call, in order, each with its time."""
    rng = random.Random(seed)
    clock = ManualClock()

    def answer(items: Sequence[Item]) -> Reply:
        last = items[-1]
        if isinstance(last, Message) and last.text.startswith("weather"):
            return Reply.call("get_weather", {"city": rng.choice(WORDS)})
        if isinstance(last, FunctionCallOutput):
            return Reply.speech(f"It will be {last.output} there.")
        return Reply.speech(" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))))

    session = FakeSession(clock=clock, responder=answer, send_audio=True, provider=UNBOUNDED)
    events = [(clock.now, e) for e in session.opening()]

    TRUNCATED.clear()

    def send(event: Mapping[str, Any]) -> list[dict[str, Any]]:
        before = len(session.model.dropped_ids)
        out = session.receive(event)
        events.extend((clock.now, e) for e in out)
        if event["type"] == "response.create":
            TRUNCATED.append((clock.now, len(session.model.dropped_ids) > before))
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


BLOCK = 256
"""Events timed together: the clock is read once per block, not around every event."""


def floor(events: Sequence[tuple[float, Mapping[str, Any]]]) -> list[float]:
    """Seconds per block of `BLOCK` events: encode each event's new text, nothing else."""
    encode = get_encoding().encode_ordinary
    texts = [new_text(e) for _, e in events]
    times = []
    for k in range(0, len(texts), BLOCK):
        block = texts[k : k + BLOCK]
        start = time.perf_counter()
        for text in block:
            encode(text)
        times.append(time.perf_counter() - start)
    return times


def engine_loop(
    events: Sequence[tuple[float, Mapping[str, Any]]], *, compaction: bool = True
) -> list[float]:
    """Seconds per block of `BLOCK` events fed to a fresh engine whose clock follows them."""
    clock = ManualClock()
    engine = ContextEngine(
        "gpt-realtime", compaction=RollingSummary() if compaction else None, clock=clock
    )
    feed, set_time = engine.feed, clock.set
    times = []
    for k in range(0, len(events), BLOCK):
        block = events[k : k + BLOCK]
        start = time.perf_counter()
        for t, event in block:
            set_time(t)
            feed(event)
        times.append(time.perf_counter() - start)
    engine.take_records()
    return times


T = TypeVar("T")


def best(loop: Callable[[Sequence[T]], list[float]], events: Sequence[T],
         results: dict[str, list[float]], name: str) -> None:  # fmt: skip
    gc.collect()
    gc.disable()
    try:
        times = loop(events)
    finally:
        gc.enable()
    if name not in results or sum(times) < sum(results[name]):
        results[name] = times


# ---------------------------------------------------------------------- the user's audio

CHUNK_MS = 100  # one input_audio_buffer.append
PCM_BYTES_PER_MS = 48  # PCM16, 24 kHz, mono
SPEECH_MS = 4_000  # a user turn
SILENCE_MS = 500  # server_vad's silence_duration_ms: the silence that ends a turn
BOUND_SECONDS = 60.0
Step = tuple[str, dict[str, Any]]  # ("sent" | "feed", event)


def audio_call(minutes: float, seed: int) -> Iterator[Step]:
    """The client's appends and the server's VAD events of a call the user speaks in.

    It ends with the first commit after `minutes` of audio, so only a turn's trailing
    silence is left uncommitted.
    """
    rng = random.Random(seed)
    pool = [
        base64.b64encode(rng.randbytes(CHUNK_MS * PCM_BYTES_PER_MS)).decode() for _ in range(16)
    ]
    session = {"type": "realtime", "id": "sess_audio", "model": "gpt-realtime",
               "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}}  # fmt: skip
    yield "feed", {"type": "session.created", "session": session}
    turn, previous, started, now = 0, None, False, 0  # now: ms of the session's input timeline
    start = rng.randint(300, 1500)
    while True:
        yield "sent", {"type": "input_audio_buffer.append", "audio": pool[now // CHUNK_MS % 16]}
        now, item_id = now + CHUNK_MS, f"item_u{turn}"
        if not started and now > start:
            started = True
            yield "feed", {"type": "input_audio_buffer.speech_started",
                           "audio_start_ms": start, "item_id": item_id}  # fmt: skip
        if started and now >= start + SPEECH_MS + SILENCE_MS:
            yield "feed", {"type": "input_audio_buffer.speech_stopped",
                           "audio_end_ms": start + SPEECH_MS, "item_id": item_id}  # fmt: skip
            yield "feed", {"type": "input_audio_buffer.committed",
                           "previous_item_id": previous, "item_id": item_id}  # fmt: skip
            item = {"id": item_id, "type": "message", "role": "user", "status": "completed",
                    "content": [{"type": "input_audio", "transcript": None}]}  # fmt: skip
            yield "feed", {"type": "conversation.item.added",
                           "previous_item_id": previous, "item": item}  # fmt: skip
            if now >= minutes * 60_000:
                return
            turn, previous, started = turn + 1, item_id, False
            start = now + rng.randint(300, 1500)


def keeper_steps(keeper: AudioKeeper) -> Callable[[Step], None]:
    """Feed a bare keeper as the engine does: appends, and commits with their VAD marks."""
    marks: dict[str, dict[str, int]] = {}

    def step(s: Step) -> None:
        kind, event = s[0], s[1]
        if kind == "sent":
            keeper.appended(event["audio"])
        elif event["type"].startswith("input_audio_buffer.speech_"):
            key = "audio_start_ms" if event["type"].endswith("started") else "audio_end_ms"
            marks.setdefault(event["item_id"], {})[key] = event[key]
        elif event["type"] == "input_audio_buffer.committed":
            m = marks.pop(event["item_id"], {})
            keeper.committed(event["item_id"], m.get("audio_start_ms"), m.get("audio_end_ms"))

    return step


def engine_steps(engine: ContextEngine) -> Callable[[Step], None]:
    def step(s: Step) -> None:
        if s[0] == "sent":
            engine.sent(s[1])
        else:
            engine.feed(s[1])

    return step


@dataclass
class Kept:
    what: str
    minutes: float  # of audio appended
    turns: int
    keeper: AudioKeeper
    traced: int  # bytes the feed left allocated
    peak: int  # bytes at most, during the feed


def kept_memory(what: str, minutes: float, bound: float, seed: int, *, engine: bool) -> Kept:
    """Feed `minutes` of the call to a keeper (or a whole engine) under tracemalloc."""
    steps = audio_call(minutes, seed)
    if engine:
        whole = ContextEngine("gpt-realtime", clock=ManualClock(), keep_user_audio_seconds=bound)
        keeper, step = whole.audio, engine_steps(whole)
    else:
        keeper = AudioKeeper(bound)
        step = keeper_steps(keeper)
    turns = appends = 0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for s in steps:
            step(s)
            appends += s[0] == "sent"
            turns += s[1]["type"] == "input_audio_buffer.committed"
        del s
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    fed = appends * CHUNK_MS / 60_000
    return Kept(what, fed, turns, keeper, after - before, peak - before)


def appends_loop(steps: Sequence[Step], *, keep: float) -> list[float]:
    """Microseconds per append through `ContextEngine.sent`; server events fed, not timed."""
    engine = ContextEngine("gpt-realtime", clock=ManualClock(), keep_user_audio_seconds=keep)
    sent, feed = engine.sent, engine.feed
    times = []
    for kind, event in steps:
        if kind == "sent":
            start = time.perf_counter()
            sent(event)
            times.append(time.perf_counter() - start)
        else:
            feed(event)
    return times


def decode_loop(steps: Sequence[Step]) -> list[float]:
    """The floor: base64-decode each append's chunk, nothing else."""
    decode = base64.b64decode
    times = []
    for kind, event in steps:
        if kind == "sent":
            start = time.perf_counter()
            decode(event["audio"], validate=True)
            times.append(time.perf_counter() - start)
    return times


def user_audio(minutes: float, repeats: int, seed: int) -> None:
    mb = 1e6
    long = 3 * minutes
    get_encoding()  # the tokenizer loaded before anything is traced
    rows = [
        kept_memory(f"{name}, {bound:g} s", fed, bound, seed, engine=name == "engine")
        for name in ("keeper", "engine")
        for fed, bound in ((minutes, minutes * 60), (minutes, BOUND_SECONDS), (long, BOUND_SECONDS))
    ]
    print()
    print("user audio kept (PCM16 24 kHz, 100 ms appends, 4 s turns; memory by tracemalloc):")
    print(f"{'bound':<17}{'fed min':>8}{'turns':>7}{'kept s':>8}{'evicted':>8}"
          f"{'kept MB':>9}{'traced MB':>10}{'peak MB':>9}")  # fmt: skip
    for r in rows:
        k = r.keeper
        print(f"{r.what:<17}{r.minutes:>8.2f}{r.turns:>7}{k.kept_seconds:>8.1f}{k.evicted:>8}"
              f"{k.kept_bytes / mb:>9.2f}{r.traced / mb:>10.2f}{r.peak / mb:>9.2f}")  # fmt: skip
    alone, short, flat, whole, whole_short, whole_flat = rows
    kept_min = alone.keeper.kept_seconds / 60
    print(f"per minute of kept speech: kept {alone.keeper.kept_bytes / kept_min / mb:.2f} MB,"
          f" traced {alone.traced / kept_min / mb:.2f} MB (keeper),"
          f" {whole.traced / kept_min / mb:.2f} MB (engine)")  # fmt: skip
    print(f"bound {BOUND_SECONDS:g} s, {long:g} min fed / {minutes:g} min fed:"
          f" traced {flat.traced / short.traced:.2f} (keeper),"
          f" {whole_flat.traced / whole_short.traced:.2f} (engine)")  # fmt: skip
    grown = (whole_flat.traced - whole_short.traced) / (whole_flat.turns - whole_short.turns)
    print(f"engine growth at the bound: {grown / 1e3:.2f} KB per turn (its items: history, mirror)")

    steps = list(audio_call(long, seed))
    results: dict[str, list[float]] = {}
    loops: dict[str, Callable[[Sequence[Step]], list[float]]] = {
        "keeper off": partial(appends_loop, keep=0),
        "keeper on (120 s)": partial(appends_loop, keep=120.0),
        "b64decode alone": decode_loop,
    }
    for _ in range(repeats):
        for name, loop in loops.items():
            best(loop, steps, results, name)
    base = sum(results["keeper off"])
    n = len(results["keeper off"])
    print(f"\nengine.sent per input_audio_buffer.append ({n:,} appends, {long:g} minutes):")
    print(f"{'loop':<20}{'total ms':>10}{'us/append':>11}{'x keeper off':>14}")
    for name, times in results.items():
        total = sum(times)
        print(f"{name:<20}{total * 1e3:>10.1f}{total / n * 1e6:>11.2f}{total / base:>14.2f}")
    on = results["keeper on (120 s)"]
    floor_ms = base + sum(results["b64decode alone"])
    print(f"keeper on / (keeper off + b64decode alone): {sum(on) / floor_ms:.2f}")
    per = [sum(t) / len(t) * 1e6 for t in (on[k * n // 10 : (k + 1) * n // 10] for k in range(10))]
    print("keeper on us/append by tenth of the feed: " + " ".join(f"{p:.2f}" for p in per))
    print(f"keeper on, last tenth / first tenth: {per[-1] / per[0]:.2f}")


TRUNCATED: list[tuple[float, bool]] = []
"""(time, dropped anything) of every response of the last `record`, from the fake's model."""


def _full_window() -> float:
    """When the window is full: the time of the first response that dropped items."""
    return next((t for t, hit in TRUNCATED if hit), float("inf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--audio-minutes", type=float, default=10.0,
                        help="user audio fed to the keeper (and three times as long)")  # fmt: skip
    args = parser.parse_args()
    logging.getLogger("context_manager").setLevel(logging.ERROR)  # forecasts: not timed here
    events = record(args.minutes, args.seed)
    kinds: dict[str, int] = {}
    for _, e in events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    done = [(t, e) for t, e in events if e["type"] == "response.done"]
    full_from = _full_window()
    print(f"stream: {len(events):,} server events over {args.minutes:g} minutes,"
          f" {len(done)} responses, {kinds.get('response.output_audio.delta', 0):,} audio"
          f" deltas; the window is full from minute {full_from / 60:.0f} ("
          f"{sum(h for _, h in TRUNCATED)} of {len(TRUNCATED)} responses truncate)")  # fmt: skip
    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        best(floor, events, results, "tokenize once")
        best(engine_loop, events, results, "engine")
        best(partial(engine_loop, compaction=False), events, results, "engine, no plans")
    hour = [k for k in range(0, len(events), BLOCK) if events[k][0] < 3600]
    full = [k for k in range(0, len(events), BLOCK) if events[k][0] >= full_from]
    spans = {"first hour": hour, "full window": full, "whole call": range(0, len(events), BLOCK)}
    print(f"{'loop':<18}{'span':<13}{'events':>8}{'us/event':>10}{'x tokenize':>12}")
    per: dict[tuple[str, str], float] = {}
    for name, times in results.items():
        for span, starts in spans.items():
            blocks = [k // BLOCK for k in starts]
            n = sum(min(BLOCK, len(events) - k) for k in starts)
            if not n:
                continue
            per[name, span] = sum(times[b] for b in blocks) / n * 1e6
    for name in results:
        for span in spans:
            if (name, span) not in per:
                continue
            n = sum(min(BLOCK, len(events) - k) for k in spans[span])
            ratio = per[name, span] / per["tokenize once", span]
            print(f"{name:<18}{span:<13}{n:>8,}{per[name, span]:>10.2f}{ratio:>12.2f}")
    if ("engine", "full window") in per:
        grown = per["engine", "full window"] / per["engine", "first hour"]
        print(f"engine, full window / first hour: {grown:.2f} (target <= 2)")
    print(f"engine / tokenize once, first hour: "
          f"{per['engine', 'first hour'] / per['tokenize once', 'first hour']:.2f}"
          f" (target 1.5)")  # fmt: skip
    user_audio(args.audio_minutes, args.repeats, args.seed)


if __name__ == "__main__":
    main()
