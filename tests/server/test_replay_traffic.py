"""replay on today's traffic: every recording, imperfect copies of them, push-to-talk,
out-of-band responses and response overrides (logs written by the fake server)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from context_manager.live.records import ResponseOutcome
from context_manager.replay import EventLog, LogEvent, read_event_log, replay
from context_manager.server import ManualClock
from context_manager.testing import FakeSession
from tests.cli_runner import run_cli

LOGS = Path(__file__).resolve().parents[1] / "data" / "realtime-logs"
ALL_LOGS = sorted(LOGS.glob("*.jsonl"))
READ = {p: read_event_log(p) for p in ALL_LOGS}


def predictions(rows: Iterable[ResponseOutcome]) -> list[tuple[Any, ...]]:
    return [(r.session, r.response, r.in_band, r.predicted) for r in rows]


@pytest.mark.parametrize("path", ALL_LOGS, ids=lambda p: p.stem[:60])
def test_every_recording_replays_within_its_targets(path: Path) -> None:
    """Input audio exact and input text within 5 % on every compared response, the
    gpt-realtime-2.1 recordings with tools included (their preamble is in the profile)."""
    report = replay(READ[path])
    rows = report.compared()
    assert rows
    for row in rows:
        assert row.predicted.input.audio == row.observed.input.audio
        assert abs(row.predicted.input.text - row.observed.input.text) <= (
            0.05 * row.observed.input.text
        )


def test_the_reasoning_model_recordings_exactly() -> None:
    """gpt-realtime-2.1 with one tool: the fitted preamble (288) and item overhead (6) give
    the input within 6 tokens and the cached tokens exactly; reasoning is priced as output."""
    path = LOGS / "test_parity_ws__test_text_tool_round_parity_openai-current.jsonl"
    rows = replay(READ[path]).compared()
    assert [(r.predicted.input.text, r.observed.input.text) for r in rows] == [
        (353, 347),
        (402, 401),
    ]
    assert [(r.predicted.cached_tokens, r.observed.cached_tokens) for r in rows] == [
        (0, 0),
        (384, 384),
    ]


# ------------------------------------------------------------------ imperfect copies


def _output_ids(log: EventLog) -> set[str]:
    ids = set()
    for e in log:
        if e.event.get("type") == "response.done":
            for item in (e.event.get("response") or {}).get("output") or []:
                ids.add(item.get("id"))
    return ids


def _is_output_item_event(e: LogEvent, outputs: set[str]) -> bool:
    kind = str(e.event.get("type"))
    item = e.event.get("item") or {}
    return kind.startswith("conversation.item.") and item.get("id") in outputs


# Event families a replay can do without: removing any of them changes no prediction.
NON_ESSENTIAL: dict[str, Callable[[LogEvent, set[str]], bool]] = {
    "output_item.added": lambda e, _: e.event.get("type") == "response.output_item.added",
    "output_item.done": lambda e, _: e.event.get("type") == "response.output_item.done",
    "conversation items of outputs": _is_output_item_event,
    "deltas": lambda e, _: str(e.event.get("type")).endswith(".delta"),
    "content parts": lambda e, _: str(e.event.get("type")).startswith("response.content_part"),
    "rate limits": lambda e, _: e.event.get("type") == "rate_limits.updated",
    "transcription": lambda e, _: ".input_audio_transcription." in str(e.event.get("type")),
    "client events": lambda e, _: e.direction == "client",
    "output buffer": lambda e, _: str(e.event.get("type")).startswith("output_audio_buffer."),
}


def _without(log: EventLog, families: Iterable[str]) -> EventLog:
    outputs = _output_ids(log)
    tests = [NON_ESSENTIAL[f] for f in families]
    return EventLog([e for e in log if not any(t(e, outputs) for t in tests)])


@settings(max_examples=int(os.environ.get("REPLAY_EXAMPLES", "60")), deadline=None)
@given(
    path=st.sampled_from(ALL_LOGS),
    families=st.sets(st.sampled_from(sorted(NON_ESSENTIAL))),
)
def test_removing_non_essential_events_changes_no_prediction(
    path: Path, families: set[str]
) -> None:
    full = replay(READ[path])
    cut = replay(_without(READ[path], families))
    assert predictions(cut.rows) == predictions(full.rows)
    assert [r.observed for r in cut.rows] == [r.observed for r in full.rows]


@pytest.mark.parametrize("path", ALL_LOGS, ids=lambda p: p.stem[:60])
def test_without_speech_marks_a_replay_goes_on_and_says_why(path: Path) -> None:
    log = READ[path]
    marks = ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped")
    cut = EventLog([e for e in log if e.event.get("type") not in marks])
    full, report = replay(log), replay(cut)
    assert len(report.rows) == len(full.rows)
    spoken = any(e.event.get("type") == "input_audio_buffer.committed" for e in log)
    unknown = [n for n in report.notes if "audio of unknown length" in n]
    assert bool(unknown) == spoken
    if not spoken:
        assert predictions(report.rows) == predictions(full.rows)
    else:  # the audio item is left out: its tokens are missing, nothing else is
        for a, b in zip(report.rows, full.rows, strict=True):
            assert a.predicted.input.audio <= b.predicted.input.audio


def test_a_response_without_response_done_is_predicted_and_noted() -> None:
    """A dropped socket: the log ends after the last response began."""
    path = LOGS / "test_openai_ws__test_tool_call_round.jsonl"
    log = READ[path]
    last_done = max(n for n, e in enumerate(log) if e.event.get("type") == "response.done")
    full, cut = replay(log), replay(EventLog(log[:last_done]))
    *rest, unfinished = cut.rows
    assert predictions(rest) == predictions(full.rows[:-1])
    assert unfinished.status == "unfinished" and not unfinished.compared
    assert unfinished.predicted.input == full.rows[-1].predicted.input
    assert unfinished.observed.input_tokens == 0
    from context_manager.replay.report import ReplayReport

    (row,) = ReplayReport(cut.profile, [unfinished]).to_dict()["rows"]
    assert row["observed"] is None and row["input_error"] is None
    assert row["cost_usd"]["observed"] is None and row["cost_usd"]["predicted"] > 0
    assert any("no response.done" in n for n in cut.notes)


def test_a_log_that_starts_mid_session_is_shown_not_compared() -> None:
    path = LOGS / "test_openai_ws__test_input_audio_retention_segments_three_server_vad_turns.jsonl"
    log = READ[path]
    first_done = next(n for n, e in enumerate(log) if e.event.get("type") == "response.done")
    report = replay(EventLog(log[first_done + 1 :]))
    assert len(report.rows) == 2
    assert not report.compared()
    assert any("starts mid-session" in n for n in report.notes)


def test_a_sideband_log_opening_with_session_updated_is_whole() -> None:
    report = replay(READ[LOGS / "test_openai_ws_sideband__test_webrtc_sideband_audio_turn.jsonl"])
    assert report.compared() and not any("mid-session" in n for n in report.notes)


def test_unknown_event_types_are_counted_in_a_note() -> None:
    log = EventLog(list(READ[LOGS / "test_openai_ws__test_text_in_audio_out_turn.jsonl"]))
    log.insert(3, LogEvent("server", {"type": "telepathy.started"}))
    log.insert(3, LogEvent("server", {"type": "telepathy.started"}))
    report = replay(log)
    assert "2 events of unknown type 'telepathy.started' ignored" in report.notes


# ------------------------------------------------------------------ push-to-talk


def pcm(ms: int) -> str:
    return base64.b64encode(bytes(48 * ms)).decode()


def test_push_to_talk_derived_from_a_recording_predicts_user_audio_exactly() -> None:
    """The server-VAD recording made push-to-talk: no speech marks, and the client appends
    exactly the committed turn's audio (real bytes) and commits it. The observed usage is the
    real server's."""
    log = READ[LOGS / "test_openai_ws__test_audio_in_server_vad_turn.jsonl"]
    marks = {
        e.event["type"]: e.event
        for e in log
        if e.event.get("type", "").startswith("input_audio_buffer.speech_")
    }
    ms = (
        marks["input_audio_buffer.speech_stopped"]["audio_end_ms"]
        - marks["input_audio_buffer.speech_started"]["audio_start_ms"]
    )
    ptt = EventLog()
    for e in log:
        kind = e.event.get("type")
        if kind in marks or kind == "input_audio_buffer.append":
            continue
        if kind == "input_audio_buffer.committed":
            ptt.append(LogEvent("client", {"type": "input_audio_buffer.append", "audio": pcm(ms)}))
            ptt.append(LogEvent("client", {"type": "input_audio_buffer.commit"}))
        ptt.append(e)
    (row,) = replay(ptt).compared()
    assert row.predicted.input.audio == row.observed.input.audio == 27
    assert row.predicted.input == row.observed.input


