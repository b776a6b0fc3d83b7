"""The fake server's responses: held, resumed, cancelled, interrupted, out of band."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import pytest

from context_manager.items import Item, Message
from context_manager.profiles import get_model_profile
from context_manager.server.model import ServerModel, SessionConfig
from context_manager.testing import FakeSession, Reply, say, scripted, silence
from tests.test_testing import types

GPT = get_model_profile("gpt-realtime")
STORY = "Once upon a time a fox lived by the sea."  # 10 words: 4,000 ms spoken


def append(session: FakeSession, audio: bytes) -> list[dict[str, Any]]:
    return session.receive(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
    )


def user(text: str, **extra: Any) -> dict[str, Any]:
    content = [{"type": "input_text", "text": text}]
    return {"type": "message", "role": "user", "content": content, **extra}


def done_of(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    response: dict[str, Any] = next(e for e in events if e["type"] == "response.done")["response"]
    return response


def truncate(session: FakeSession, item_id: str, ms: int) -> dict[str, Any]:
    (event,) = session.receive(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": ms,
        }
    )
    return event


def held(pause_ms: int, *more: Reply | str, **options: Any) -> FakeSession:
    """A session whose first reply is `STORY`, held after `pause_ms` of its audio.

    Cancelled responses bill what they made here (the default bills zero, as recorded).
    """
    replies = scripted([Reply.speech(STORY, pause_after_ms=pause_ms), *more])
    options.setdefault("cancelled_usage", "produced")
    session = FakeSession(responder=replies, **options)
    session.receive({"type": "conversation.item.create", "item": user("Tell me a story.", id="u1")})
    return session


# ------------------------------------------------------------------ cancel


def test_cancel_with_nothing_in_progress_is_the_real_error() -> None:
    session = FakeSession()
    (error,) = session.receive({"type": "response.cancel", "event_id": "evt_1"})
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "response_cancel_not_active",
        "message": "Cancellation failed: no active response found.",
        "param": None,
        "event_id": "evt_1",
    }
    (error,) = session.receive({"type": "response.cancel", "response_id": "resp_nope"})
    assert error["error"]["code"] == "response_cancel_not_active"


def test_a_held_response_cancelled_keeps_what_was_made_and_bills_it() -> None:
    session = held(1000)
    events = session.receive({"type": "response.create"})
    assert types(events) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.delta",
    ]  # 1,000 of 4,000 ms: a quarter of the 11 pieces (10 words and a full stop), rounded down
    response_id = events[0]["response"]["id"]
    assert session.active_responses == [response_id]
    reply_id = events[1]["item"]["id"]
    events = session.receive({"type": "response.cancel"})
    assert types(events) == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert events[1]["transcript"] == "Once upon"
    done = done_of(events)
    assert (done["id"], done["status"]) == (response_id, "cancelled")
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    partial = {
        "id": reply_id,
        "type": "message",
        "status": "incomplete",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "Once upon"}],
    }
    assert done["output"] == [partial] == [events[3]["item"]]
    # The request as created; the output made: 1,000 ms (20 tokens) and 2 words of text.
    model = ServerModel(GPT, config=SessionConfig(instructions=session.model.config.instructions))
    model.create_item(Message(role="user", text="Tell me a story.", id="u1"))
    whole = model.create_response([Message(role="assistant", text=STORY, audio_ms=4000)])
    usage = done["usage"]
    assert usage["input_tokens"] == whole.usage.input_tokens
    assert usage["output_token_details"] == {"text_tokens": 2, "audio_tokens": 20}
    assert session.model.items[-1] == Message(
        role="assistant", text="Once upon", audio_ms=1000, id=reply_id
    )
    assert session.items[-1] == partial
    assert session.active_responses == []
    # The client cuts the item where playback stopped; past what was made is refused.
    error = truncate(session, reply_id, 1200)
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["message"] == "Audio content of 1000ms is already shorter than 1200ms"
    assert truncate(session, reply_id, 640)["type"] == "conversation.item.truncated"
    assert session.model.items[-1] == Message(role="assistant", text="", audio_ms=640, id=reply_id)


def test_cancelled_usage_can_be_all_zero_as_two_recordings_reported() -> None:
    session = held(1000, cancelled_usage="zero")
    session.receive({"type": "response.create"})
    usage = done_of(session.receive({"type": "response.cancel"}))["usage"]
    assert usage["total_tokens"] == 0


def test_a_response_held_before_its_output_cancels_to_nothing() -> None:
    session = held(0)
    events = session.receive({"type": "response.create"})
    assert types(events) == ["response.created"]
    events = session.receive({"type": "response.cancel"})
    assert types(events) == ["response.done", "rate_limits.updated"]
    done = done_of(events)
    assert done["output"] == []
    assert done["usage"]["output_tokens"] == 0
    assert done["usage"]["input_tokens"] > 0
    assert [i.id for i in session.model.items] == ["u1"]


def test_resume_runs_a_held_response_to_its_end() -> None:
    whole = FakeSession(responder=scripted([Reply.speech(STORY)]))
    whole.receive({"type": "conversation.item.create", "item": user("Tell me a story.", id="u1")})
    expected = whole.receive({"type": "response.create"})
    session = held(1000)
    first = session.receive({"type": "response.create"})
    rest = session.resume()
    assert types(first + rest) == types(expected)
    assert done_of(rest)["usage"] == done_of(expected)["usage"]
    assert session.sent[-len(rest) :] == rest
    assert session.resume() == []


def test_one_response_at_a_time_in_the_conversation_out_of_band_beside_it() -> None:
    session = held(1000, Reply("A fox story."))
    session.receive({"type": "response.create"})
    (error,) = session.receive({"type": "response.create", "event_id": "e2"})
    assert error["error"]["code"] == "conversation_already_has_active_response"
    assert error["error"]["event_id"] == "e2"
    events = session.receive({"type": "response.create", "response": {"conversation": "none"}})
    assert done_of(events)["status"] == "completed"
    # An item being generated cannot be changed before its response ends.
    reply_id = session.model.items[-1].id
    assert reply_id is not None
    assert truncate(session, reply_id, 100)["error"]["code"] == "unsupported_by_fake"
    (error,) = session.receive({"type": "conversation.item.delete", "item_id": reply_id})
    assert error["error"]["code"] == "unsupported_by_fake"


# ------------------------------------------------------------------ interruptions


def test_the_user_interrupts_a_response_in_progress_and_the_client_truncates() -> None:
    replies = scripted([Reply.speech(STORY, pause_after_ms=1500), Reply.speech("Sure.")])
    session = FakeSession(responder=replies, cancelled_usage="produced")
    events = append(session, say("Tell me a story.", 1200) + silence(300))
    reply_id = next(e for e in events if e["type"] == "response.output_item.added")["item"]["id"]
    assert session.model.items[0] == Message(role="user", audio_ms=1400, id=events[2]["item_id"])
    # The user speaks over the answer: server VAD cancels it.
    events = append(session, say("Stop, stop.", 600))
    assert types(events)[0] == "input_audio_buffer.speech_started"
    assert events[0]["audio_start_ms"] == 1400  # not before the buffer (the last turn's end)
    done = done_of(events)
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["usage"]["output_token_details"]["audio_tokens"] == 30  # 1,500 ms made
    # The client had played 700 ms of it.
    assert truncate(session, reply_id, 700)["audio_end_ms"] == 700
    events = append(session, silence(300))
    assert types(events)[:2] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert events[0]["audio_end_ms"] == 2300  # 1,500 + 600 of speech + 200 of silence
    # The next request: 14 + 9 user audio tokens and the 700 ms left of the answer (14).
    done = done_of(events)
    assert done["status"] == "completed"
    assert done["usage"]["input_token_details"]["audio_tokens"] == 14 + 9 + 14


def test_speech_over_a_response_that_is_done_cancels_nothing() -> None:
    session = FakeSession(responder=scripted([Reply("It is sunny.", audio_ms=2000), Reply("OK.")]))
    events = append(session, say("Weather?", 500) + silence(300))
    reply_id = done_of(events)["output"][0]["id"]
    # Generated faster than real time: the answer is done, its playback is not.
    events = append(session, say("Thanks", 400))
    assert types(events) == ["input_audio_buffer.speech_started"]
    assert truncate(session, reply_id, 1200)["type"] == "conversation.item.truncated"
    error = truncate(session, reply_id, 1500)
    assert error["error"]["message"] == "Audio content of 1200ms is already shorter than 1500ms"


def test_interrupt_response_false_lets_the_answer_go_on() -> None:
    session = held(1000)
    session.receive(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}
                },
            },
        }
    )
    session.receive({"type": "response.create"})
    events = append(session, say("Hmm", 400) + silence(300))
    # The turn is committed, but no response starts while one is in progress.
    assert types(events) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert len(session.active_responses) == 1


# ------------------------------------------------------------------ out of band


def test_an_out_of_band_response_with_its_own_input_instructions_and_metadata() -> None:
    seen: list[list[Item]] = []

    def responder(items: Sequence[Item]) -> Reply:
        seen.append(list(items))
        return Reply("The user wants a table.") if len(seen) > 1 else Reply.speech("Sure.")

    session = FakeSession(responder=responder)
    events = append(session, say("Book a table for two.", 1000) + silence(300))
    spoken_id = events[2]["item_id"]
    before = [dict(i) for i in session.items]
    events = session.receive(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "output_modalities": ["text"],
                "instructions": "Summarize the user's request.",
                "metadata": {"purpose": "summary"},
                "input": [
                    {"type": "item_reference", "id": spoken_id},
                    user("In one sentence."),
                ],
            },
        }
    )
    assert types(events) == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 6,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    done = done_of(events)
    assert done["conversation_id"] is None
    assert done["metadata"] == {"purpose": "summary"}
    assert done["output"][0]["content"] == [
        {"type": "output_text", "text": "The user wants a table."}
    ]
    assert [dict(i) for i in session.items] == before  # nothing joined the conversation
    # The model heard the referenced audio; the request was that item and the inline one.
    assert [getattr(i, "text", None) for i in seen[1]] == [
        "Book a table for two.",
        "In one sentence.",
    ]
    model = ServerModel(GPT, config=SessionConfig(instructions="Summarize the user's request."))
    model.create_item(Message(role="user", audio_ms=1200))  # 1,000 ms and 200 of silence
    model.create_item(Message(role="user", text="In one sentence."))
    expected = model.create_response([Message(role="assistant", text="The user wants a table.")])
    assert done["usage"] == expected.usage.to_dict()
    assert (
        done["usage"]["input_token_details"]["text_tokens"],
        done["usage"]["input_token_details"]["audio_tokens"],
    ) == (23, 12)


@pytest.mark.parametrize(
    ("response", "code", "param"),
    [
        (
            {"conversation": "none", "input": [{"type": "item_reference", "id": "nope"}]},
            "item_not_found",
            "response.input[0].id",
        ),
        (
            {"conversation": "none", "input": [{"type": "message", "role": "bot", "content": []}]},
            "invalid_value",
            "response.input[0].role",
        ),
        (
            {"conversation": "none", "metadata": {f"k{n}": "v" for n in range(17)}},
            "invalid_value",
            "response.metadata",
        ),
        ({"conversation": "none", "metadata": {"k": 1}}, "invalid_value", "response.metadata.k"),
        ({"temperature": 0.7}, "unknown_parameter", "response.temperature"),
        ({"max_output_tokens": 0}, "invalid_value", "response.max_output_tokens"),
        ({"output_modalities": ["audio", "text"]}, "invalid_value", "response.output_modalities"),
        (
            {"input": [{"type": "item_reference", "id": "item_gone"}]},
            "item_not_found",
            "response.input[0].id",
        ),
    ],
)
def test_response_parameters_are_checked(response: dict[str, Any], code: str, param: str) -> None:
    session = FakeSession(responder=scripted([]))
    session.receive({"type": "conversation.item.create", "item": user("Hi", id="u1")})
    (error,) = session.receive({"type": "response.create", "response": response})
    assert (error["error"]["code"], error["error"]["param"]) == (code, param)
    assert len(session.model.items) == 1


def test_a_response_s_own_instructions_are_for_it_alone() -> None:
    session = FakeSession(responder=scripted([Reply("Hi."), Reply("Hi.")]))
    session.receive({"type": "conversation.item.create", "item": user("Hi", id="u1")})
    own = done_of(
        session.receive({"type": "response.create", "response": {"instructions": "Be terse."}})
    )
    assert session.model.config.instructions == session.session["instructions"]
    model = ServerModel(GPT, config=SessionConfig(instructions="Be terse."))
    model.create_item(Message(role="user", text="Hi"))
    assert (
        own["usage"]["input_tokens"]
        == model.create_response([Message(role="assistant", text="Hi.")]).usage.input_tokens
    )
    again = done_of(session.receive({"type": "response.create"}))
    assert (
        again["usage"]["input_tokens"] > own["usage"]["input_tokens"]
    )  # the default instructions are longer


def test_a_cancelled_response_bills_nothing_by_default_as_recorded() -> None:
    replies = scripted([Reply.speech(STORY, pause_after_ms=1000)])
    session = FakeSession(responder=replies)
    session.receive({"type": "conversation.item.create", "item": user("Tell me a story.", id="u1")})
    session.receive({"type": "response.create"})
    done = [e for e in session.receive({"type": "response.cancel"}) if e["type"] == "response.done"]
    assert done[0]["response"]["status"] == "cancelled"
    usage = done[0]["response"]["usage"]
    assert usage["input_tokens"] == usage["output_tokens"] == 0
