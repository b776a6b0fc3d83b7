"""The fake realtime server: the pure session, and the real `openai` client against it."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import websockets
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from context_manager.items import FunctionCall, FunctionCallOutput, Item, Message
from context_manager.profiles import get_model_profile
from context_manager.server.cache import PromptCache
from context_manager.server.model import ManualClock, ServerModel, SessionConfig
from context_manager.testing import (
    DEFAULT_INSTRUCTIONS,
    FakeRealtimeServer,
    FakeSession,
    Reply,
    ScriptExhaustedError,
    echo_responder,
    say,
    scripted,
    silence,
    speech_ms,
)
from context_manager.tokens import TokenCounter

LOGS = Path(__file__).parent / "data" / "realtime-logs"
GPT = get_model_profile("gpt-realtime")

INSTRUCTIONS = "Answer in two or three words."
GREETING = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Say a short greeting."}],
}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def pcm(ms: int, bytes_per_ms: int = 48) -> str:
    return base64.b64encode(bytes(ms * bytes_per_ms)).decode()


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
        **extra,
    }


def types(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def until(conn: Any, last: str) -> list[Any]:
    """Events up to and including the first of type `last`."""
    events = []
    async for event in conn:
        events.append(event)
        if event.type == last:
            return events
    raise AssertionError(f"the connection ended before {last}")


# ------------------------------------------------------------------ the session, without sockets


def shape(value: Any) -> Any:
    """The structure of an event: its keys, all the way down (the real server's padding out)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "obfuscation"}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def recorded_replies(frames: list[dict[str, Any]]) -> list[Reply]:
    replies = []
    for frame in frames:
        data = frame["data"]
        if frame["direction"] == "received" and data["type"] == "response.done":
            item = data["response"]["output"][0]
            if item["type"] == "function_call":
                replies.append(Reply(function_call=(item["name"], item["arguments"])))
            else:
                part = item["content"][0]
                spoken = part["type"] == "output_audio"
                replies.append(
                    Reply(part.get("text") or part["transcript"], audio_ms=900 if spoken else None)
                )
    return replies


def dedup(names: list[str]) -> list[str]:
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


@pytest.mark.parametrize(
    "name",
    [
        "test_openai_ws__test_text_in_audio_out_turn",
        "test_openai_ws__test_message_history_seeding",
        "test_openai_ws__test_tool_call_round",
    ],
)
def test_a_recorded_session_replayed_gives_the_same_events_in_the_same_shapes(name: str) -> None:
    frames = [json.loads(line) for line in (LOGS / f"{name}.jsonl").read_text().splitlines()]
    session = FakeSession(responder=scripted(recorded_replies(frames)), send_audio=True)
    got = session.opening()
    for frame in frames:
        if frame["direction"] != "sent":
            continue
        event = frame["data"]
        if event["type"] == "conversation.item.create" and event["item"]["type"] == (
            "function_call_output"
        ):
            # Answer the fake's call id, as an agent would.
            call = [e for e in got if e["type"] == "response.function_call_arguments.done"][-1]
            event = {**event, "item": {**event["item"], "call_id": call["call_id"]}}
        got += session.receive(event)
    recorded = [f["data"] for f in frames if f["direction"] == "received"]
    # The fake's sessions start as the real ones: server VAD on, transcription off.
    assert got[0]["session"]["audio"] == recorded[0]["session"]["audio"]
    # These recordings end before rate_limits.updated (it follows response.done, as checked below).
    got = [e for e in got if e["type"] != "rate_limits.updated"]
    # The tool round's recording interleaves the client's sends with the server's events.
    if "tool" not in name:
        assert dedup(types(got)) == dedup(types(recorded))
    fake_shapes = {(e["type"], json.dumps(shape(e), sort_keys=True)) for e in got}
    real_shapes = {(e["type"], json.dumps(shape(e), sort_keys=True)) for e in recorded}
    assert fake_shapes == real_shapes
    assert len({e["event_id"] for e in session.sent}) == len(session.sent)


def test_rate_limits_follow_response_done_as_recorded() -> None:
    recorded = [
        json.loads(line)["data"]
        for line in (
            LOGS
            / "test_openai_ws__test_input_audio_retention_segments_three_server_vad_turns.jsonl"
        )
        .read_text()
        .splitlines()
    ]
    real = next(e for e in recorded if e["type"] == "rate_limits.updated")
    session = FakeSession()
    session.receive({"type": "conversation.item.create", "item": GREETING})
    events = session.receive({"type": "response.create"})
    assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
    assert shape(events[-1]) == shape(real)


def test_the_session_object_is_the_ga_session_with_the_provider_expiry() -> None:
    clock = ManualClock(1_000.0)
    (created,) = FakeSession(provider="azure", clock=clock, model_name="gpt-realtime").opening()
    session = created["session"]
    assert created["type"] == "session.created"
    assert session["object"] == "realtime.session"
    assert session["id"] == "sess_001"
    assert session["model"] == "gpt-realtime"
    assert session["instructions"] == DEFAULT_INSTRUCTIONS
    assert session["expires_at"] == 2_800  # start + 1,800 s on Azure
    assert (session["output_modalities"], session["truncation"]) == (["audio"], "auto")
    assert session["max_output_tokens"] == "inf"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["voice"] == "alloy"


def test_session_update_merges_and_feeds_the_model() -> None:
    session = FakeSession()
    tools = [{"type": "function", "name": "lookup", "description": "Look up.", "parameters": {}}]
    (updated,) = session.receive(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "tools": tools,
                "truncation": {"type": "retention_ratio", "retention_ratio": 0.5},
                "max_output_tokens": 200,
                "output_modalities": ["text"],
                "audio": {
                    "input": {"format": {"type": "audio/pcmu"}, "transcription": {"model": "m"}},
                    "output": {"voice": "marin"},
                },
            },
        }
    )
    new = updated["session"]
    assert updated["type"] == "session.updated"
    assert new["instructions"] == "Be brief."
    assert new["tools"] == tools
    assert new["truncation"] == {"type": "retention_ratio", "retention_ratio": 0.5}
    assert new["max_output_tokens"] == 200
    assert new["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert new["audio"]["input"]["transcription"] == {
        "model": "m",
        "language": None,
        "prompt": None,
    }
    assert new["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }
    config = session.model.config
    assert (config.instructions, config.tools[0]["name"]) == ("Be brief.", "lookup")
    assert (config.truncation.mode, config.truncation.retention_ratio) == ("retention_ratio", 0.5)
    # Recorded: empty instructions get the server's default back.
    (again,) = session.receive(
        {"type": "session.update", "session": {"type": "realtime", "instructions": ""}}
    )
    assert again["session"]["instructions"] == session.model.config.instructions
    assert session.model.config.instructions == DEFAULT_INSTRUCTIONS


@pytest.mark.parametrize(
    ("patch", "code", "param"),
    [
        ({"type": "realtime", "volume": 3}, "unknown_parameter", "session.volume"),
        ({"instructions": "x"}, "missing_required_parameter", "session.type"),
        (
            {"type": "realtime", "max_output_tokens": 5000},
            "invalid_value",
            "session.max_output_tokens",
        ),
        ({"type": "realtime", "truncation": "sometimes"}, "invalid_value", "session.truncation"),
        (
            {"type": "realtime", "instructions": "word " * 17_000},
            "invalid_value",
            "session.instructions",
        ),
        (
            {"type": "realtime", "audio": {"input": {"format": {"type": "audio/mp3"}}}},
            "invalid_value",
            "session.audio.input.format.type",
        ),
    ],
)
def test_a_rejected_session_update_changes_nothing(
    patch: dict[str, Any], code: str, param: str
) -> None:
    session = FakeSession()
    before = json.dumps(session.session)
    (error,) = session.receive({"type": "session.update", "event_id": "evt_9", "session": patch})
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert (error["error"]["code"], error["error"]["param"]) == (code, param)
    assert error["error"]["event_id"] == "evt_9"
    assert json.dumps(session.session) == before
    assert session.model.config.instructions == DEFAULT_INSTRUCTIONS


def test_item_create_insertion_and_rejections() -> None:
    session = FakeSession()
    a, done = session.receive({"type": "conversation.item.create", "item": user("a", id="a")})
    assert types([a, done]) == ["conversation.item.added", "conversation.item.done"]
    assert a["previous_item_id"] is None
    assert a["item"] == {
        "id": "a",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": "a"}],
    }
    assert done["item"] == a["item"]
    b, _ = session.receive({"type": "conversation.item.create", "item": user("b")})
    assert b["previous_item_id"] == "a"
    assert b["item"]["id"].startswith("item_001_")
    root, _ = session.receive(
        {"type": "conversation.item.create", "previous_item_id": "root", "item": user("r", id="r")}
    )
    assert root["previous_item_id"] is None
    middle, _ = session.receive(
        {"type": "conversation.item.create", "previous_item_id": "r", "item": user("m", id="m")}
    )
    assert middle["previous_item_id"] == "r"
    assert [i.id for i in session.model.items] == ["r", "m", "a", b["item"]["id"]]

    def rejected(item: dict[str, Any], **extra: Any) -> dict[str, Any]:
        (error,) = session.receive({"type": "conversation.item.create", "item": item, **extra})
        assert error["type"] == "error"
        return error["error"]

    assert rejected(user("x"), previous_item_id="nope")["code"] == "item_not_found"
    assert rejected(user("x", id="a"))["code"] == "item_id_exists"
    audio = {"type": "message", "role": "assistant", "content": [{"type": "output_audio"}]}
    assert rejected(audio)["param"] == "item.content[0].type"
    system_audio = {"type": "message", "role": "system", "content": [{"type": "input_audio"}]}
    assert rejected(system_audio)["code"] == "invalid_value"
    assert len(session.model.items) == 4


def test_created_items_of_every_kind_reach_the_model() -> None:
    session = FakeSession()
    session.receive(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}},
        }
    )
    items = [
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "sum"}]},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": pcm(700, 8)}],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}],
        },
        {"type": "function_call", "name": "f", "call_id": "c1", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    for item in items:
        added, _ = session.receive({"type": "conversation.item.create", "item": item})
        assert added["type"] == "conversation.item.added"
    held = session.model.items
    assert held[0] == Message(role="system", text="sum", id=held[0].id)
    assert isinstance(held[1], Message) and held[1].audio_ms == 700  # 8 bytes per ms (G.711)
    assert held[2] == Message(role="assistant", text="ok", id=held[2].id)
    assert held[3] == FunctionCall(name="f", call_id="c1", arguments="{}", id=held[3].id)
    assert held[4] == FunctionCallOutput(call_id="c1", output="42", id=held[4].id)
    shown = session.items
    assert shown[1]["content"] == [{"type": "input_audio", "transcript": None}]
    assert "status" not in shown[4]  # as recorded for function_call_output


def test_delete_truncate_and_retrieve() -> None:
    session = FakeSession(responder=scripted([Reply("Hi there!", audio_ms=2000)]))
    session.receive({"type": "conversation.item.create", "item": user("hi", id="u1")})
    done = next(
        e for e in session.receive({"type": "response.create"}) if e["type"] == "response.done"
    )
    reply_id = done["response"]["output"][0]["id"]
    (truncated,) = session.receive(
        {
            "type": "conversation.item.truncate",
            "item_id": reply_id,
            "content_index": 0,
            "audio_end_ms": 500,
        }
    )
    assert truncated == {
        "type": "conversation.item.truncated",
        "event_id": truncated["event_id"],
        "item_id": reply_id,
        "content_index": 0,
        "audio_end_ms": 500,
    }
    assert session.model.items[-1] == Message(role="assistant", text="", audio_ms=500, id=reply_id)
    (retrieved,) = session.receive({"type": "conversation.item.retrieve", "item_id": reply_id})
    part = retrieved["item"]["content"][0]
    assert part["transcript"] == ""
    assert len(base64.b64decode(part["audio"])) == 500 * 48
    (error,) = session.receive(
        {
            "type": "conversation.item.truncate",
            "item_id": "u1",
            "content_index": 0,
            "audio_end_ms": 5,
        }
    )
    assert error["error"]["code"] == "unsupported_content_type"
    (deleted,) = session.receive({"type": "conversation.item.delete", "item_id": "u1"})
    assert (deleted["type"], deleted["item_id"]) == ("conversation.item.deleted", "u1")
    assert [i.id for i in session.model.items] == [reply_id]
    (error,) = session.receive({"type": "conversation.item.delete", "item_id": "u1"})
    assert (error["error"]["code"], error["error"]["param"]) == ("item_not_found", "item_id")


def test_server_vad_commits_a_spoken_turn_transcribes_it_late_and_answers() -> None:
    clock = ManualClock()
    heard: list[int] = []

    def transcriber(audio: bytes) -> str:
        heard.append(len(audio))
        return "hello there"

    session = FakeSession(
        clock=clock,
        transcriber=transcriber,
        responder=scripted([Reply("Hi!", audio_ms=1000)]),
    )
    session.receive(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "gpt-realtime-whisper"}}},
            },
        }
    )
    assert session.receive({"type": "input_audio_buffer.append", "audio": pcm(300)}) == []
    (cleared,) = session.receive({"type": "input_audio_buffer.clear"})
    assert cleared["type"] == "input_audio_buffer.cleared"
    (error,) = session.receive({"type": "input_audio_buffer.commit"})
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    audio = silence(500) + say("hello there", 1300) + silence(700)
    events = session.receive(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
    )
    assert types(events[:5]) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    started, stopped, committed, added, _ = events[:5]
    item_id = committed["item_id"]
    # Speech from 800 ms (after the 300 cleared and 500 of silence) to 2,100, padded by
    # 300 ms before and ended by 200 ms of silence after.
    assert (started["audio_start_ms"], stopped["audio_end_ms"]) == (500, 2300)
    assert started["item_id"] == stopped["item_id"] == item_id
    assert committed["previous_item_id"] is None
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    # server_vad with create_response: the turn is answered; the transcript comes after.
    assert types(events)[-5:] == [
        "response.done",
        "rate_limits.updated",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert [e["delta"] for e in events[-3:-1]] == [" hello", " there"]
    transcribed = events[-1]
    assert transcribed["transcript"] == "hello there"
    assert transcribed["usage"] == {"type": "duration", "seconds": 2}
    assert heard == [1800 * 48]
    assert session.model.items[0] == Message(
        role="user", text="hello there", audio_ms=1800, id=item_id
    )
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["usage"]["input_token_details"]["audio_tokens"] == 18
    assert clock.now == pytest.approx(1.8 + 1.0)  # the user's turn, then the assistant's


def test_an_overflow_with_truncation_disabled_fails_the_response_without_asking_the_responder() -> (
    None
):
    tiny = GPT.model_copy(update={"input_limit": 60})
    script = scripted(["never said"])
    session = FakeSession(profile=tiny, responder=script)
    session.receive(
        {
            "type": "session.update",
            "session": {"type": "realtime", "instructions": "Hi.", "truncation": "disabled"},
        }
    )
    session.receive({"type": "conversation.item.create", "item": user("word " * 80)})
    events = session.receive({"type": "response.create"})
    assert types(events) == ["response.created", "response.done", "error"]
    response = events[1]["response"]
    assert response["status"] == "failed"
    assert response["status_details"]["error"]["code"] == "context_length_exceeded"
    assert response["output"] == []
    assert response["usage"]["total_tokens"] == 0
    assert events[2]["error"]["code"] == "context_length_exceeded"
    assert script.remaining == 1
    assert len(session.model.items) == 1


def test_truncation_drops_items_silently_and_the_responder_sees_what_is_left() -> None:
    tiny = GPT.model_copy(update={"input_limit": 120})
    seen: list[list[str | None]] = []

    def responder(items: Sequence[Item]) -> Reply:
        seen.append([i.id for i in items])
        return Reply("ok")

    session = FakeSession(profile=tiny, responder=responder)
    session.receive(
        {"type": "session.update", "session": {"type": "realtime", "instructions": "Hi."}}
    )
    for n in range(3):
        session.receive(
            {"type": "conversation.item.create", "item": user("word " * 40, id=f"u{n}")}
        )
    events = session.receive({"type": "response.create"})
    # No event tells the client about the dropped items: the real server sends none either.
    assert "conversation.item.deleted" not in types(events)
    # 3 x 44 tokens over a limit of 120 - 2: the oldest goes.
    assert seen == [["u1", "u2"]]
    assert session.model.dropped_ids == {"u0"}


def test_an_out_of_band_response_leaves_the_conversation_alone() -> None:
    session = FakeSession(responder=scripted([Reply("Summary."), Reply("Summary.")]))
    session.receive({"type": "conversation.item.create", "item": GREETING})
    events = session.receive(
        {"type": "response.create", "response": {"conversation": "none", "metadata": {"k": "v"}}}
    )
    assert "conversation.item.added" not in types(events)
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["conversation_id"] is None
    assert done["metadata"] == {"k": "v"}
    assert len(session.model.items) == 1
    in_band = next(
        e for e in session.receive({"type": "response.create"}) if e["type"] == "response.done"
    )
    assert in_band["response"]["usage"]["input_tokens"] == done["usage"]["input_tokens"]
    assert len(session.model.items) == 2


def test_unknown_and_malformed_events_get_errors_and_the_session_goes_on() -> None:
    session = FakeSession()
    (error,) = session.receive({"type": "conversation.bogus", "event_id": "e1"})
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "type"
    assert "conversation.bogus" in error["error"]["message"]
    assert error["error"]["event_id"] == "e1"
    (error,) = session.receive_raw("{not json")
    assert error["error"]["code"] == "invalid_json"
    (error,) = session.receive({"type": "response.create", "response": {"input": "x"}})
    assert (error["error"]["code"], error["error"]["param"]) == (
        "invalid_value",
        "response.input",
    )
    (error,) = session.receive({"type": "response.cancel"})
    assert error["error"]["code"] == "response_cancel_not_active"
    assert not session.closed
    assert types(session.receive({"type": "conversation.item.create", "item": GREETING}))[0] == (
        "conversation.item.added"
    )


def test_the_session_expires_at_the_provider_maximum() -> None:
    clock = ManualClock()
    session = FakeSession(provider="azure", clock=clock)
    clock.advance(1799)
    assert session.check_expiry() == []
    clock.advance(1)
    (error,) = session.receive({"type": "conversation.item.create", "item": GREETING})
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 30 minutes.",
        "param": None,
        "event_id": None,
    }
    assert session.closed
    assert session.close_reason == "Your session hit the maximum duration of 30 minutes."
    assert session.receive({"type": "response.create"}) == []
    assert session.model.items == []


