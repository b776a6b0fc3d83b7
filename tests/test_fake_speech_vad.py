"""The fake server's ears: spoken clips, server VAD, input transcription, audio items."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from context_manager.items import Item, Message
from context_manager.testing import FakeSession, Reply, hear, say, scripted, silence
from context_manager.testing.vad import EnergyVad, Mark, VadSettings
from tests.test_testing import dedup, shape, types

LOGS = Path(__file__).parent / "data" / "realtime-logs"


def append(session: FakeSession, audio: bytes) -> list[dict[str, Any]]:
    return session.receive(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
    )


def update(session: FakeSession, **audio_input: Any) -> dict[str, Any]:
    (event,) = session.receive(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": audio_input}}}
    )
    return event


def quiet(ms: int, rms: float) -> bytes:
    """A square wave of `rms` (full scale 1): not a clip, but audio of a known level."""
    level = int(rms * 32768)
    wave = np.tile(np.array([level, -level], dtype="<i2"), ms * 12)
    return wave.tobytes()


class Ears:
    """A responder that records what it hears and answers briefly."""

    def __init__(self) -> None:
        self.heard: list[list[Item]] = []

    def __call__(self, items: Sequence[Item]) -> Reply:
        self.heard.append(list(items))
        return Reply("OK.", audio_ms=500)


# ------------------------------------------------------------------ clips


def test_a_clip_is_loud_stamped_audio_of_its_length_in_each_format() -> None:
    clip = say("Book a table.", 600)
    assert len(clip) == 600 * 48
    assert len(say("Book a table.")) == 1200 * 48  # 400 ms a word by default
    assert say("Book a table.", 600) == clip  # the same words, the same bytes
    assert len(say("Book a table.", 600, audio_format="audio/pcmu")) == 600 * 8
    for fmt in ("audio/pcm", "audio/pcmu", "audio/pcma"):
        audio = silence(200, fmt) + say("one", 300, audio_format=fmt) + silence(200, fmt)
        assert hear(audio, fmt) == "one"
        assert hear(silence(500, fmt), fmt) == ""
    # Any part of a clip is the clip; a clip said twice is heard twice.
    assert hear(clip[4800:9600]) == "Book a table."
    assert hear(say("yes", 100) + say("yes", 100) + say("no", 100)) == "yes yes no"
    with pytest.raises(ValueError, match="needs words"):
        say("  ")
    with pytest.raises(ValueError, match="at least 10 ms"):
        say("hi", 5)


# ------------------------------------------------------------------ voice activity detection


@pytest.mark.parametrize(
    ("audio", "settings", "marks"),
    [
        # 600 ms of speech then 700 of silence: padding stops at the buffer's start; the turn
        # ends after 200 ms of silence.
        (say("hi", 600) + silence(700), VadSettings(), [("started", 0), ("stopped", 800)]),
        # 500 ms of silence first: speech from 500, padded back to 200.
        (
            silence(500) + say("hi", 600) + silence(700),
            VadSettings(),
            [("started", 200), ("stopped", 1300)],
        ),
        # Silence of 500 ms ends the turn; 100 ms of padding.
        (
            silence(500) + say("hi", 600) + silence(700),
            VadSettings(prefix_padding_ms=100, silence_duration_ms=500),
            [("started", 400), ("stopped", 1600)],
        ),
        # A pause shorter than the silence duration does not end the turn.
        (
            say("a", 300) + silence(150) + say("b", 300) + silence(300),
            VadSettings(),
            [("started", 0), ("stopped", 950)],
        ),
        # Two turns.
        (
            say("a", 300) + silence(400) + say("b", 300) + silence(300),
            VadSettings(),
            [("started", 0), ("stopped", 500), ("started", 500), ("stopped", 1200)],
        ),
        # Still speaking at the end: no stop yet.
        (silence(100) + say("a", 300), VadSettings(), [("started", 0)]),
        # Level 0.3 (RMS 0.03) is under the 0.5 threshold, over a 0.2 one.
        (quiet(400, 0.03) + silence(300), VadSettings(), []),
        (
            quiet(400, 0.03) + silence(300),
            VadSettings(threshold=0.2),
            [("started", 0), ("stopped", 600)],
        ),
    ],
)
def test_vad_marks_by_hand(
    audio: bytes, settings: VadSettings, marks: list[tuple[str, int]]
) -> None:
    assert EnergyVad(settings).feed(audio) == [Mark(kind, ms) for kind, ms in marks]  # type: ignore[arg-type]
    # Chunk boundaries change nothing (7 ms chunks: 336 bytes, frames straddle them).
    vad = EnergyVad(settings)
    chunked = [m for n in range(0, len(audio), 336) for m in vad.feed(audio[n : n + 336])]
    assert chunked == [Mark(kind, ms) for kind, ms in marks]  # type: ignore[arg-type]


def test_vad_in_g711() -> None:
    fmt = "audio/pcmu"
    audio = silence(500, fmt) + say("hi", 600, audio_format=fmt) + silence(700, fmt)
    assert EnergyVad(VadSettings(), fmt).feed(audio) == [
        Mark("started", 200),
        Mark("stopped", 1300),
    ]


# ------------------------------------------------------------------ a session's turns


def test_a_session_starts_with_server_vad_and_no_transcription_as_recorded() -> None:
    recorded = json.loads(
        (LOGS / "test_openai_ws__test_audio_in_server_vad_turn.jsonl").read_text().splitlines()[0]
    )["data"]
    (created,) = FakeSession().opening()
    assert created["session"]["audio"]["input"] == recorded["session"]["audio"]["input"]
    assert created["session"]["audio"]["input"]["transcription"] is None
    assert created["session"]["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def test_a_spoken_turn_without_transcription_is_heard_by_the_model_only() -> None:
    ears = Ears()
    session = FakeSession(responder=ears)
    assert append(session, silence(500)) == []
    events = append(session, say("Book a table for two.", 1000) + silence(400))
    assert types(events)[:6] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    assert (events[0]["audio_start_ms"], events[1]["audio_end_ms"]) == (200, 1700)
    assert not [t for t in types(events) if "transcription" in t]
    item_id = events[2]["item_id"]
    assert events[3]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    # The conversation holds 1,500 ms of audio and no text; the model heard the words.
    assert session.model.items[0] == Message(role="user", text="", audio_ms=1500, id=item_id)
    assert ears.heard == [
        [Message(role="user", text="Book a table for two.", audio_ms=1500, id=item_id)]
    ]
    assert session.heard(item_id) == "Book a table for two."
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["usage"]["input_token_details"]["audio_tokens"] == 15
    (retrieved,) = session.receive({"type": "conversation.item.retrieve", "item_id": item_id})
    part = retrieved["item"]["content"][0]
    assert part["transcript"] is None
    audio = base64.b64decode(part["audio"])
    assert len(audio) == 1500 * 48  # 300 ms of padding, the clip, 200 ms of silence
    assert audio == silence(300) + say("Book a table for two.", 1000) + silence(200)


def test_audio_re_sent_in_a_new_session_is_heard_again() -> None:
    first = FakeSession(responder=Ears())
    events = append(first, say("My code is K7QX.", 900) + silence(300))
    (retrieved,) = first.receive(
        {"type": "conversation.item.retrieve", "item_id": events[2]["item_id"]}
    )
    ears = Ears()
    second = FakeSession(responder=ears, session_id="sess_002")
    item = {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": retrieved["item"]["content"][0]["audio"]}]}  # fmt: skip
    added, _ = second.receive({"type": "conversation.item.create", "item": item})
    second.receive({"type": "response.create"})
    assert second.heard(added["item"]["id"]) == "My code is K7QX."
    assert ears.heard[0][0].text == "My code is K7QX."  # type: ignore[union-attr]
    assert second.model.items[0].text == ""  # type: ignore[union-attr]


def test_push_to_talk_commits_by_hand_and_never_answers_by_itself() -> None:
    ears = Ears()
    session = FakeSession(responder=ears)
    update(session, turn_detection=None)
    assert append(session, say("Hello there.", 800) + silence(600)) == []
    events = session.receive({"type": "input_audio_buffer.commit"})
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert session.model.items[0].audio_ms == 1400  # type: ignore[union-attr]
    session.receive({"type": "response.create"})
    assert ears.heard[0][0].text == "Hello there."  # type: ignore[union-attr]


def test_a_manual_commit_under_server_vad_makes_no_response() -> None:
    session = FakeSession(responder=Ears())
    events = append(session, say("Hello", 400))
    assert types(events) == ["input_audio_buffer.speech_started"]
    events = session.receive({"type": "input_audio_buffer.commit"})
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[0]["item_id"] == session.model.items[0].id  # the id speech_started gave
    assert append(session, silence(500)) == []  # the turn was committed: nothing stops
    # Under VAD, silence is not kept beyond what a turn's padding could reach back to.
    for _ in range(100):
        append(session, silence(100))
    session.receive({"type": "input_audio_buffer.commit"})
    assert session.model.items[-1].audio_ms == 320  # type: ignore[union-attr]


def test_create_response_false_gives_the_turn_but_no_response() -> None:
    session = FakeSession(responder=Ears())
    update(session, turn_detection={"type": "server_vad", "create_response": False})
    events = append(session, say("Hi", 400) + silence(300))
    assert types(events) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]


def test_semantic_vad_waits_as_long_as_its_eagerness_allows() -> None:
    session = FakeSession(responder=Ears())
    update(session, turn_detection={"type": "semantic_vad", "eagerness": "high"})
    events = append(session, say("So I was thinking", 800) + silence(1500))
    assert types(events) == ["input_audio_buffer.speech_started"]
    events = append(session, silence(600))
    assert events[0]["type"] == "input_audio_buffer.speech_stopped"
    assert events[0]["audio_end_ms"] == 2800  # 800 + 2,000 ms (eagerness high)


@pytest.mark.parametrize(
    ("audio_input", "code", "param"),
    [
        (
            {"turn_detection": {"type": "server_vad", "volume": 1}},
            "unknown_parameter",
            "session.audio.input.turn_detection.volume",
        ),
        (
            {"turn_detection": {"type": "server_vad", "threshold": 1.5}},
            "invalid_value",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {"turn_detection": {"type": "server_vad", "silence_duration_ms": "long"}},
            "invalid_value",
            "session.audio.input.turn_detection.silence_duration_ms",
        ),
        (
            {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}},
            "invalid_value",
            "session.audio.input.turn_detection.eagerness",
        ),
        (
            {"turn_detection": {"type": "semantic_vad", "threshold": 0.5}},
            "unknown_parameter",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {"turn_detection": {"type": "push_to_talk"}},
            "invalid_value",
            "session.audio.input.turn_detection.type",
        ),
        (
            {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}},
            "unsupported_by_fake",
            "session.audio.input.turn_detection.idle_timeout_ms",
        ),
        (
            {"transcription": {"model": "m", "speed": 2}},
            "unknown_parameter",
            "session.audio.input.transcription.speed",
        ),
        ({"vad": True}, "unknown_parameter", "session.audio.input.vad"),
    ],
)
def test_turn_detection_and_transcription_are_checked(
    audio_input: dict[str, Any], code: str, param: str
) -> None:
    session = FakeSession()
    before = json.dumps(session.session)
    (error,) = session.receive(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": audio_input}}}
    )
    assert (error["error"]["code"], error["error"]["param"]) == (code, param)
    assert json.dumps(session.session) == before


# ------------------------------------------------------------------ input transcription


TRANSCRIBED = [
    *["conversation.item.input_audio_transcription.delta"] * 3,
    "conversation.item.input_audio_transcription.completed",
]


@pytest.mark.parametrize("timing", ["late", "interleaved", "early"])
def test_transcripts_come_when_the_timing_says(timing: str) -> None:
    session = FakeSession(responder=Ears(), transcription_timing=timing)  # type: ignore[arg-type]
    update(session, transcription={"model": "gpt-realtime-whisper"})
    events = append(session, say("Good morning.", 700) + silence(300))
    kinds = types(events)
    at = {
        "late": kinds.index("rate_limits.updated") + 1,
        "interleaved": kinds.index("response.created") + 1,
        "early": kinds.index("conversation.item.done") + 1,
    }[timing]
    assert kinds[at : at + 4] == TRANSCRIBED
    # As recorded, the first delta has a leading space.
    assert [e.get("delta") for e in events[at : at + 3]] == [" Good", " morning", "."]
    completed = events[at + 3]
    assert completed["transcript"] == "Good morning."
    assert completed["usage"] == {"type": "duration", "seconds": 1}  # 1,000 ms committed
    item = session.items[0]
    assert item["content"] == [{"type": "input_audio", "transcript": "Good morning."}]


def test_a_manual_commit_is_transcribed_at_once() -> None:
    session = FakeSession()
    update(session, transcription={"model": "m"}, turn_detection=None)
    append(session, say("Hi", 300))
    events = session.receive({"type": "input_audio_buffer.commit"})
    assert types(events)[3:] == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert events[-1]["transcript"] == "Hi"


def test_a_recorded_server_vad_turn_gives_the_same_events_in_the_same_shapes() -> None:
    frames = [
        json.loads(line)
        for line in (LOGS / "test_openai_ws__test_audio_in_server_vad_turn.jsonl")
        .read_text()
        .splitlines()
    ]
    recorded = [f["data"] for f in frames if f["direction"] == "received"]
    sent = next(f["data"] for f in frames if f["data"]["type"] == "session.update")
    answer = next(e for e in recorded if e["type"] == "response.done")["response"]["output"][0]
    reply = Reply(answer["content"][0]["transcript"], audio_ms=6800)
    session = FakeSession(
        responder=scripted([reply]), send_audio=True, transcription_timing="interleaved"
    )
    got = session.opening() + session.receive(sent)
    got += append(session, silence(1760) + say("Hello, my name is Marcelo.", 2290) + silence(800))
    got = [e for e in got if e["type"] != "rate_limits.updated"]
    # The real speech began at 1,760 ms and was 2,796 ms long with its padding and silence.
    marks = [e.get("audio_start_ms") or e.get("audio_end_ms") for e in got if "speech" in e["type"]]
    assert marks == [1460, 4250]
    real_marks = [
        e.get("audio_start_ms") or e.get("audio_end_ms") for e in recorded if "speech" in e["type"]
    ]
    assert real_marks == [1460, 4256]
    transcription = next(e for e in got if e["type"].endswith("transcription.completed"))
    assert transcription["transcript"] == "Hello, my name is Marcelo."
    # The same events in the same order, but for the real server's interleaving of deltas.
    delta = ("transcription", "delta")

    def steps(events: list[dict[str, Any]]) -> list[str]:
        return dedup([t for t in types(events) if not any(d in t for d in delta)])

    assert steps(got) == steps(recorded)
    fake_shapes = {(e["type"], json.dumps(shape(e), sort_keys=True)) for e in got}
    real_shapes = {(e["type"], json.dumps(shape(e), sort_keys=True)) for e in recorded}
    assert fake_shapes == real_shapes
