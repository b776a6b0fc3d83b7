"""A scripted voice call with input transcription off, and what each new session still knows.

`run_voice_call` drives a long call through `context_manager.realtime.connect` with the real
``openai`` client against a `FakeRealtimeServer` that hears scripted speech: every user turn
is audio only (`say`), spoken with server voice activity detection or, every few turns, by
push-to-talk (manual commit); after each answer the application asks an out-of-band question
(``conversation: "none"``, as a guardrail or a classifier would); a drop can be injected.
At each rollover it checks which of the caller's turns so far the new session holds (as audio
the fake hears again, as text, or in a summary), and at the end it prices the fake server's
own usage reports with the profile, to compare with the engine's total.

The carry modes (`CARRY_MODES`): ``audio`` (the user's own audio re-sent), ``summary`` (the
realtime model's own out-of-band summary), ``transcription`` (switched on by the engine, the
seed carries text), ``all`` (audio for recent turns, the model's summary for older ones) and
``none`` (what the API's defaults give a text seed: nothing of the caller's turns).

Needs the ``testing``, ``openai`` and ``store`` extras.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..compaction import RollingSummary
from ..items import Item, Message
from ..live import ContextEngine
from ..profiles import ProviderProfile, get_provider_profile
from ..rollover import RolloverPolicy
from ..server import ManualClock, Usage, price
from .replies import Reply
from .server import FakeRealtimeServer
from .speech import say, silence

__all__ = [
    "CARRY_MODES",
    "VoiceCallReport",
    "carry_table",
    "phrase",
    "run_voice_call",
    "summarizing_responder",
    "voice_engine",
]

CARRY_MODES = ("audio", "summary", "transcription", "all", "none")
"""How a call carries the caller's untranscribed turns into a new session."""

_WORDS = ("Oslo", "Bergen", "Tromso", "Lima", "Quito", "Accra", "Hanoi", "Perth", "Malmo")


def phrase(n: int) -> str:
    """What the caller says at turn `n` (distinct words: each turn can be found again)."""
    return f"code {n:04d} {_WORDS[n % len(_WORDS)]} please"


def summarizing_responder(items: Sequence[Item]) -> Reply:
    """The fake model of a voice call: "Noted." to the caller.

    Asked to summarize (an out-of-band request), it gives the words it heard and the
    summaries before, joined.
    """
    last = items[-1] if items else None
    if isinstance(last, Message) and last.role == "system" and "Summarize" in last.text:
        # The fake "model" summarizes what it heard, older summaries included.
        parts = [i.text.removeprefix("Summary of what came before:\n") for i in items[:-1]
                 if isinstance(i, Message) and i.role in ("user", "system") and i.text]  # fmt: skip
        return Reply("; ".join(parts))
    return Reply.speech("Noted.")


def voice_engine(
    mode: str, provider: ProviderProfile, clock: ManualClock, summarizer: Any = None
) -> ContextEngine:
    """The engine of one carry mode (see the module)."""
    if mode not in CARRY_MODES:
        raise ValueError(f"unknown carry mode {mode!r}; known: {', '.join(CARRY_MODES)}")
    keep = 120.0 if mode in ("audio", "all") else 0.0
    compaction = None
    if mode in ("summary", "all"):
        # The model's summaries keep the call's summary fresh (so a drop, which leaves no
        # session to ask, still finds one), and write the seed's at each planned rollover.
        rollover = RolloverPolicy(carry="summary", summary_tokens=1500, summarizer=summarizer)
        compaction = RollingSummary(trigger=0.05, keep=8, budget=1500, summarizer=summarizer)
    elif mode == "transcription":
        rollover = RolloverPolicy(carry="summary")  # the extractive summary reads transcripts
    else:
        rollover = RolloverPolicy()
    return ContextEngine(
        "gpt-realtime", provider, clock=clock, rollover=rollover, keep_user_audio_seconds=keep,
        compaction=compaction,
        transcription="gpt-4o-mini-transcribe" if mode == "transcription" else None,
    )  # fmt: skip