def test_echo_and_scripted_responders() -> None:
    assert echo_responder([]) == Reply("Hello! How can I help?", audio_ms=2000)
    said = echo_responder(
        [Message(role="user", text="one two"), FunctionCallOutput(call_id="c", output="7")]
    )
    assert said == Reply("The tool says: 7", audio_ms=speech_ms("The tool says: 7"))
    script = scripted(["a b", Reply.call("f", {"x": 1})])
    assert script([]) == Reply("a b", audio_ms=800)
    assert script([]).function_call == ("f", '{"x": 1}')
    with pytest.raises(ScriptExhaustedError, match="all 2 were used"):
        script([])
    with pytest.raises(ValueError, match="no text or audio"):
        Reply("x", function_call=("f", "{}"))


# ------------------------------------------------------------------ the real client, over a socket


@pytest.mark.network_allowed
def test_the_openai_client_gets_exact_usage() -> None:
    async def scenario() -> tuple[list[Any], FakeRealtimeServer]:
        responder = scripted([Reply("Hi there!", audio_ms=750)])
        async with FakeRealtimeServer(responder=responder) as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                created = await conn.recv()
                assert created.type == "session.created"
                assert created.session.model == "gpt-realtime"
                await conn.session.update(
                    session={"type": "realtime", "instructions": INSTRUCTIONS}
                )
                await until(conn, "session.updated")
                await conn.conversation.item.create(item=GREETING)
                await conn.response.create()
                return await until(conn, "rate_limits.updated"), server

    events, server = run(scenario())
    assert dedup([e.type for e in events]) == [
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    done = next(e for e in events if e.type == "response.done")
    usage = done.response.usage
    # Hand-checked, and as recorded: 7 + 5 text tokens + 4 for the item.
    assert (usage.input_tokens, usage.input_token_details.text_tokens) == (16, 16)
    assert (usage.output_token_details.text_tokens, usage.output_token_details.audio_tokens) == (
        3,
        15,
    )
    assert done.response.output[0].content[0].transcript == "Hi there!"
    model = ServerModel(GPT, config=SessionConfig(instructions=INSTRUCTIONS))
    model.create_item(Message(role="user", text="Say a short greeting."))
    expected = model.create_response([Message(role="assistant", text="Hi there!", audio_ms=750)])
    assert done.response.usage.model_dump() == expected.usage.to_dict()
    (session,) = server.sessions
    assert session.received[0]["type"] == "session.update"
    assert session.sent[0]["type"] == "session.created"
    assert server.clock() == pytest.approx(0.75)


@pytest.mark.network_allowed
def test_item_operations_and_errors_over_the_socket() -> None:
    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with FakeRealtimeServer(
            responder=scripted([Reply("Sure.", audio_ms=1000)])
        ) as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
                await conn.conversation.item.create(item=user("first", id="first"))
                await until(conn, "conversation.item.done")
                await conn.conversation.item.create(
                    item=user("summary", id="s"), previous_item_id="root"
                )
                out["root"] = (await until(conn, "conversation.item.done"))[0]
                await conn.conversation.item.create(item=user("x"), previous_item_id="missing")
                out["unknown_previous"] = await conn.recv()
                await conn.send({"type": "no.such.event", "event_id": "mine"})
                out["unknown_type"] = await conn.recv()
                await conn.response.create()
                done = (await until(conn, "response.done"))[-1]
                reply_id = done.response.output[0].id
                await conn.conversation.item.truncate(
                    item_id=reply_id, content_index=0, audio_end_ms=400
                )
                out["truncated"] = await until(conn, "conversation.item.truncated")
                await conn.conversation.item.delete(item_id="s")
                out["deleted"] = await until(conn, "conversation.item.deleted")
                await conn.conversation.item.retrieve(item_id="first")
                out["retrieved"] = await until(conn, "conversation.item.retrieved")
            out["items"] = [i.id for i in server.sessions[0].model.items]
            out["reply_id"] = reply_id
        return out

    out = run(scenario())
    assert out["root"].type == "conversation.item.added"
    assert out["root"].previous_item_id is None
    assert out["unknown_previous"].type == "error"
    assert out["unknown_previous"].error.code == "item_not_found"
    assert out["unknown_previous"].error.param == "previous_item_id"
    assert out["unknown_type"].type == "error"
    assert out["unknown_type"].error.code == "invalid_value"
    assert out["unknown_type"].error.event_id == "mine"
    assert out["truncated"][-1].audio_end_ms == 400
    assert out["deleted"][-1].item_id == "s"
    assert out["retrieved"][-1].item.id == "first"
    assert out["items"] == ["first", out["reply_id"]]


@pytest.mark.network_allowed
def test_a_function_call_round_trip() -> None:
    seen: list[list[Item]] = []

    def responder(items: Sequence[Item]) -> Reply:
        seen.append(list(items))
        if isinstance(items[-1], FunctionCallOutput):
            return Reply.speech(f"It is {items[-1].output}.")
        return Reply.call("get_weather", {"city": "London"})

    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}

    async def scenario() -> tuple[Any, Any]:
        async with FakeRealtimeServer(responder=responder) as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
                await conn.session.update(session={"type": "realtime", "tools": [tool]})
                await conn.conversation.item.create(item=user("Weather in London?"))
                await conn.response.create()
                first = (await until(conn, "response.done"))[-1]
                call = first.response.output[0]
                await conn.conversation.item.create(
                    item={
                        "type": "function_call_output",
                        "call_id": call.call_id,
                        "output": "foggy",
                    }
                )
                await conn.response.create()
                second = (await until(conn, "response.done"))[-1]
                return first, second

    first, second = run(scenario())
    call = first.response.output[0]
    assert (call.type, call.name, call.arguments) == (
        "function_call",
        "get_weather",
        '{"city": "London"}',
    )
    assert call.call_id.startswith("call_")
    assert second.response.output[0].content[0].transcript == "It is foggy."
    assert isinstance(seen[1][-2], FunctionCall)
    assert seen[1][-1] == FunctionCallOutput(
        call_id=call.call_id, output="foggy", id=seen[1][-1].id
    )
    # The tool definition and the call are in the second request's input.
    assert second.response.usage.input_tokens > first.response.usage.input_tokens


