"""Replay a recorded Realtime event log through the server model: predicted vs observed usage.

The log is JSONL, one event a line, in any of three shapes:

* the bare event, as the server sent it or the client sent it (the direction follows from
  the event type);
* ``{"direction": "server" | "client", "t": seconds, "event": {...}}``;
* ``{"direction": "received" | "sent", "at": ..., "data": {...}}`` (the recorder's shape of
  the sessions in ``tests/data/realtime-logs``).

The server's own events are the truth the conversation is rebuilt from, by the same
`SessionMirror` the live engine uses (its docstring gives the rules): every ``response.done``
gives the usage the model is compared with. Unknown event types are ignored, so newer logs
still replay.

`fit` searches the uncertain profile switches for the setting that matches the logs best.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._jsonl import json_objects
from .errors import InputFormatError, UnknownModelError
from .live.changes import ResponseDone
from .live.mirror import SessionMirror
from .live.records import ResponseOutcome
from .profiles import (
    ModelProfile,
    ProviderProfile,
    get_model_profile,
    model_names,
)
from .server import ManualClock, Usage

__all__ = [
    "LogEvent",
    "ReplayReport",
    "fit_profile",
    "read_event_log",
    "replay",
]

_CLIENT_TYPES = frozenset(
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


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event of a log, with its direction and time (seconds, when the log has it)."""

    direction: Literal["server", "client"]
    event: Mapping[str, Any]
    t: float | None = None


def _parse_line(data: Mapping[str, Any], source: str, line: int) -> LogEvent:
    if "event" in data and isinstance(data["event"], Mapping):
        direction = data.get("direction")
        if direction not in ("server", "client"):
            raise InputFormatError(
                f"direction must be 'server' or 'client', got {direction!r}",
                source=source,
                line=line,
                field="direction",
            )
        t = data.get("t")
        side: Literal["server", "client"] = "server" if direction == "server" else "client"
        return LogEvent(side, data["event"], float(t) if isinstance(t, int | float) else None)
    if "data" in data and isinstance(data["data"], Mapping):
        sent = data.get("direction") == "sent"
        return LogEvent("client" if sent else "server", data["data"])
    if isinstance(data.get("type"), str):
        return LogEvent("client" if data["type"] in _CLIENT_TYPES else "server", data)
    raise InputFormatError(
        "not an event: expected an object with 'type', or a wrapper with 'event' or 'data'",
        source=source,
        line=line,
    )