# ------------------------------------------------------------------ logs from the fake server


def _fake_log(tmp_path: Path, *, client_events: bool = True) -> Path:
    """A push-to-talk session written by the fake server, both directions: appended audio,
    an in-band response with its own instructions, an out-of-band one over item references
    and an inline item under its own instructions, one over the whole conversation, and a
    normal answer after them (so the cache is shared)."""
    session = FakeSession(clock=ManualClock())
    lines: list[str] = []

    def send(event: dict[str, Any]) -> list[dict[str, Any]]:
        if client_events:
            lines.append(json.dumps({"direction": "client", "event": event}))
        answer = session.receive(event)
        for server_event in answer:
            lines.append(json.dumps({"direction": "server", "event": server_event}))
        return answer

    for event in session.opening():
        lines.append(json.dumps({"direction": "server", "event": event}))
    send({"type": "session.update", "session": {"type": "realtime",
          "instructions": "You are a helpful travel agent. " * 20,
          "audio": {"input": {"turn_detection": None}}}})  # fmt: skip
    ids = []
    for words in ("I would like to fly to Lisbon next Tuesday.", "In the morning, please."):
        send({"type": "input_audio_buffer.append",
              "audio": base64.b64encode(session.say(words)).decode()})  # fmt: skip
        committed = send({"type": "input_audio_buffer.commit"})
        ids.append(next(e["item_id"] for e in committed if e["type"].endswith("committed")))
        send({"type": "response.create"})
    send({"type": "response.create", "response": {"instructions": "Answer in French."}})
    send({"type": "response.create", "response": {
        "conversation": "none", "output_modalities": ["text"],
        "instructions": "Write down what the caller said, word for word.",
        "metadata": {"purpose": "transcript"},
        "input": [{"type": "item_reference", "id": i} for i in ids]
        + [{"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Transcribe both turns."}]}]}})  # fmt: skip
    send({"type": "response.create", "response": {"conversation": "none",
          "output_modalities": ["text"], "metadata": {"purpose": "mood"}}})  # fmt: skip
    send({"type": "response.create"})
    path = tmp_path / "fake.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_fake_server_log_replays_exactly_out_of_band_and_overrides_included(
    tmp_path: Path,
) -> None:
    report = replay(read_event_log(_fake_log(tmp_path)))
    rows = report.rows
    assert [r.in_band for r in rows] == [True, True, True, False, False, True]
    assert all(r.compared for r in rows)
    for r in rows:  # the fake's usage is the same model's: exact, cache included
        assert r.predicted == r.observed, (r.response, r.in_band)
        assert r.predicted_cost == r.observed_cost
    assert rows[0].observed.input.audio > 0  # push-to-talk audio, from the appended bytes
    assert rows[4].observed.cached_tokens > 0  # out of band, from the session's cache
    assert report.notes == []


