"""Items: the conversation JSONL format and the openai SDK's realtime types."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from openai.types.realtime import (
    ConversationItemCreateEvent,
    RealtimeConversationItemAssistantMessage,
)
from pydantic import TypeAdapter

from context_manager import (
    FunctionCall,
    FunctionCallOutput,
    Image,
    InputFormatError,
    Message,
    from_realtime_item,
    read_jsonl,
    to_realtime_item,
    write_jsonl,
)
from context_manager.items import item_from_dict, item_to_dict, iter_jsonl
from context_manager.wire import audio_ms_from_bytes

from .strategies import items, items_strategy

RECORDINGS = Path(__file__).resolve().parent / "data" / "realtime-logs"

EXAMPLE = """\
{"type":"message","role":"user","text":"Book me to Oslo.","audio_ms":3400,"t":12.5}
{"type":"message","role":"assistant","text":"Which date?","audio_ms":5200}
{"type":"function_call","name":"lookup","call_id":"c1","arguments":"{\\"code\\":\\"K7QX2P\\"}"}
{"type":"function_call_output","call_id":"c1","output":"found"}
"""


def test_the_design_example_reads() -> None:
    got = list(iter_jsonl(EXAMPLE.splitlines()))
    assert got == [
        Message(role="user", text="Book me to Oslo.", audio_ms=3400, t=12.5),
        Message(role="assistant", text="Which date?", audio_ms=5200),
        FunctionCall(name="lookup", call_id="c1", arguments='{"code":"K7QX2P"}'),
        FunctionCallOutput(call_id="c1", output="found"),
    ]
    assert got[0].is_audio and not got[0].as_text().is_audio


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"type":"message","role":"user","audio_ms":"long"}', "line 2: field 'audio_ms': Input should be a valid integer"),
        ('{"type":"message","role":"user","audio_ms":-3}', "line 2: field 'audio_ms': Input should be greater than or equal to 0"),
        ('{"type":"message","role":"robot"}', "line 2: field 'role': Input should be 'system', 'user' or 'assistant'"),
        ('{"type":"message"}', "line 2: field 'role': Field required"),
        ('{"type":"picture"}', "line 2: field 'type'"),
        ('{"type":"function_call","call_id":"c"}', "line 2: field 'name': Field required"),
        ('{"type":"message","role":"user","txt":"hi"}', "line 2: field 'txt': Extra inputs are not permitted"),
        ('{"type":"message","role":"system","audio_ms":10}', "line 2: a system message cannot carry audio"),
        ('{"type":"message","role":"user",', "line 2: not valid JSON"),
        ("[1,2]", "line 2: each line must be a JSON object, got list"),
    ],
)  # fmt: skip
def test_errors_give_the_line_and_field(line: str, message: str) -> None:
    lines = ['{"type":"message","role":"user","text":"ok"}', line]
    with pytest.raises(InputFormatError) as info:
        list(iter_jsonl(lines, source="talk.jsonl"))
    assert str(info.value).startswith("talk.jsonl:")
    assert message in str(info.value)
    assert info.value.line == 2


def test_blank_lines_are_skipped_and_line_numbers_stay_true() -> None:
    with pytest.raises(InputFormatError, match="line 3"):
        list(iter_jsonl(['{"type":"message","role":"user"}', "", '{"type":"x"}']))


def test_read_and_write_files(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_text(EXAMPLE)
    got = read_jsonl(path)
    out = tmp_path / "copy.jsonl"
    write_jsonl(got, out)
    assert read_jsonl(out) == got
    with pytest.raises(InputFormatError, match="nope.jsonl: cannot read"):
        read_jsonl(tmp_path / "nope.jsonl")


@given(items_strategy())
def test_jsonl_round_trip(conversation: list) -> None:
    buffer = io.StringIO()
    write_jsonl(conversation, buffer)
    assert list(iter_jsonl(buffer.getvalue().split("\n"))) == conversation


@given(items)
def test_jsonl_items_openai_items_round_trip(item) -> None:
    """JSONL -> item -> openai type -> item is lossless (duration and time travel beside the
    openai object, which has no field for them)."""
    from_file = item_from_dict(json.loads(json.dumps(item_to_dict(item))))
    assert from_file == item
    wire = to_realtime_item(from_file)
    audio_ms = from_file.audio_ms if isinstance(from_file, Message) else None
    back = from_realtime_item(wire, audio_ms=audio_ms, t=from_file.t)
    assert back == item
    # And through the JSON the server would send.
    as_json = json.loads(wire.model_dump_json(exclude_none=True))
    assert from_realtime_item(as_json, audio_ms=audio_ms, t=from_file.t) == item


@given(items)
def test_created_items_are_valid_client_events(item) -> None:
    sendable = item.as_text() if isinstance(item, Message) and item.role == "assistant" else item
    event = {
        "type": "conversation.item.create",
        "item": to_realtime_item(sendable).model_dump(exclude_none=True),
    }
    TypeAdapter(ConversationItemCreateEvent).validate_python(event)


def test_assistant_audio_is_output_audio_and_its_text_form_output_text() -> None:
    item = Message(role="assistant", text="Hello there.", audio_ms=3050, id="item_1")
    wire = to_realtime_item(item)
    assert isinstance(wire, RealtimeConversationItemAssistantMessage)
    assert wire.content[0].type == "output_audio" and wire.content[0].transcript == "Hello there."
    text = to_realtime_item(item.as_text())
    assert text.model_dump(exclude_none=True)["content"] == [
        {"type": "output_text", "text": "Hello there."}
    ]


def test_duration_is_measured_from_audio_bytes() -> None:
    pcm = base64.b64encode(bytes(48 * 1234)).decode()
    obj = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "audio": pcm, "transcript": "hi"}],
    }
    assert from_realtime_item(obj) == Message(role="user", text="hi", audio_ms=1234)
    ulaw = base64.b64encode(bytes(8 * 500)).decode()
    assert audio_ms_from_bytes(ulaw, "audio/pcmu") == 500
    with pytest.raises(InputFormatError, match="unknown audio format 'mp3'"):
        audio_ms_from_bytes(ulaw, "mp3")


def test_audio_without_bytes_or_duration_is_a_clear_error() -> None:
    obj = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    with pytest.raises(InputFormatError, match="field 'audio_ms': audio content carries no bytes"):
        from_realtime_item(obj)


def test_unmodelled_item_types_are_refused_by_name() -> None:
    with pytest.raises(InputFormatError, match="item type 'mcp_call' is not modelled"):
        from_realtime_item({"type": "mcp_call", "id": "x"})


def test_recorded_server_items_convert() -> None:
    converted = 0
    for path in sorted(RECORDINGS.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            event = json.loads(line)["data"]
            if event.get("type") != "conversation.item.done":
                continue
            raw = event["item"]
            audio = any(
                p.get("type") in ("input_audio", "output_audio") for p in raw.get("content", [])
            )
            item = from_realtime_item(raw, audio_ms=1000 if audio else None)
            assert item.id == raw["id"]
            converted += 1
    assert converted >= 30


def test_image_messages() -> None:
    item = Message(
        role="user",
        text="what is it?",
        images=(Image(url="data:image/png;base64,AA", detail="low"),),
    )
    dumped = to_realtime_item(item).model_dump(exclude_none=True)
    assert dumped["content"] == [
        {"type": "input_text", "text": "what is it?"},
        {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
    ]
    with pytest.raises(ValueError, match="only user messages carry images"):
        Message(role="assistant", images=(Image(url="x"),))


@pytest.mark.parametrize("value", [float("nan"), 1.5, True, -1])
def test_a_message_refuses_an_audio_length_that_is_not_a_whole_number(value: object) -> None:
    with pytest.raises(ValueError, match="audio_ms must be a whole number from 0 to 86,400,000"):
        Message(role="user", audio_ms=value)  # type: ignore[arg-type]