@pytest.mark.network_allowed
def test_expiry_on_azure_errors_the_next_event_then_closes_1001() -> None:
    clock = ManualClock()

    async def scenario() -> tuple[Any, ConnectionClosedOK]:
        async with FakeRealtimeServer(
            provider="azure", clock=clock, expiry_poll_seconds=None
        ) as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
                clock.advance(1800.5)
                await conn.conversation.item.create(item=GREETING)
                error = await conn.recv()
                with pytest.raises(ConnectionClosedOK) as closed:
                    await conn.recv()
            assert server.sessions[0].closed
            return error, closed.value

    error, closed = run(scenario())
    assert error.type == "error"
    assert error.error.code == "session_expired"
    assert error.error.message == "Your session hit the maximum duration of 30 minutes."
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1001
    assert closed.rcvd.reason == "Your session hit the maximum duration of 30 minutes."


@pytest.mark.network_allowed
def test_an_idle_session_expires_on_its_own_and_iteration_ends() -> None:
    clock = ManualClock()

    async def scenario() -> list[Any]:
        async with FakeRealtimeServer(clock=clock, expiry_poll_seconds=0.01) as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                events = [await conn.recv()]
                clock.advance(3600)
                events += [event async for event in conn]  # ends at the close 1001
                return events

    events = run(scenario())
    assert [e.type for e in events] == ["session.created", "error"]
    assert events[1].error.message == "Your session hit the maximum duration of 60 minutes."


