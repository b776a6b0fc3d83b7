"""replay: recorded sessions through the model, hand-built logs, fitting."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from context_manager import InputFormatError, TokenCounter, get_model_profile
from context_manager.replay import LogEvent, fit_profile, read_event_log, replay

LOGS = Path(__file__).resolve().parents[1] / "data" / "realtime-logs"
ALL_LOGS = sorted(LOGS.glob("*.jsonl"))


def gpt_realtime_logs() -> list[Path]:
    return [p for p in ALL_LOGS if replay(read_event_log(p)).profile.name == "gpt-realtime"]


@pytest.mark.parametrize("path", gpt_realtime_logs(), ids=lambda p: p.stem[:60])
def test_recorded_gpt_realtime_sessions(path: Path) -> None:
    """Every response: input audio exact, input text within 5 %."""
    report = replay(read_event_log(path))
    rows = report.compared()
    assert rows, "no completed response to compare"
    for row in rows:
        assert row.predicted.input.audio == row.observed.input.audio
        assert (
            abs(row.predicted.input.text - row.observed.input.text)
            <= 0.05 * row.observed.input.text
        )


def test_at_least_the_expected_recordings_are_gpt_realtime() -> None:
    assert len(gpt_realtime_logs()) >= 14
    assert len(ALL_LOGS) == 17


def test_cached_tokens_match_within_a_session() -> None:
    # The three-turn session: 0, 64 (the first turn's input and output), 0 (the first
    # assistant item lost its audio, breaking the prefix there).
    path = LOGS / "test_openai_ws__test_input_audio_retention_segments_three_server_vad_turns.jsonl"
    rows = replay(read_event_log(path)).compared()
    assert [r.predicted.cached_tokens for r in rows] == [0, 64, 0]
    assert [r.observed.cached_tokens for r in rows] == [0, 64, 0]
    assert [r.predicted.input.audio for r in rows] == [27, 96, 124]


def wrapped(t: float, direction: str, event: dict) -> str:
    return json.dumps({"direction": direction, "t": t, "event": event})


def pcm(ms: int) -> str:
    return base64.b64encode(bytes(48 * ms)).decode()


def build_log(tmp_path: Path) -> Path:
    """A session written by hand: a spoken turn, an answer with real audio bytes, a user
    interruption (truncate), a deletion, and event types the model does not know."""
    session = {
        "model": "gpt-realtime",
        "instructions": "Reply in a few words.",
        "tools": [],
        "truncation": "auto",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}},
    }
    u1 = {
        "id": "u1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    a1 = {
        "id": "a1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "Hello Marcelo, nice to meet you."}],
    }
    u2 = {
        "id": "u2",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "What time is it?"}],
    }
    a2 = {
        "id": "a2",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Noon."}],
    }

    def done(output, usage):
        return {
            "type": "response.done",
            "response": {
                "status": "completed",
                "conversation_id": "c",
                "output": output,
                "usage": usage,
            },
        }

    lines = [
        wrapped(0.0, "server", {"type": "session.created", "session": session}),
        wrapped(0.1, "server", {"type": "some.future_event", "payload": 1}),
        wrapped(
            1.0,
            "server",
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1000, "item_id": "u1"},
        ),
        wrapped(
            3.8,
            "server",
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 3796, "item_id": "u1"},
        ),
        wrapped(
            3.9, "server", {"type": "conversation.item.added", "previous_item_id": None, "item": u1}
        ),
        wrapped(4.0, "server", {"type": "response.created", "response": {}}),
        wrapped(4.1, "server", {"type": "response.output_item.added", "item": {"id": "a1"}}),
        wrapped(
            4.2,
            "server",
            {"type": "response.output_audio.delta", "item_id": "a1", "delta": pcm(1200)},
        ),
        wrapped(
            4.3,
            "server",
            {"type": "response.output_audio.delta", "item_id": "a1", "delta": pcm(900)},
        ),
        wrapped(
            4.4,
            "server",
            done(
                [a1],
                {
                    "input_tokens": 41,
                    "input_token_details": {"text_tokens": 14, "audio_tokens": 27},
                },
            ),
        ),
        wrapped(
            5.0,
            "client",
            {
                "type": "conversation.item.truncate",
                "item_id": "a1",
                "content_index": 0,
                "audio_end_ms": 1000,
            },
        ),
        wrapped(
            5.1,
            "server",
            {
                "type": "conversation.item.truncated",
                "item_id": "a1",
                "content_index": 0,
                "audio_end_ms": 1000,
            },
        ),
        wrapped(
            6.0, "server", {"type": "conversation.item.added", "previous_item_id": "a1", "item": u2}
        ),
        wrapped(6.1, "server", {"type": "response.created", "response": {}}),
        wrapped(6.2, "server", {"type": "response.output_item.added", "item": {"id": "a2"}}),
        wrapped(6.3, "server", done([a2], {})),
        wrapped(7.0, "server", {"type": "conversation.item.deleted", "item_id": "u1"}),
        wrapped(7.1, "server", {"type": "response.created", "response": {}}),
        wrapped(7.2, "server", done([], {})),
    ]
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_hand_built_log(tmp_path: Path) -> None:
    report = replay(read_event_log(build_log(tmp_path)))
    r0, r1, r2 = report.rows
    # R0: instructions 6 + user audio (4 + 4 text, floor(2796 / 100) = 27 audio).
    assert (r0.predicted.input.text, r0.predicted.input.audio) == (14, 27)
    assert r0.predicted.input == r0.observed.input
    # Output audio from the delta bytes: 2,100 ms -> 42 tokens.
    assert r0.predicted.output.audio == 42
    # R1: the answer was cut at 1,000 ms (20 audio tokens, transcript gone: 4 + 8 text) and the
    # user typed a question (4 + 5).
    assert (r1.predicted.input.text, r1.predicted.input.audio) == (14 + 12 + 9, 27 + 20)
    # R2: u1 deleted; the text answer a2 joined (4 + its tokens). The cut answer is still the
    # latest assistant *audio* item, so it keeps its 20 audio tokens.
    noon = TokenCounter(get_model_profile("gpt-realtime")).text("Noon.")
    assert (r2.predicted.input.text, r2.predicted.input.audio) == (6 + 12 + 9 + 4 + noon, 20)
    # Responses without usage in the log are shown but not compared.
    assert [r.compared for r in report.rows] == [True, False, False]


def test_the_three_log_shapes_read_alike(tmp_path: Path) -> None:
    event = {"type": "session.created", "session": {"model": "gpt-realtime"}}
    shapes = [
        json.dumps(event),
        json.dumps({"direction": "server", "t": 1.5, "event": event}),
        json.dumps({"kind": "message", "direction": "received", "at": None, "data": event}),
        json.dumps({"type": "response.create"}),
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(shapes))
    events = read_event_log(path)
    assert [e.direction for e in events] == ["server", "server", "server", "client"]
    assert events[1].t == 1.5
    assert all(e.event["type"] for e in events)


@pytest.mark.parametrize(
    ("line", "note"),
    [
        ("{not json", "line 2: not JSON; skipped"),
        ("[1]", "line 2: not a JSON object; skipped"),
        (
            '{"hello": 1}',
            "line 2: not an event (no 'type', nor an 'event' or 'data' wrapper); skipped",
        ),
        (
            '{"direction": "up", "event": {"type": "x"}}',
            "line 2: direction must be 'server' or 'client'; skipped",
        ),
        ("[" * 100_000, "line 2: not JSON; skipped"),
    ],
)
def test_bad_lines_become_notes_with_their_number(tmp_path: Path, line: str, note: str) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"type": "session.created", "session": {}}\n' + line + "\n")
    log = read_event_log(path)
    assert len(log) == 1
    assert log.notes == [note]
    assert replay(log).notes[0] == note  # the report carries them


@pytest.mark.parametrize("text", ["", "\n\n", "{not json\n[1]\n"])
def test_a_file_without_any_event_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(text)
    with pytest.raises(InputFormatError, match="no Realtime event in it"):
        read_event_log(path)


def test_a_latin1_log_replays_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    line = '{"type": "session.created", "session": {"instructions": "Caf\u00e9"}}\n'
    path.write_bytes(line.encode("latin-1"))
    log = read_event_log(path)
    assert len(log) == 1
    assert log.notes == ["not UTF-8: undecodable bytes replaced"]


def test_fit_recovers_a_known_setting() -> None:
    """Observed usage written by a profile with function items 3 tokens dearer: the fit from
    the built-in profile (1) finds 3 and brings the error to zero."""
    truth = get_model_profile("gpt-realtime").model_copy(update={"function_overhead_tokens": 3})
    logs = []
    for path in ALL_LOGS:
        if "tool" not in path.name or "2.1" in path.name:
            continue
        events = read_event_log(path)
        predicted = replay(events, truth, follow_session_model=False)
        # Replace each response.done usage by what `truth` predicts.
        rows = iter(predicted.rows)
        rewritten = []
        for e in events:
            if e.direction == "server" and e.event.get("type") == "response.done":
                row = next(rows)
                response = dict(e.event["response"]) | {"usage": row.predicted.to_dict()}
                e = LogEvent("server", dict(e.event) | {"response": response})
            rewritten.append(e)
        logs.append(rewritten)
    assert logs
    fitted, error, baseline = fit_profile(logs, get_model_profile("gpt-realtime"))
    assert baseline > 0
    assert error == 0
    assert fitted.function_overhead_tokens == 3


def test_unknown_session_models_resolve_by_prefix() -> None:
    path = LOGS / "test_azure_voice_live_ws__test_tool_call_round.jsonl"
    assert (
        replay(read_event_log(path)).profile.name == "gpt-realtime"
    )  # gpt-realtime-global-standard