@dataclass
class VoiceCallReport:
    """What one scripted voice call kept and cost."""

    mode: str
    turns: int = 0
    rollovers: list[str] = field(default_factory=list)
    seed_tokens: list[int] = field(default_factory=list)
    """Tokens of each new session's seed."""
    carried: list[float] = field(default_factory=list)
    """Per new session: the share of the caller's turns so far that it holds."""
    missing: list[list[int]] = field(default_factory=list)
    """Per new session: the turns (numbers) it lacks."""
    engine_cost_usd: float = 0.0
    server_cost_usd: float = 0.0
    """The fake server's own usage reports (responses and transcription), priced."""
    out_of_band: int = 0
    stored_user_items: int = 0
    uncarried: int = 0
    """User turns the engine reported it could not carry."""
    errors: list[str] = field(default_factory=list)
    """Codes of the server errors the application received."""

    def row(self) -> list[str]:
        """The report as a row of `carry_table`."""
        seed = sum(self.seed_tokens) / len(self.seed_tokens) if self.seed_tokens else 0
        return [
            f"`{self.mode}`",
            f"{seed:,.0f}",
            f"{min(self.carried, default=1.0):.1%}",
            f"{self.uncarried:,}",
            f"{self.out_of_band:,}",
            f"${self.engine_cost_usd:.3f}",
        ]


def carry_table(reports: Sequence[VoiceCallReport]) -> str:
    """The reports as a markdown table (docs/agent-builders.md shows one per carry mode)."""
    header = ["carry", "seed tokens (mean)", "caller's turns held (lowest)",
              "not carried (turns, all seeds)", "out-of-band responses",
              "USD per call"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(r.row()) + " |" for r in reports]
    return "\n".join(lines)


def _chunks(audio: bytes, size: int = 9600) -> list[str]:
    return [base64.b64encode(audio[n : n + size]).decode() for n in range(0, len(audio), size)]


async def run_voice_call(
    mode: str,
    db_url: str,
    *,
    minutes: float = 95.0,
    provider: ProviderProfile | str = "azure",
    seconds_per_turn: float = 30.0,
    push_to_talk_every: int = 4,
    drop_at_minute: float | None = None,
) -> VoiceCallReport:
    """Run the call in `mode` (see the module) and report it."""
    from openai import AsyncOpenAI

    from ..realtime import RealtimeSummarizer, connect
    from ..store import AsyncStore

    profile = get_provider_profile(provider) if isinstance(provider, str) else provider
    clock = ManualClock()
    engine = voice_engine(mode, profile, clock, RealtimeSummarizer())
    report = VoiceCallReport(mode)
    said: list[int] = []
    async with (
        FakeRealtimeServer(
            provider=profile, clock=clock, responder=summarizing_responder
        ) as server,
        AsyncStore(db_url) as store,
    ):
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(client, model="gpt-realtime", engine=engine, store=store) as conn:
            call = _Call(conn, server, report, said)
            dropped = False
            n = 0
            while clock.now < minutes * 60:
                if drop_at_minute is not None and not dropped and clock.now >= drop_at_minute * 60:
                    await server.drop()
                    dropped = True
                await call.turn(n, push_to_talk=push_to_talk_every > 0
                                and n % push_to_talk_every == push_to_talk_every - 1)  # fmt: skip
                said.append(n)
                clock.advance(seconds_per_turn)
                n += 1
            await call.stop()
            await conn.flush()
            cid = conn.conversation_id
        await client.close()
        report.server_cost_usd = _server_cost(server, engine)
        sessions = server.sessions
        report.out_of_band = sum(
            1 for s in sessions for e in s.sent
            if e["type"] == "response.done" and e["response"].get("conversation_id") is None
        )  # fmt: skip
        assert cid is not None
    report.turns = len(said)
    report.engine_cost_usd = engine.total_cost_usd
    report.stored_user_items = _stored_user_items(db_url, cid)
    report.uncarried = engine.uncarried_turns
    return report


