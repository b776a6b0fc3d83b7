"""Reading a recorded Realtime event log: any of three shapes, every imperfection a note.

The log is JSONL, one event a line, in any of three shapes:

* the bare event, as the server sent it or the client sent it (the direction follows from
  the event type);
* ``{"direction": "server" | "client", "t": seconds, "event": {...}}``;
* ``{"direction": "received" | "sent", "at": ..., "data": {...}}`` (the recorder's shape of
  the sessions in ``tests/data/realtime-logs``).

A line that is not JSON, not an object or not an event is skipped with a note naming its line
(`EventLog.notes`): a log cut mid-line or written by a crashing application still replays.
A file that cannot be read, or holds no event at all, is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import InputFormatError

__all__ = ["CLIENT_TYPES", "FAMILIES", "EventLog", "LogEvent", "parse_line", "read_event_log"]

CLIENT_TYPES = frozenset(
    {
        "session.update",
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.truncate",
        "conversation.item.retrieve",
        "response.create",
        "response.cancel",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "transcription_session.update",
    }
)
"""The client event types (a bare event of another type is the server's)."""

_MAX_LINE_NOTES = 20


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event of a log, with its direction and time (seconds, when the log has it)."""

    direction: Literal["server", "client"]
    event: Mapping[str, Any]
    t: float | None = None


class EventLog(list[LogEvent]):
    """A log's events in order, and notes on the lines that could not be read."""

    def __init__(self, events: list[LogEvent] | None = None, notes: list[str] | None = None):
        super().__init__(events or [])
        self.notes: list[str] = list(notes or [])


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


def parse_line(data: Mapping[str, Any]) -> LogEvent | str:
    """One line's event, or what is wrong with it (a note, without the line's content)."""
    if isinstance(data.get("event"), Mapping):
        direction = data.get("direction")
        if direction not in ("server", "client"):
            return "direction must be 'server' or 'client'"
        side: Literal["server", "client"] = "server" if direction == "server" else "client"
        return LogEvent(side, data["event"], _seconds(data.get("t")))
    if isinstance(data.get("data"), Mapping):
        direction = data.get("direction")
        if direction not in ("sent", "received"):
            return "direction must be 'sent' or 'received'"
        side = "client" if direction == "sent" else "server"
        return LogEvent(side, data["data"], _seconds(data.get("at")))
    if isinstance(data.get("type"), str):
        return LogEvent("client" if data["type"] in CLIENT_TYPES else "server", data)
    return "not an event (no 'type', nor an 'event' or 'data' wrapper)"


FAMILIES = (
    "session.", "conversation.", "input_audio_buffer.", "output_audio_buffer.", "response.",
    "rate_limits.", "transcription_session.", "error",
)  # fmt: skip
"""The event families of the Realtime API (either direction); other types are unknown."""


def _is_realtime(e: LogEvent) -> bool:
    kind = e.event.get("type")
    return isinstance(kind, str) and kind.startswith(FAMILIES)


def read_event_log(path: str | Path) -> EventLog:
    """Read an event log file (any of the three shapes; blank lines skipped).

    Raises:
        InputFormatError: the file cannot be read, or holds no event.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputFormatError(f"cannot read: {exc.strerror}", source=str(p)) from exc
    log = EventLog()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        log.notes.append("not UTF-8: undecodable bytes replaced")
    skipped = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        problem: str | None = None
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            problem = "not JSON"
        else:
            if not isinstance(data, dict):
                problem = "not a JSON object"
            else:
                parsed = parse_line(data)
                if isinstance(parsed, LogEvent):
                    log.append(parsed)
                    continue
                problem = parsed
        skipped += 1
        if skipped <= _MAX_LINE_NOTES:
            log.notes.append(f"line {number}: {problem}; skipped")
    if skipped > _MAX_LINE_NOTES:
        log.notes.append(f"{skipped - _MAX_LINE_NOTES} more lines skipped")
    if log and not any(_is_realtime(e) for e in log):
        raise InputFormatError(
            f"no Realtime event in it (types such as {str(log[0].event.get('type'))[:40]!r}:"
            " a conversation file? replay reads event logs)",
            source=str(p),
        )
    if not log:
        why = f"{skipped} lines skipped" if skipped else "empty"
        if log.notes and log.notes[0].startswith("not UTF-8"):
            why += "; not UTF-8 text"
        raise InputFormatError(f"no Realtime event in it ({why})", source=str(p))
    return log
