"""With input transcription off (the API's default), the user's turns are audio only: a planned
rollover re-sends their audio, so the new session hears every word (real `openai` client,
managed connection, fake server that hears scripted speech); without kept audio, the turns the
seed cannot carry are reported and stored, never silently dropped."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock, get_provider_profile
from context_manager.items import Item
from context_manager.live.audio import AudioKeeper
from context_manager.realtime import connect
from context_manager.rollover import RolloverPolicy, is_unheard
from context_manager.testing import FakeRealtimeServer, Reply, say, silence

pytestmark = pytest.mark.network_allowed

PROVIDER = get_provider_profile("azure").model_copy(
    update={"name": "short", "max_session_seconds": 240.0}
)
TURNS = ["Book the morning flight", "to Oslo on Friday", "two seats by the window"]


def _answer(items: Sequence[Item]) -> Reply:
    return Reply.speech("Noted.")


def _chunks(audio: bytes, size: int = 9600) -> list[str]:
    return [base64.b64encode(audio[n : n + size]).decode() for n in range(0, len(audio), size)]


async def _call(
    vad: bool, keep_seconds: float, db: str | None = None, transcription: str | None = None
) -> dict[str, Any]:
    from context_manager.store import AsyncStore

    clock = ManualClock()
    engine = ContextEngine(
        "gpt-realtime", PROVIDER, rollover=RolloverPolicy(budget_tokens=2000),
        rollover_margin_seconds=40, clock=clock, keep_user_audio_seconds=keep_seconds,
        transcription=transcription,
    )  # fmt: skip
    store = AsyncStore(db) if db else None
    reasons: list[str] = []
    async with FakeRealtimeServer(provider=PROVIDER, clock=clock, responder=_answer) as server:
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(client, model="gpt-realtime", engine=engine, store=store) as conn:
            if not vad:
                await conn.session.update(session={"type": "realtime", "audio": {
                    "input": {"turn_detection": None}}})  # fmt: skip
                while (await conn.recv()).type != "session.updated":
                    pass
            for n, words in enumerate([*TURNS, "that is all"]):
                clock.advance(70.0 if n else 0.0)  # the last turn is past the rollover point
                audio = say(words) + (silence(800) if vad else b"")
                for chunk in _chunks(audio):
                    await conn.input_audio_buffer.append(audio=chunk)
                if not vad:
                    await conn.input_audio_buffer.commit()
                    await conn.response.create()
                while True:
                    event = await conn.recv()
                    if event.type == "context_manager.rollover":
                        reasons.append(event.reason)
                    elif event.type == "response.done":
                        break
            if transcription:  # the last turn's transcript comes after its response
                done = "conversation.item.input_audio_transcription.completed"
                while (await conn.recv()).type != done:
                    pass
            cid = conn.conversation_id
            await conn.flush()
        await client.close()
        second = server.sessions[-1]
        heard = [
            second.heard(str(i["id"])) or i["content"][0].get("text")
            for i in second.items
            if i.get("role") == "user"
        ]
    sessions: list[dict[str, Any]] = []
    if store is not None:
        assert cid is not None
        sessions = await _sessions(store, cid)
        await store.close()
    return {"reasons": reasons, "heard": heard, "engine": engine, "sessions": sessions}


async def _sessions(store: Any, cid: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from context_manager.store.models import SessionRow

    def read(s: Any) -> list[dict[str, Any]]:
        with s.engine.connect() as c:
            rows = c.execute(select(SessionRow).where(SessionRow.conversation_id == cid))
            return [dict(r._mapping) for r in rows]

    result: list[dict[str, Any]] = await asyncio.to_thread(read, store._store)
    return result


@pytest.mark.parametrize("vad", [False, True], ids=["push-to-talk", "server-vad"])
def test_a_rollover_re_sends_the_users_audio_so_the_new_session_hears_every_word(
    vad: bool,
) -> None:
    result = asyncio.run(_call(vad, keep_seconds=120))
    assert result["reasons"] == ["rollover"]
    # The seed's user turns are the user's own audio: the new session hears the words
    # (the last turn was said in the new session itself).
    assert result["heard"] == [*TURNS, "that is all"]
    engine: ContextEngine = result["engine"]
    assert all(is_unheard(e.item) for e in engine.history if e.item.role == "user")  # type: ignore[union-attr]


def test_turns_the_seed_cannot_carry_are_reported_and_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    with caplog.at_level(logging.WARNING):
        result = asyncio.run(_call(vad=True, keep_seconds=0, db=db))
    assert result["reasons"] == ["rollover"]
    # No audio kept, no transcript: the seed holds no empty user turn ...
    assert result["heard"] == ["that is all"]
    # ... and says so: a warning (no words in it) and the keys in the new session's row.
    assert "3 untranscribed user turns not carried" in caplog.text
    assert "Oslo" not in caplog.text
    first, second = result["sessions"]
    assert first["uncarried"] is None
    keys = [e.key for e in result["engine"].history][: 2 * len(TURNS) : 2]
    assert second["uncarried"] == keys


def test_the_keeper_cuts_each_turn_by_its_marks_and_stays_within_its_budget() -> None:
    keeper = AudioKeeper(max_seconds=3.0)
    second = base64.b64encode(bytes(range(256)) * 187 + bytes(128)).decode()  # 48,000 bytes
    for _ in range(3):
        keeper.appended(second)
    keeper.committed("a", 500, 1500)  # one second of speech, on the session's timeline
    assert len(keeper.audio("a") or b"") == 48_000 and keeper.pending_ms == 1500
    keeper.committed("b", 2000, 3000)
    assert keeper.pending_ms == 0 and keeper.kept_seconds == 2.0
    keeper.appended(second)
    keeper.appended(second)
    keeper.committed("c", None, None)  # a manual commit: the whole buffer
    assert keeper.audio("a") is None and keeper.evicted == 1  # the oldest went
    assert list(keeper.snapshot()) == ["b", "c"] and keeper.kept_bytes == 144_000
    # Uncommitted audio is bounded too: a turn longer than the budget keeps its end.
    for _ in range(5):
        keeper.appended(second)
    assert keeper.pending_ms == 3000
    keeper.rename("c", "item_000003")
    assert keeper.audio("item_000003") is not None
    # A new session's timeline starts again at 0.
    keeper.new_session()
    keeper.appended(second)
    keeper.committed("d", 0, 250)
    assert len(keeper.audio("d") or b"") == 12_000


def test_transcription_switched_on_by_the_engine_carries_text_and_is_billed(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    result = asyncio.run(
        _call(vad=True, keep_seconds=0, db=db, transcription="gpt-4o-mini-transcribe")
    )
    assert result["reasons"] == ["rollover"]
    # Transcripts came late (after each response), reached the history, and the seed
    # carried them as text: the new session has every word without any kept audio.
    assert result["heard"] == [*TURNS, "that is all"]
    engine: ContextEngine = result["engine"]
    texts = [e.item.text for e in engine.history if getattr(e.item, "role", "") == "user"]
    assert texts == [*TURNS, "that is all"]
    assert result["sessions"][1]["uncarried"] is None
    # Billed per second of audio at the provider's rate, apart from responses.
    from context_manager.store import Store

    store = Store(db)
    try:
        cid = store.conversations()[0]
        rows = store.usage(cid)
    finally:
        store.close()
    billed = [r for r in rows if (r["response_metadata"] or {}).get("billed") == "transcription"]
    assert len(billed) == len(TURNS) + 1
    seconds = sum(float(r["response_metadata"]["seconds"]) for r in billed)
    assert engine.transcription_cost_usd == pytest.approx(seconds / 60 * 0.003)
    assert engine.total_cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows))


@pytest.mark.parametrize("seconds", [-1.0, float("inf"), float("nan")])
def test_the_keeper_refuses_an_unbounded_or_negative_budget(seconds: float) -> None:
    from context_manager.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="finite number of seconds"):
        AudioKeeper(max_seconds=seconds)
