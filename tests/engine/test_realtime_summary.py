"""Summaries by the realtime model itself, out of band (`RealtimeSummarizer`): with input
transcription off, the model heard the user's audio, so its summary carries their words
into the next session; its responses are priced and stored as out-of-band, never delivered
to the application; when it cannot answer, the extractive summary takes over (real `openai`
client, managed connection, fake server that hears scripted speech)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from sqlalchemy import text

from context_manager import ContextEngine, ManualClock, Message, get_provider_profile
from context_manager.compaction import RollingSummary
from context_manager.errors import SummarizerError
from context_manager.items import Item
from context_manager.realtime import RealtimeSummarizer, connect
from context_manager.rollover import RolloverPolicy
from context_manager.store import AsyncStore, Store
from context_manager.testing import FakeRealtimeServer, Reply, say, silence

pytestmark = pytest.mark.network_allowed

PROVIDER = get_provider_profile("azure").model_copy(
    update={"name": "short", "max_session_seconds": 240.0}
)
TURNS = ["Book the morning flight", "to Oslo on Friday", "two seats by the window"]


def _answer(items: Sequence[Item]) -> Reply:
    last = items[-1] if items else None
    if isinstance(last, Message) and last.role == "system" and "Summarize" in last.text:
        heard = [i.text for i in items if isinstance(i, Message) and i.role == "user"]
        return Reply("Caller said: " + "; ".join(heard))
    return Reply.speech("Noted.")


def _chunks(audio: bytes, size: int = 9600) -> list[str]:
    return [base64.b64encode(audio[n : n + size]).decode() for n in range(0, len(audio), size)]


async def _call(db: str, summarizer: RealtimeSummarizer, *, compaction: bool) -> dict[str, Any]:
    clock = ManualClock()
    engine = ContextEngine(
        "gpt-realtime", PROVIDER, clock=clock, keep_user_audio_seconds=0,
        rollover=RolloverPolicy(budget_tokens=60, carry="summary", summary_tokens=48,
                                summarizer=summarizer),
        compaction=RollingSummary(trigger=0.001, keep=1, budget=64, summarizer=summarizer)
        if compaction else None,
        rollover_margin_seconds=40,
    )  # fmt: skip
    seen: list[str] = []
    async with (
        FakeRealtimeServer(provider=PROVIDER, clock=clock, responder=_answer) as server,
        AsyncStore(db) as store,
    ):
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(client, model="gpt-realtime", engine=engine, store=store) as conn:
            # The rollover is due from 200 s: asked at turn 5 (205 s), the model's summary
            # comes while the old session still runs, and the switch follows at once.
            for advance, words in zip(
                (0, 60, 60, 60, 25, 5), [*TURNS, "that is all", "thank you", "bye"], strict=True
            ):
                clock.advance(advance)
                for chunk in _chunks(say(words) + silence(800)):
                    await conn.input_audio_buffer.append(audio=chunk)
                while True:
                    event = await conn.recv()
                    seen.append(event.type)
                    if event.type == "response.done":
                        break
                await asyncio.sleep(0.05)  # a compaction summary, if any, in the meantime
            while not conn.rollovers:  # the call goes on until the switch (the summary is in)
                seen.append((await asyncio.wait_for(conn.recv(), 10)).type)
            await conn.flush()
            cid = conn.conversation_id
            rollovers = [e.reason for e in conn.rollovers]
        await client.close()
        sessions = len(server.sessions)
        first_item = server.sessions[-1].items[0]
    sync = Store(db)
    try:
        assert cid is not None
        usage = sync.usage(cid)
        with sync.engine.connect() as c:
            summaries = [r[0] for r in c.execute(text("SELECT text FROM summaries"))]
    finally:
        sync.close()
    return {"engine": engine, "seen": seen, "usage": usage, "first": first_item,
            "rollovers": rollovers, "sessions": sessions, "summaries": summaries}  # fmt: skip


def test_the_rollover_summary_is_the_models_and_carries_the_callers_words(
    tmp_path: Path,
) -> None:
    summarizer = RealtimeSummarizer()
    result = asyncio.run(_call(f"sqlite:///{tmp_path / 'c.db'}", summarizer, compaction=False))
    first = result["first"]
    assert first["role"] == "system"
    text = first["content"][0]["text"]
    assert all(words in text for words in TURNS), "the model heard the audio-only turns"
    # Asked at turn 5; the caller spoke again (turn 6) before the switch, and a text seed
    # cannot carry that turn: asked again, so the summary covers it too.
    assert "bye" in text
    assert summarizer.requests == 2 and summarizer.failures == 0
    # The application saw its four responses only; the summary's were the adapter's.
    assert result["seen"].count("response.done") == 6
    assert result["rollovers"] == ["rollover"] and result["sessions"] == 2
    oob = [u for u in result["usage"] if u["out_of_band"]]
    assert len(oob) == 2 and all(u["cost_usd"] > 0 for u in oob)
    assert all("context_manager" in u["response_metadata"] for u in oob)
    engine: ContextEngine = result["engine"]
    assert engine.total_cost_usd == pytest.approx(sum(u["cost_usd"] for u in result["usage"]))


def test_compaction_summaries_by_the_model_run_beside_the_call(tmp_path: Path) -> None:
    summarizer = RealtimeSummarizer()
    result = asyncio.run(_call(f"sqlite:///{tmp_path / 'c.db'}", summarizer, compaction=True))
    engine: ContextEngine = result["engine"]
    assert engine.compactions >= 1
    # One may be cut short by the switch (its session ends first: the fallback takes over).
    assert summarizer.requests - summarizer.failures >= 2 and summarizer.failures <= 1
    assert result["seen"].count("response.done") == 6
    # The model's summaries (the fake's responder echoes what it heard) are in the store.
    assert any("Book the morning flight" in text for text in result["summaries"])


def test_without_a_live_session_it_refuses_at_once() -> None:
    with pytest.raises(SummarizerError, match="no live session"):
        RealtimeSummarizer().summarize([Message(role="user", text="hi")], budget_tokens=50)
