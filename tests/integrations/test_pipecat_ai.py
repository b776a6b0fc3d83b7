"""Pipecat's real pipeline and OpenAI realtime service, its context managed, on the fake server.

A 95-minute Azure voice call: the caller's audio goes in as Pipecat's ``InputAudioRawFrame``s
through a real ``Pipeline`` and worker, the server's turn detection ends each turn. Three
rollovers before each cut, every turn said before a switch present in each new session (in
the summary, as text or as audio heard again), every item stored once, the cost the fake
server's usage priced by the profile, a dropped socket, and a resume in a new process.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from openai import AsyncOpenAI
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    InputAudioRawFrame,
    LLMContextFrame,
    MetricsFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.openai.realtime import events
from pipecat.workers.runner import WorkerRunner

from context_manager.errors import ConfigurationError
from context_manager.integrations.pipecat_ai import (
    ContextMetricsData,
    ContextReport,
    ManagedRealtimeLLMService,
)
from context_manager.live import ContextEngine
from context_manager.profiles import get_provider_profile
from context_manager.realtime import RealtimeSummarizer
from context_manager.server import ManualClock
from context_manager.store import AsyncStore
from context_manager.testing import FakeRealtimeServer, Reply
from context_manager.testing.speech import say, silence
from context_manager.testing.voicecall import phrase, summarizing_responder, voice_engine

from ..engine.test_realtime_e2e import _stored_rows
from .checks import assert_the_cost_is_the_servers, in_a_new_process, served_usd

pytestmark = pytest.mark.network_allowed

FRAME = 960  # bytes of 20 ms of 24 kHz 16-bit mono audio, as a transport delivers it


async def run_worker(pipeline: Pipeline, observer: BaseObserver,
                     drive: Callable[[Any], Awaitable[None]]) -> None:  # fmt: skip
    """Run `pipeline` in Pipecat's worker until `drive` (given the worker) has ended it.

    A `drive` that fails cancels the worker first, so the failure is reported, not a hang.
    """
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_usage_metrics=True),
                            observers=[observer], idle_timeout_secs=None)  # fmt: skip
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.ensure_future(runner.run())
    try:
        await drive(worker)
    except BaseException:
        await runner.cancel()
        raise
    finally:
        await asyncio.wait_for(running, 60)


class Seen(BaseObserver):
    """The frames that went by: Pipecat's usage metrics, ours, and errors (each frame once)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[int] = set()
        self.context: list[ContextReport] = []
        self.usage = 0
        self.errors: list[str] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if frame.id in self.ids:
            return
        self.ids.add(frame.id)
        if isinstance(frame, MetricsFrame):
            for item in frame.data:
                if isinstance(item, ContextMetricsData):
                    self.context.append(item.value)
                elif type(item).__name__ == "LLMUsageMetricsData":
                    self.usage += 1
        elif isinstance(frame, ErrorFrame):
            self.errors.append(str(frame.error))


@dataclass
class Call:
    said: list[int] = field(default_factory=list)
    switched: list[int] = field(default_factory=list)  # turns said before each rollover
    reports: list[ContextReport] = field(default_factory=list)


def _service(engine: ContextEngine, server: FakeRealtimeServer, store: AsyncStore,
             conversation_id: str | None = None) -> ManagedRealtimeLLMService:  # fmt: skip
    client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    settings = ManagedRealtimeLLMService.Settings(
        model="gpt-realtime",
        session_properties=events.SessionProperties(output_modalities=["text"]),
    )
    return ManagedRealtimeLLMService(engine, client=client, store=store,
                                     conversation_id=conversation_id, settings=settings)  # fmt: skip


def answers(llm: ManagedRealtimeLLMService) -> int:
    """Responses Pipecat has seen end (the engine's out-of-band summaries are not among them)."""
    return sum(r.kind == "response" for r in llm.reports)


async def _answered(llm: ManagedRealtimeLLMService, responses: int, seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if answers(llm) >= responses:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"no response {responses} within {seconds} s")


