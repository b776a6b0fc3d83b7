"""A Pipecat voice pipeline whose context is managed, beside Pipecat's default.

Offline, against the fake realtime server on a virtual clock: the same scripted 95-minute voice
call on Azure (30-minute sessions; the caller speaks every 30 seconds, input transcription off
as the API and Pipecat leave it) runs twice through a real Pipecat ``Pipeline`` and worker:

* with Pipecat's ``OpenAIRealtimeLLMService`` as it ships: at the 30-minute cut the server ends
  the session and the service stops listening; the rest of the call goes unanswered;
* with `ManagedRealtimeLLMService` (the service changed): the call rolls over before each cut,
  seeded with the model's summary of older turns and the caller's recent audio, is stored in
  SQLite, and reports its cost as it goes.

It prints what each answered, lost, re-sent, still holds at the end and cost. No key and no
network (loopback only); about 40 seconds::

    python examples/pipecat_call.py [--turns 190] [--db sqlite:///call.db]

Needs the extras: ``pip install "context-manager[pipecat,openai,store,testing]"``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from openai import AsyncOpenAI
from pipecat.frames.frames import EndFrame, InputAudioRawFrame, LLMContextFrame, MetricsFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.openai.realtime import events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.workers.runner import WorkerRunner

from context_manager import ManualClock, get_model_profile, get_provider_profile
from context_manager.integrations.pipecat_ai import ManagedRealtimeLLMService
from context_manager.realtime import RealtimeSummarizer
from context_manager.server.pricing import price
from context_manager.server.usage import Usage
from context_manager.store import AsyncStore
from context_manager.testing import FakeRealtimeServer
from context_manager.testing.speech import say, silence
from context_manager.testing.voicecall import phrase, summarizing_responder, voice_engine

FRAME = 960  # 20 ms of 24 kHz 16-bit mono audio, as a transport delivers it
GREETING = "Hello, I am planning a trip."


@dataclass
class Outcome:
    """What one run of the scripted call gave."""

    service: str
    turns: int
    answered: int
    sessions: int
    resent_tokens: int
    """Tokens re-sent to seed new sessions (0 when none is opened)."""
    held: int
    """The caller's turns the last session holds (as text, in a summary, or as audio)."""
    cost_usd: float
    """What the server's usage costs at the profile's prices."""


class _Responses(BaseObserver):
    """Counts the responses Pipecat reports (its usage metrics), each frame once."""

    def __init__(self) -> None:
        super().__init__()
        self._ids: set[int] = set()
        self.count = 0

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, MetricsFrame) and frame.id not in self._ids:
            self._ids.add(frame.id)
            self.count += sum(type(d).__name__ == "LLMUsageMetricsData" for d in frame.data)


def held_turns(session: Any, said: Sequence[int]) -> int:
    """How many of the caller's turns `session` holds: as text, in a summary, or as audio."""
    known = [str(p.get("text") or p.get("transcript") or "")
             for item in session.items for p in item.get("content") or []]  # fmt: skip
    known += [session.heard(str(i["id"])) or "" for i in session.items if i.get("role") == "user"]
    text = "\n".join(known)
    return sum(phrase(n) in text for n in said)


async def _answered(seen: _Responses, count: int, seconds: float) -> bool:
    for _ in range(int(seconds / 0.005)):
        if seen.count >= count:
            return True
        await asyncio.sleep(0.005)
    return False