class _Call:
    """The application's side of the call: a reader task, and turns that wait for answers.

    After each answer it waits for the adapter's own work (a compaction, a summary) to clear,
    so the server sees the same events in the same order every run: the figures repeat.
    """

    def __init__(
        self, conn: Any, server: FakeRealtimeServer, report: VoiceCallReport, said: list[int]
    ) -> None:
        self.conn, self.server, self.report, self.said = conn, server, report, said
        self.last_user: str | None = None
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.conn:
            self.events.put_nowait(event)

    async def stop(self) -> None:
        """Stop reading (the connection's close reads what is still coming)."""
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader

    async def turn(self, n: int, *, push_to_talk: bool) -> None:
        conn = self.conn
        if push_to_talk:
            await self._detection(None)
        audio = say(phrase(n)) + (b"" if push_to_talk else silence(800))
        for chunk in _chunks(audio):
            await conn.input_audio_buffer.append(audio=chunk)
        if push_to_talk:
            await conn.input_audio_buffer.commit()
            await conn.response.create()
        await self._until("response.done")
        if self.last_user is not None:  # a question beside the call, about the caller's turn
            await conn.response.create(response={
                "conversation": "none", "output_modalities": ["text"],
                "instructions": "Classify the caller's mood in one word.",
                "metadata": {"purpose": "mood"},
                "input": [{"type": "item_reference", "id": self.last_user}],
            })  # fmt: skip
            await self._until("response.done")
        if push_to_talk:
            await self._detection({"type": "server_vad"})

    async def _detection(self, value: dict[str, Any] | None) -> None:
        await self.conn.session.update(session={"type": "realtime", "audio": {
            "input": {"turn_detection": value}}})  # fmt: skip
        await self._until("session.updated")

    async def _until(self, kind: str) -> None:
        while True:
            event = await self.events.get()
            if event.type == "context_manager.rollover":
                self._check_session(event)
            elif event.type == "conversation.item.added" and event.item.role == "user":
                self.last_user = event.item.id
            elif event.type == "error":
                # Its request failed (an out-of-band question about an item of the session
                # a rollover replaced just before it went out): no answer is coming.
                self.report.errors.append(str(getattr(event.error, "code", "")))
                break
            if event.type == kind:
                break
        await self.conn.idle()

    def _check_session(self, event: Any) -> None:
        """Which of the caller's turns so far the new session holds, heard or read."""
        session = self.server.sessions[-1]
        known = []
        for item in session.items:
            for part in item.get("content") or []:
                known.append(str(part.get("text") or part.get("transcript") or ""))
            if item.get("role") == "user":
                known.append(session.heard(str(item["id"])) or "")
        text = "\n".join(known)
        missing = [n for n in self.said if phrase(n) not in text]
        self.report.rollovers.append(event.reason)
        self.report.seed_tokens.append(event.seed_tokens)
        self.report.missing.append(missing)
        self.report.carried.append(1 - len(missing) / len(self.said) if self.said else 1.0)
        self.last_user = None  # an id of the old session


def _server_cost(server: FakeRealtimeServer, engine: ContextEngine) -> float:
    """The fake server's usage reports priced by the profile: what the provider would bill."""
    prices = engine.profile.prices_per_million
    rates = engine.provider.transcription_usd_per_minute
    total = 0.0
    for session in server.sessions:
        for event in session.sent:
            if event["type"] == "response.done":
                total += price(Usage.from_dict(event["response"]["usage"] or {}), prices).total
            elif event["type"] == "conversation.item.input_audio_transcription.completed":
                seconds = float(event["usage"]["seconds"])
                total += seconds / 60 * rates.get("gpt-4o-mini-transcribe", 0.0)
    return total


def _stored_user_items(db_url: str, cid: str) -> int:
    """User item rows of the call in the store (compacted ones included)."""
    from sqlalchemy import create_engine, func, select

    from ..store.models import ItemRow

    db = create_engine(db_url)
    try:
        with db.connect() as c:
            query = select(func.count()).where(
                ItemRow.conversation_id == cid, ItemRow.role == "user"
            )
            return int(c.execute(query).scalar() or 0)
    finally:
        db.dispose()
