"""The real `openai` client against the fake server: a spoken call, interrupted and cancelled."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from openai import AsyncOpenAI

from context_manager.testing import FakeRealtimeServer, Reply, say, scripted, silence
from tests.test_testing import run, until

STORY = "Once upon a time a fox lived by the sea."


def b64(audio: bytes) -> str:
    return base64.b64encode(audio).decode()


@pytest.mark.network_allowed
def test_a_spoken_call_interrupted_truncated_cancelled_and_resumed() -> None:
    replies = scripted(
        [
            Reply.speech(STORY, pause_after_ms=1500),
            Reply.speech("Sure, a short one.", pause_after_ms=400),
            Reply("A fox by the sea.", pause_after_ms=0),
        ]
    )

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with FakeRealtimeServer(responder=replies, cancelled_usage="produced") as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                out["created"] = await conn.recv()
                # The user speaks; server VAD ends the turn and the answer starts.
                await conn.input_audio_buffer.append(audio=b64(say("Tell me a story.", 1200)))
                await conn.input_audio_buffer.append(audio=b64(silence(300)))
                out["turn"] = await until(conn, "response.output_audio_transcript.delta")
                reply_id = out["turn"][-1].item_id
                # The user talks over it: the server cancels it, the client cuts its audio
                # where playback was.
                await conn.input_audio_buffer.append(audio=b64(say("A shorter one.", 600)))
                out["interrupted"] = await until(conn, "response.done")
                await conn.conversation.item.truncate(
                    item_id=reply_id, content_index=0, audio_end_ms=700
                )
                out["truncated"] = await until(conn, "conversation.item.truncated")
                await conn.input_audio_buffer.append(audio=b64(silence(300)))
                out["second"] = await until(conn, "response.created")
                # The client cancels the second answer itself.
                await conn.response.cancel()
                out["cancelled"] = await until(conn, "response.done")
                await conn.response.cancel()
                out["nothing"] = await until(conn, "error")
                # An out-of-band text response held before its output, then let run.
                await conn.response.create(
                    response={
                        "conversation": "none",
                        "output_modalities": ["text"],
                        "metadata": {"purpose": "recap"},
                    }
                )
                out["oob_created"] = await until(conn, "response.created")
                await server.resume()
                out["oob"] = await until(conn, "response.done")
            out["items"] = server.sessions[0].model.items
        return out

    out = run(scenario())
    input_audio = out["created"].session.audio.input
    assert input_audio.transcription is None
    assert input_audio.turn_detection.type == "server_vad"
    kinds = [e.type for e in out["turn"]]
    assert kinds[:6] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    assert not [k for k in kinds if "transcription" in k]
    assert (out["turn"][0].audio_start_ms, out["turn"][1].audio_end_ms) == (0, 1400)
    interrupted = out["interrupted"]
    assert interrupted[-1].response.status == "cancelled"
    assert interrupted[-1].response.status_details.reason == "turn_detected"
    started = next(e for e in interrupted if e.type == "input_audio_buffer.speech_started")
    assert started.audio_start_ms == 1400
    partial = interrupted[-1].response.output[0]
    assert (partial.status, partial.content[0].transcript) == ("incomplete", "Once upon a time")
    assert interrupted[-1].response.usage.output_token_details.audio_tokens == 30
    assert out["truncated"][-1].audio_end_ms == 700
    second = out["second"]
    assert [e.type for e in second][:3] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
    ]
    assert second[0].audio_end_ms == 2300
    cancelled = out["cancelled"][-1].response
    assert cancelled.status == "cancelled"
    assert cancelled.status_details.reason == "client_cancelled"
    assert cancelled.output[0].content[0].transcript == "Sure"
    # The request of the second answer: 14 + 9 user audio tokens and 700 ms of the first.
    assert cancelled.usage.input_token_details.audio_tokens == 14 + 9 + 14
    assert out["nothing"][-1].error.code == "response_cancel_not_active"
    oob = out["oob"][-1].response
    assert oob.conversation_id is None
    assert oob.metadata == {"purpose": "recap"}
    assert oob.status == "completed"
    assert oob.output[0].content[0].text == "A fox by the sea."
    roles = [(i.role, i.audio_ms) for i in out["items"]]
    assert roles == [("user", 1400), ("assistant", 700), ("user", 900), ("assistant", 400)]