@pytest.mark.network_allowed
def test_drop_is_an_abnormal_closure_and_a_new_connection_is_a_new_session() -> None:
    async def scenario() -> tuple[ConnectionClosedError, str, list[str]]:
        async with FakeRealtimeServer() as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
                await server.drop()
                with pytest.raises(ConnectionClosedError) as dropped:
                    await conn.recv()
            async with client.realtime.connect(model="gpt-realtime") as conn:
                again = await conn.recv()
            return dropped.value, again.session.id, [s.close_reason for s in server.sessions]

    dropped, second_id, reasons = run(scenario())
    assert dropped.rcvd is None  # no close frame: 1006, abnormal closure
    assert second_id == "sess_002"
    assert reasons == ["dropped", ""]


@pytest.mark.network_allowed
def test_a_second_session_hits_the_cache_of_the_first() -> None:
    instructions = "You are a concise assistant for a weather service. " * 8
    counter = TokenCounter(GPT)
    prefix = (
        counter.text(instructions) + counter.text("Weather in Paris?") + GPT.item_overhead_tokens
    )
    assert prefix > GPT.cache.min_prefix_tokens

    async def first_usage(server: FakeRealtimeServer) -> Any:
        client = AsyncOpenAI(api_key="test", base_url=server.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.session.update(session={"type": "realtime", "instructions": instructions})
            await conn.conversation.item.create(item=user("Weather in Paris?"))
            await conn.response.create()
            return (await until(conn, "response.done"))[-1].response.usage

    async def scenario() -> tuple[Any, Any]:
        async with FakeRealtimeServer() as server:
            return await first_usage(server), await first_usage(server)

    first, second = run(scenario())
    assert first.input_token_details.cached_tokens == 0
    block = GPT.cache.block_tokens
    assert second.input_token_details.cached_tokens == prefix - prefix % block > 0
    # What one shared PromptCache gives two ServerModels.
    cache, clock = PromptCache(GPT.cache), ManualClock()
    for sid in ("a", "b"):
        model = ServerModel(
            GPT,
            cache=cache,
            clock=clock,
            session_id=sid,
            config=SessionConfig(instructions=instructions),
        )
        model.create_item(Message(role="user", text="Weather in Paris?"))
        result = model.create_response([Message(role="assistant", text="x", audio_ms=10)])
    assert result.usage.cached_tokens == second.input_token_details.cached_tokens


@pytest.mark.network_allowed
def test_raw_websocket_paths_json_errors_and_audio_deltas() -> None:
    async def scenario() -> tuple[int, list[dict[str, Any]]]:
        async with FakeRealtimeServer(
            send_audio=True, responder=scripted([Reply("Hi.", audio_ms=600)])
        ) as server:
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(f"ws://127.0.0.1:{server.port}/v1/other"):
                    pass
            async with websockets.connect(server.url + "?model=gpt-realtime-mini") as ws:
                events = [json.loads(await ws.recv())]
                await ws.send("not json")
                events.append(json.loads(await ws.recv()))
                await ws.send(json.dumps({"type": "response.create"}))
                while events[-1]["type"] != "rate_limits.updated":
                    events.append(json.loads(await ws.recv()))
            return refused.value.response.status_code, events

    status, events = run(scenario())
    assert status == 404
    assert events[0]["session"]["model"] == "gpt-realtime-mini"
    assert events[1]["error"]["code"] == "invalid_json"
    chunks = [e["delta"] for e in events if e["type"] == "response.output_audio.delta"]
    assert [len(base64.b64decode(c)) for c in chunks] == [250 * 48, 250 * 48, 100 * 48]


@pytest.mark.network_allowed
def test_a_failing_responder_reaches_the_client_and_is_raised_at_exit() -> None:
    async def scenario() -> None:
        async with FakeRealtimeServer(responder=scripted([])) as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
                await conn.response.create()
                error = await conn.recv()
                assert error.type == "error"
                assert error.error.type == "server_error"
                assert "ScriptExhaustedError" in error.error.message

    with pytest.raises(ScriptExhaustedError):
        run(scenario())
