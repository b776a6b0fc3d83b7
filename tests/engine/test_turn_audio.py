"""A drop while the user is speaking: the audio of the turn in progress is re-appended to the
new session, so the words survive (real `openai` client, managed connection, fake server that
hears scripted speech)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import pytest
from openai import AsyncOpenAI

from context_manager import ContextEngine, Message
from context_manager.items import Item
from context_manager.realtime import connect
from context_manager.testing import FakeRealtimeServer, Reply, say, silence

pytestmark = pytest.mark.network_allowed

FIRST, SECOND = "Please book the morning flight", "to Oslo on Friday."


def _answer(items: Sequence[Item]) -> Reply:
    user = next(i for i in reversed(items) if isinstance(i, Message) and i.role == "user")
    return Reply(f"You said: {user.text}")  # the fake's responder hears the words


def _chunks(audio: bytes, size: int = 9600) -> list[str]:
    return [base64.b64encode(audio[n : n + size]).decode() for n in range(0, len(audio), size)]


@pytest.mark.parametrize("vad", [False, True], ids=["push-to-talk", "server-vad"])
def test_a_drop_mid_turn_loses_none_of_the_users_words(vad: bool) -> None:
    async def call() -> tuple[str, list[str]]:
        async with FakeRealtimeServer(responder=_answer) as server:
            client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
            engine = ContextEngine("gpt-realtime")
            async with connect(client, model="gpt-realtime", engine=engine) as conn:
                if not vad:
                    await conn.session.update(session={"type": "realtime", "audio": {
                        "input": {"turn_detection": None}}})  # fmt: skip
                    while (await conn.recv()).type != "session.updated":
                        pass
                for chunk in _chunks(say(FIRST)):
                    await conn.input_audio_buffer.append(audio=chunk)
                await asyncio.sleep(0.05)  # let the fake take it in
                await server.drop()  # mid-sentence: the first half is in the old session only
                rest = say(SECOND) + (silence(800) if vad else b"")
                for chunk in _chunks(rest):
                    await conn.input_audio_buffer.append(audio=chunk)
                if not vad:
                    await conn.input_audio_buffer.commit()
                    await conn.response.create()
                reasons, transcript = [], ""
                while True:
                    event = await conn.recv()
                    if event.type == "context_manager.rollover":
                        reasons.append(event.reason)
                    elif event.type == "response.done":
                        content = event.response.output[0].content[0]
                        transcript = content.transcript or content.text or ""
                        break
            await client.close()
            return transcript, reasons

    transcript, reasons = asyncio.run(call())
    assert reasons == ["disconnected"]
    assert transcript == f"You said: {FIRST} {SECOND}"