async def _voice_call(db_url: str, minutes: float, drop_at_minute: float | None = None
                      ) -> tuple[Call, Seen, ManagedRealtimeLLMService, Any, str]:  # fmt: skip
    clock = ManualClock()
    # Input transcription off (the API's default, and Pipecat's): the caller's turns are audio
    # only. The recent ones are re-sent as audio, the older ones carried by the realtime
    # model's own summary, asked out of band before each rollover.
    engine = voice_engine("all", get_provider_profile("azure"), clock, RealtimeSummarizer())
    call, seen = Call(), Seen()
    async with (
        FakeRealtimeServer(
            provider="azure",
            clock=clock,
            expiry_poll_seconds=None,
            responder=summarizing_responder,
        ) as server,  # fmt: skip
        AsyncStore(db_url) as store,
    ):
        llm = _service(engine, server, store)

        @llm.event_handler("on_context_report")  # type: ignore[untyped-decorator]
        async def on_report(service: Any, report: ContextReport) -> None:
            call.reports.append(report)
            if report.kind == "rollover":
                call.switched.append(len(call.said))

        async def drive(worker: Any) -> None:
            context = LLMContext([{"role": "user", "content": "Hello, I am planning a trip."}])
            await worker.queue_frames([LLMContextFrame(context)])
            await _answered(llm, 1)
            n = 0
            dropped = False
            while clock.now < minutes * 60:
                if drop_at_minute is not None and not dropped and clock.now >= drop_at_minute * 60:  # fmt: skip
                    await server.drop()
                    dropped = True
                before = answers(llm)
                audio = say(phrase(n)) + silence(1000)
                for at in range(0, len(audio), FRAME):
                    await worker.queue_frame(InputAudioRawFrame(
                        audio=audio[at:at + FRAME], sample_rate=24000, num_channels=1))  # fmt: skip
                await _answered(llm, before + 1)
                call.said.append(n)
                clock.advance(30.0)
                n += 1
            assert llm.connection is not None
            await llm.connection.flush()
            await worker.queue_frame(EndFrame())

        await run_worker(Pipeline([llm]), seen, drive)
        cid = llm.conversation_id
        assert cid is not None
        served = served_usd(server.sessions)
        return call, seen, llm, (served, server.sessions), cid


def test_a_95_minute_azure_voice_call_through_pipecat(db_url: str) -> None:
    call, seen, llm, (served, sessions), cid = asyncio.run(_voice_call(db_url, 95))
    conn = llm.connection
    assert conn is not None
    assert [r.reason for r in conn.rollovers] == ["rollover"] * 3
    assert len(sessions) == 4 and len(call.switched) == 3
    assert seen.errors == []
    # Every turn said before each switch is in the new session: in the summary, as text, or
    # as the caller's audio sent again (the server hears it again).
    for index, before in enumerate(call.switched, start=1):
        session = sessions[index]
        known = [str(p.get("text") or p.get("transcript") or "")
                 for item in session.items for p in item.get("content") or []]  # fmt: skip
        known += [session.heard(str(i["id"])) or "" for i in session.items
                  if i.get("role") == "user"]  # fmt: skip
        text = "\n".join(known)
        assert [n for n in call.said[:before] if phrase(n) not in text] == []
    assert llm.engine.uncarried_turns == 0
    # Reports: as event handler calls and as Pipecat metrics frames, the same ones.
    assert [r.rollovers for r in call.reports if r.kind == "rollover"] == [1, 2, 3]
    assert call.reports == llm.reports == seen.context
    # Pipecat's own usage metrics, untouched: one per response it saw (the engine's summaries,
    # asked out of band, are priced in the reports but never reach Pipecat).
    answered = [r for r in call.reports if r.kind == "response"]
    assert seen.usage == len(answered) < llm.engine.responses
    # Every user turn stored once (the greeting and each spoken turn); the cost the server's.
    rows = _stored_rows(db_url, cid)
    users = [c for c, _ in rows if c.get("role") == "user"]
    assert len(users) == len(call.said) + 1  # none missing, none twice
    assert_the_cost_is_the_servers(db_url, cid, llm.engine, served)


def test_a_dropped_socket_mid_call_goes_on_in_a_new_session(db_url: str) -> None:
    call, seen, llm, (_, sessions), cid = asyncio.run(_voice_call(db_url, 20, drop_at_minute=12))
    conn = llm.connection
    assert conn is not None
    assert [r.reason for r in conn.rollovers] == ["disconnected"]
    assert len(sessions) == 2
    assert seen.errors == []  # Pipecat never saw the drop
    users = [c for c, _ in _stored_rows(db_url, cid) if c.get("role") == "user"]
    assert len(users) == len(call.said) + 1


