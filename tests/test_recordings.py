"""The built-in gpt-realtime profile against real server usage (data/realtime-logs).

Each case is the first response of a recorded session, whose input is exactly the
instructions, the tools and the items sent before it. The profile must predict the server's
``input_token_details`` from its own rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from context_manager import Message, TokenCounter, get_model_profile
from context_manager.sdk import from_realtime_item

LOGS = Path(__file__).resolve().parent / "data" / "realtime-logs"


def first_response(name: str) -> tuple[dict, list, dict]:
    """The session config, the items before the first response.done, and its usage."""
    session: dict = {}
    items: list = []
    speech: dict[str, int] = {}
    for line in (LOGS / f"{name}.jsonl").read_text().splitlines():
        frame = json.loads(line)
        event = frame["data"]
        kind = event.get("type")
        if frame["direction"] == "sent" and kind == "session.update":
            session = event["session"]
        elif kind == "input_audio_buffer.speech_started":
            speech["start"] = event["audio_start_ms"]
        elif kind == "input_audio_buffer.speech_stopped":
            speech["end"] = event["audio_end_ms"]
        elif kind == "conversation.item.done" and event["item"].get("role") in ("user", "system"):
            raw = event["item"]
            audio = (
                speech["end"] - speech["start"]
                if raw.get("content", [{}])[0].get("type") == "input_audio"
                else None
            )
            items.append(from_realtime_item(raw, audio_ms=audio))
        elif kind == "response.done":
            return session, items, event["response"]["usage"]
    raise AssertionError("no response.done")


@pytest.mark.parametrize(
    "name",
    [
        "test_openai_ws__test_text_in_audio_out_turn",
        "test_openai_ws_sideband__test_webrtc_sideband_audio_turn",
        "test_openai_ws__test_audio_in_server_vad_turn",
        "test_openai_ws__test_input_audio_retention_segments_three_server_vad_turns",
        "test_azure_ws__test_audio_in_server_vad_transcribes",
    ],
)
def test_first_response_input_audio_is_exact(name: str) -> None:
    session, items, usage = first_response(name)
    counter = TokenCounter(get_model_profile("gpt-realtime"))
    predicted = counter.items(items)
    assert predicted.audio == usage["input_token_details"]["audio_tokens"]


@pytest.mark.parametrize(
    "name",
    [
        "test_openai_ws__test_text_in_audio_out_turn",
        "test_openai_ws_sideband__test_webrtc_sideband_audio_turn",
    ],
)
def test_first_response_text_input_is_exact_for_text_items(name: str) -> None:
    session, items, usage = first_response(name)
    assert all(isinstance(i, Message) and not i.is_audio for i in items)
    counter = TokenCounter(get_model_profile("gpt-realtime"))
    predicted = counter.text(session["instructions"]) + counter.items(items).text
    assert predicted == usage["input_token_details"]["text_tokens"]


@pytest.mark.parametrize(
    "name",
    [
        "test_openai_ws__test_tool_call_round",
        "test_azure_ws__test_tool_call_round",
        "test_parity_ws__test_text_tool_round_parity_openai-previous",
        "test_azure_ws__test_spoken_turn_transcribed_drives_a_tool_and_answers_in_audio",
    ],
)
def test_tools_are_counted_within_one_token(name: str) -> None:
    session, items, usage = first_response(name)
    counter = TokenCounter(get_model_profile("gpt-realtime"))
    predicted = (
        counter.text(session["instructions"])
        + counter.tools(session["tools"])
        + counter.items(items).text
    )
    observed = usage["input_token_details"]["text_tokens"]
    assert abs(predicted - observed) <= 1