def test_without_client_events_out_of_band_is_a_noted_guess(tmp_path: Path) -> None:
    report = replay(read_event_log(_fake_log(tmp_path, client_events=False)))
    assert sum(1 for r in report.rows if not r.in_band) == 2
    notes = "\n".join(report.notes)
    assert "an out-of-band response without its request" in notes
    assert "audio of unknown length" in notes


def test_replay_json_rows_carry_band_cost_and_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _fake_log(tmp_path, client_events=False)
    code, out, err = run_cli(capsys, "replay", "--json", str(log))
    assert code == 0, err
    (data,) = json.loads(out)["logs"]
    assert [r["out_of_band"] for r in data["rows"]] == [False, False, False, True, True, False]
    row = data["rows"][0]
    assert set(row["cost_usd"]) == {"predicted", "observed", "difference"}
    assert row["cost_usd"]["difference"] == pytest.approx(
        row["cost_usd"]["predicted"] - row["cost_usd"]["observed"], abs=2e-6
    )
    assert {"input_error", "cached_error"} <= set(row)
    assert data["out_of_band"] == 2 and data["notes"]
    code, out, err = run_cli(capsys, "replay", "--strict", str(log))
    assert code == 2
    assert err.count("\n") == 1 and "--strict" in err


def test_the_three_shapes_of_a_two_way_log_replay_alike(tmp_path: Path) -> None:
    wrapped = _fake_log(tmp_path)
    lines = [json.loads(line) for line in wrapped.read_text().splitlines()]
    bare = tmp_path / "bare.jsonl"
    bare.write_text("\n".join(json.dumps(x["event"]) for x in lines) + "\n")
    recorder = tmp_path / "recorder.jsonl"
    recorder.write_text(
        "\n".join(
            json.dumps(
                {
                    "kind": "message",
                    "direction": "sent" if x["direction"] == "client" else "received",
                    "at": None,
                    "data": x["event"],
                }
            )
            for x in lines
        )
        + "\n"
    )
    reports = [replay(read_event_log(p)) for p in (wrapped, bare, recorder)]
    assert predictions(reports[1].rows) == predictions(reports[0].rows)
    assert predictions(reports[2].rows) == predictions(reports[0].rows)
    assert all(r.notes == [] for r in reports)