def read_event_log(path: str | Path) -> list[LogEvent]:
    """Read an event log file (any of the three shapes; blank lines skipped).

    Raises:
        InputFormatError: with the line number of a line that is not JSON or not an event.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFormatError(f"cannot read: {exc.strerror}", source=str(p)) from exc
    events = []
    for number, data in json_objects(text.split("\n"), source=str(p)):
        events.append(_parse_line(data, str(p), number))
    return events


@dataclass(slots=True)
class ReplayReport:
    """Every response of one or more logs, predicted against observed."""

    profile: ModelProfile
    rows: list[ResponseOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def compared(self) -> list[ResponseOutcome]:
        """The rows that count in the comparison."""
        return [r for r in self.rows if r.compared]

    def error(self) -> int:
        """Sum of absolute errors of input text, input audio and cached tokens."""
        total = 0
        for r in self.compared():
            total += abs(r.predicted.input.text - r.observed.input.text)
            total += abs(r.predicted.input.audio - r.observed.input.audio)
            total += abs(r.predicted.cached_tokens - r.observed.cached_tokens)
        return total

    def to_dict(self) -> dict[str, Any]:
        """Rows and summary as plain data."""
        rows = []
        for r in self.rows:
            rows.append(
                {
                    "session": r.session,
                    "response": r.response,
                    "status": r.status,
                    "compared": r.compared,
                    "predicted": _flat(r.predicted),
                    "observed": _flat(r.observed),
                }
            )
        compared = self.compared()
        return {
            "model": self.profile.name,
            "responses": len(self.rows),
            "compared": len(compared),
            "input_audio_exact": sum(
                1 for r in compared if r.predicted.input.audio == r.observed.input.audio
            ),
            "input_text_within_5pct": sum(
                1 for r in compared if _within(r.predicted.input.text, r.observed.input.text, 0.05)
            ),
            "cached_exact": sum(
                1 for r in compared if r.predicted.cached_tokens == r.observed.cached_tokens
            ),
            "absolute_error": self.error(),
            "rows": rows,
            "notes": self.notes,
        }


def _flat(u: Usage) -> dict[str, int]:
    return {
        "input_tokens": u.input_tokens,
        "text_tokens": u.input.text,
        "audio_tokens": u.input.audio,
        "image_tokens": u.input.image,
        "cached_tokens": u.cached_tokens,
        "output_tokens": u.output_tokens,
    }


def _within(predicted: int, observed: int, tolerance: float) -> bool:
    return abs(predicted - observed) <= tolerance * max(observed, 1)


def profile_for_model(name: str | None, default: ModelProfile) -> ModelProfile:
    """The built-in profile for a session's model name, else `default`.

    Deployment names that extend a model name (``gpt-realtime-global-standard`` on Azure
    Voice Live) resolve to the longest registered name they start with.
    """
    if not name:
        return default
    try:
        return get_model_profile(name)
    except UnknownModelError:
        prefixes = [n for n in model_names() if name.startswith(n + "-")]
        return get_model_profile(max(prefixes, key=len)) if prefixes else default


def replay(
    events: Iterable[LogEvent],
    profile: ModelProfile | None = None,
    provider: ProviderProfile | str = "openai",
    *,
    follow_session_model: bool = True,
) -> ReplayReport:
    """Rebuild the conversation of an event log, run the model, compare every response.

    Args:
        events: the log's events, in order.
        profile: the profile to use; by default the built-in profile of the session's model
            (``gpt-realtime`` when the log does not name one).
        provider: the provider profile (or name).
        follow_session_model: pick the profile from ``session.created``'s model name; set
            False to force `profile`.
    """
    base = profile or get_model_profile("gpt-realtime")
    report = ReplayReport(base)
    clock = ManualClock()
    mirror = SessionMirror(base, provider, clock=clock)
    for log_event in events:
        if log_event.direction != "server":
            continue
        event = log_event.event
        if event.get("type") == "session.created" and follow_session_model and profile is None:
            chosen = profile_for_model((event.get("session") or {}).get("model"), base)
            if chosen is not report.profile and not report.rows:
                report.profile = chosen
                mirror.use_profile(chosen)
        if log_event.t is not None:
            clock.set(max(log_event.t, clock.now))
        for change in mirror.feed(event):
            if not isinstance(change, ResponseDone):
                continue
            if change.outcome.in_band:
                report.rows.append(change.outcome)
            else:
                report.notes.append(
                    f"session {mirror.index}: an out-of-band response (conversation none)"
                    " was skipped"
                )
    report.notes.extend(mirror.notes)
    return report


# ------------------------------------------------------------------------- fitting

_SEARCH: dict[str, Sequence[Any]] = {
    "item_overhead_tokens": range(9),
    "user_audio_overhead_tokens": range(9),
    "assistant_audio_overhead_tokens": range(13),
    "function_overhead_tokens": range(9),
    "user_transcript_in_context": (False, True),
    "assistant_transcript_in_context": (False, True),
    "cache.block_tokens": (64, 128),
    "cache.min_prefix_tokens": (0, 64, 1024),
}


def _with(profile: ModelProfile, key: str, value: Any) -> ModelProfile:
    if key.startswith("cache."):
        return profile.model_copy(
            update={"cache": profile.cache.model_copy(update={key[6:]: value})}
        )
    return profile.model_copy(update={key: value})


def fit_profile(
    logs: Sequence[Sequence[LogEvent]],
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    *,
    rounds: int = 10,
) -> tuple[ModelProfile, int, int]:
    """Search the uncertain switches for the profile that matches the logs best.

    Steepest descent over `_SEARCH` (item overheads, transcript-in-context switches, cache
    block and minimum): each round tries every single-switch change from the current best and
    keeps the one that lowers the total absolute error of input text, input audio and cached
    tokens the most, until no change helps. (Taking switches in turn instead stalls where one
    overhead half-compensates for another.)

    Returns:
        The fitted profile, its error, and the error of `profile` itself.
    """

    def error(candidate: ModelProfile) -> int:
        return sum(
            replay(log, candidate, provider, follow_session_model=False).error() for log in logs
        )

    best, best_error = profile, error(profile)
    start_error = best_error
    for _ in range(rounds):
        step, step_error = best, best_error
        for key, values in _SEARCH.items():
            for value in values:
                candidate = _with(best, key, value)
                e = error(candidate)
                if e < step_error:
                    step, step_error = candidate, e
        if step is best:
            break
        best, best_error = step, step_error
    return best, best_error, start_error


def iter_rows(report: ReplayReport) -> Iterator[dict[str, Any]]:
    """Rows for a table: predicted and observed side by side, with the input error."""
    for r in report.rows:
        p, o = r.predicted, r.observed
        yield {
            "session": r.session,
            "response": r.response,
            "status": r.status,
            "input": (p.input_tokens, o.input_tokens),
            "text": (p.input.text, o.input.text),
            "audio": (p.input.audio, o.input.audio),
            "cached": (p.cached_tokens, o.cached_tokens),
            "error_pct": 100.0 * (p.input_tokens - o.input_tokens) / max(o.input_tokens, 1),
        }