async def scripted_call(managed: bool, turns: int = 190, db_url: str | None = None) -> Outcome:
    """The scripted voice call on Azure (`turns` turns, 190 about 95 minutes), through
    Pipecat's service as shipped or managed."""
    clock = ManualClock()
    settings = OpenAIRealtimeLLMService.Settings(
        model="gpt-realtime",
        session_properties=events.SessionProperties(output_modalities=["text"]),
    )
    said: list[int] = []
    answered = 0
    db = db_url or f"sqlite:///{tempfile.mkdtemp()}/call.db"
    async with (
        FakeRealtimeServer(
            provider="azure", clock=clock, expiry_poll_seconds=None, responder=summarizing_responder
        ) as server,  # fmt: skip
        AsyncStore(db) as store,
    ):
        llm: Any
        if managed:
            # What a pipeline adds: an engine (here the voice call's: recent audio re-sent,
            # older turns in the model's own summary), a client, the service, a store.
            engine = voice_engine("all", get_provider_profile("azure"), clock,
                                  RealtimeSummarizer())  # fmt: skip
            client = AsyncOpenAI(api_key="offline", base_url=server.base_url)
            llm = ManagedRealtimeLLMService(engine, client=client, store=store,
                                            settings=settings)  # fmt: skip
        else:
            llm = OpenAIRealtimeLLMService(api_key="offline", base_url=server.url,
                                           settings=settings)  # fmt: skip
        seen = _Responses()
        worker = PipelineWorker(Pipeline([llm]), observers=[seen], idle_timeout_secs=None,
                                params=PipelineParams(enable_usage_metrics=True))  # fmt: skip
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)

        async def drive() -> None:
            nonlocal answered
            deaf = False
            await worker.queue_frames([LLMContextFrame(LLMContext(
                [{"role": "user", "content": GREETING}]))])  # fmt: skip
            await _answered(seen, 1, 10.0)
            for n in range(turns):
                said.append(n)
                clock.advance(30.0)
                if deaf:
                    continue  # the service has stopped listening: this turn is lost
                before = seen.count
                audio = say(phrase(n)) + silence(1000)
                for at in range(0, len(audio), FRAME):
                    await worker.queue_frame(InputAudioRawFrame(
                        audio=audio[at:at + FRAME], sample_rate=24000, num_channels=1))  # fmt: skip
                if await _answered(seen, before + 1, 10.0):
                    answered += 1
                else:
                    deaf = True
                if managed:  # the same call every run: its own work settles each turn
                    await llm.connection.idle()
            if managed:
                await llm.connection.flush()
            await worker.queue_frame(EndFrame())

        await asyncio.gather(runner.run(), drive())
    prices = get_model_profile("gpt-realtime").prices_per_million
    cost = sum(price(Usage.from_dict(e["response"]["usage"] or {}), prices).total
               for s in server.sessions for e in s.sent if e["type"] == "response.done")  # fmt: skip
    resent = sum(r.seed_tokens for r in llm.connection.rollovers) if managed else 0
    name = "ManagedRealtimeLLMService" if managed else "OpenAIRealtimeLLMService"
    return Outcome(name, len(said), answered, len(server.sessions), resent,
                   held_turns(server.sessions[-1], said), cost)  # fmt: skip


def comparison_table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a markdown table (docs/pipecat.md shows this one)."""
    lines = [
        "| service | turns answered | turns lost | sessions | tokens re-sent"
        " | caller's turns the last session holds | USD | USD per answered turn |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        per_turn = o.cost_usd / o.answered if o.answered else 0.0
        lines.append(f"| `{o.service}` | {o.answered:,} | {o.turns - o.answered:,}"
                     f" | {o.sessions} | {o.resent_tokens:,} | {o.held} / {o.turns}"
                     f" | {o.cost_usd:.4f} | {per_turn:.4f} |")  # fmt: skip
    return "\n".join(lines)


def quiet() -> None:
    """Pipecat's and the library's logs off (the shipped service logs its end at the cut)."""
    logger.remove()
    logger.add(sys.stderr, level="CRITICAL")
    logging.getLogger("context_manager").setLevel(logging.ERROR)


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
    parser.add_argument("--turns", type=_turns, default=190, help="190: about 95 minutes")
    parser.add_argument("--db", default=None, help="the managed run's store (SQLAlchemy URL)")
    args = parser.parse_args(argv)
    quiet()
    outcomes = [asyncio.run(scripted_call(m, args.turns, args.db)) for m in (False, True)]
    print(comparison_table(outcomes))


if __name__ == "__main__":
    main()