RESUME = textwrap.dedent(
    """
    import asyncio, sys
    from openai import AsyncOpenAI
    from pipecat.frames.frames import EndFrame, LLMContextFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.services.openai.realtime import events
    from context_manager.integrations.pipecat_ai import ManagedRealtimeLLMService
    from context_manager.live import ContextEngine
    from context_manager.store import AsyncStore
    from tests.integrations.test_pipecat_ai import Seen, _answered, run_worker

    async def main(url, db_url, cid):
        engine = ContextEngine("gpt-realtime", "azure")
        async with AsyncStore(db_url) as store:
            client = AsyncOpenAI(api_key="test-key", base_url=url)
            settings = ManagedRealtimeLLMService.Settings(
                model="gpt-realtime",
                session_properties=events.SessionProperties(output_modalities=["text"]))
            llm = ManagedRealtimeLLMService(engine, client=client, store=store,
                                            conversation_id=cid, settings=settings)

            async def drive(worker):
                context = LLMContext([{"role": "user", "content": "I am back, where were we?"}])
                await worker.queue_frames([LLMContextFrame(context)])
                await _answered(llm, 1)
                await llm.connection.flush()
                await worker.queue_frame(EndFrame())

            await run_worker(Pipeline([llm]), Seen(), drive)
            print(llm.connection.rollovers[0].reason, engine.responses, engine.uncarried_turns)

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def _first_call_then_resume(db_url: str) -> tuple[str, Any, Call, str]:
    call, _, llm, (_, _), cid = await _voice_call(db_url, 25)
    async with FakeRealtimeServer(provider="azure", responder=lambda items: Reply("Welcome back.")) as server:  # fmt: skip
        out = await in_a_new_process(RESUME, server.base_url, db_url, cid)
        return out, server.sessions, call, cid


def test_a_call_resumes_in_a_new_process_from_the_store(db_url: str) -> None:
    out, sessions, call, cid = asyncio.run(_first_call_then_resume(db_url))
    reason, responses, uncarried = out.split()
    assert (reason, responses) == ("resume", "1")
    resumed = sessions[-1]
    known = "\n".join(str(p.get("text") or p.get("transcript") or "")
                      for item in resumed.items for p in item.get("content") or [])  # fmt: skip
    # The store keeps no audio: the caller's turns come back in the model's stored summary,
    # and those after it are reported as not carried (the new process says how many).
    carried = [n for n in call.said if phrase(n) in known]
    assert carried == call.said[: len(carried)] and len(carried) >= len(call.said) // 2
    assert int(uncarried) == len(call.said) - len(carried)
    assert "I am back, where were we?" in known
    users = [c for c, _ in _stored_rows(db_url, cid) if c.get("role") == "user"]
    assert len(users) == len(call.said) + 2  # the first call's, and the new words, once
    assert users[-1].get("text") == "I am back, where were we?"


def test_bad_arguments_are_one_clear_error() -> None:
    engine = ContextEngine("gpt-realtime", "openai")
    with pytest.raises(ConfigurationError, match="client must be an AsyncOpenAI .* got NoneType"):
        ManagedRealtimeLLMService(engine, client=None)  # type: ignore[arg-type]
    client = AsyncOpenAI(api_key="test-key", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="drop api_key, base_url"):
        ManagedRealtimeLLMService(engine, client=client, api_key="k", base_url="wss://x")
    llm = ManagedRealtimeLLMService(engine, client=client)
    with pytest.raises(ConfigurationError, match="reset_conversation is not available"):
        asyncio.run(llm.reset_conversation())


def test_a_service_that_cannot_connect_ends_the_pipeline_with_one_clear_error() -> None:
    async def main() -> list[str]:
        engine = ContextEngine("gpt-realtime", "openai")
        client = AsyncOpenAI(api_key="secret-key", base_url="http://127.0.0.1:9")  # closed
        llm = ManagedRealtimeLLMService(engine, client=client)
        seen = Seen()
        worker = PipelineWorker(Pipeline([llm]), observers=[seen], idle_timeout_secs=None)
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await asyncio.wait_for(runner.run(), 60)  # ends by itself: no EndFrame is queued
        return seen.errors

    errors = asyncio.run(main())
    assert errors == ["could not connect: could not open a session (ConnectionRefusedError)"]
