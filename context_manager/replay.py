"""Replay a recorded Realtime event log through the server model: predicted vs observed usage.

The log is JSONL, one event a line, in any of three shapes:

* the bare event, as the server sent it or the client sent it (the direction follows from
  the event type);
* ``{"direction": "server" | "client", "t": seconds, "event": {...}}``;
* ``{"direction": "received" | "sent", "at": ..., "data": {...}}`` (the recorder's shape of
  the sessions in ``tests/data/realtime-logs``).

The server's own events are the truth the conversation is rebuilt from: ``session.created``
and ``session.updated`` give the instructions, tools and truncation the server uses;
``conversation.item.added`` (or ``.created``) adds an input item where its
``previous_item_id`` says; ``conversation.item.deleted`` and ``.truncated`` change it;
``response.done`` gives the response's output items and the usage the model is compared with.
Audio durations come from ``input_audio_buffer.speech_started``/``speech_stopped`` (user
audio), from the bytes of ``response.output_audio.delta`` at the session's format (assistant
audio), or, when the log holds no audio bytes, from the response's reported output audio
tokens. Unknown event types are ignored, so newer logs still replay.

`fit` searches the uncertain profile switches for the setting that matches the logs best.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._jsonl import json_objects
from .errors import InputFormatError, ServerModelError, UnknownModelError
from .items import Item, from_realtime_item
from .profiles import (
    ModelProfile,
    ProviderProfile,
    get_model_profile,
    get_provider_profile,
    model_names,
)
from .server import ManualClock, PromptCache, ServerModel, Truncation, Usage
from .tokens import TokenCounter

__all__ = [
    "LogEvent",
    "ReplayReport",
    "ReplayRow",
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


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One response: what the model predicted and what the server reported."""

    session: int
    response: int
    status: str
    predicted: Usage
    observed: Usage
    compared: bool
    """Whether the row counts in the comparison (completed responses of the conversation)."""


@dataclass(slots=True)
class ReplayReport:
    """Every response of one or more logs, predicted against observed."""

    profile: ModelProfile
    rows: list[ReplayRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def compared(self) -> list[ReplayRow]:
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


class _Session:
    """Rebuilds one server session from its events and drives a ServerModel."""

    def __init__(
        self,
        index: int,
        profile: ModelProfile,
        provider: ProviderProfile,
        cache: PromptCache,
        counter: TokenCounter,
    ) -> None:
        self.index = index
        self.clock = ManualClock()
        self.server = ServerModel(
            profile,
            provider,
            cache=cache,
            clock=self.clock,
            session_id=f"replay-{index}",
            counter=counter,
        )
        self.output_format = "audio/pcm"
        self.pending: list[tuple[Item, str | None]] = []  # input items not yet in the model
        self.known: set[str] = set()
        self.speech: dict[str, dict[str, int]] = {}  # item id -> audio_start_ms/audio_end_ms
        self.audio_bytes: dict[str, int | None] = {}  # assistant item id -> bytes (None: unknown)
        self.outputs: set[str] = set()
        self.responses = 0

    def configure(self, session: Mapping[str, Any]) -> None:
        tools = session.get("tools")
        audio = (session.get("audio") or {}).get("output") or {}
        fmt = (audio.get("format") or {}).get("type")
        if isinstance(fmt, str):
            self.output_format = fmt
        self.server.update_session(
            instructions=session.get("instructions")
            if isinstance(session.get("instructions"), str)
            else None,
            tools=tools if isinstance(tools, list) else None,
            truncation=Truncation.from_realtime(session.get("truncation")),
        )

    def user_audio_ms(self, item_id: str) -> int | None:
        marks = self.speech.get(item_id, {})
        if "audio_start_ms" in marks and "audio_end_ms" in marks:
            return marks["audio_end_ms"] - marks["audio_start_ms"]
        return None

    def add_input(self, raw: Mapping[str, Any], previous: str | None) -> None:
        item_id = raw.get("id")
        if not isinstance(item_id, str) or item_id in self.outputs:
            return
        waiting = [n for n, (item, _) in enumerate(self.pending) if item.id == item_id]
        if item_id in self.known and not waiting:
            return  # already in the model; later content changes arrive as their own events
        audio = any((p or {}).get("type") == "input_audio" for p in raw.get("content") or [])
        duration = self.user_audio_ms(item_id) if audio else None
        try:
            item = from_realtime_item(raw, audio_ms=duration if audio else None)
        except InputFormatError:
            return  # an item type the model does not hold (MCP) or audio of unknown length
        if waiting:
            # `.done` after `.added`: the finished content (a transcript, say) replaces it.
            n = waiting[0]
            self.pending[n] = (item, self.pending[n][1])
            return
        self.known.add(item_id)
        self.pending.append((item, previous))

    def flush(self) -> None:
        for item, previous in self.pending:
            if previous is not None and previous not in self.known:
                previous = None
            try:
                self.server.create_item(item, previous_item_id=previous)
            except ServerModelError:
                self.server.create_item(item)
        self.pending.clear()

    def outputs_of(self, response: Mapping[str, Any], usage: Usage) -> list[Item]:
        raw_items = [o for o in response.get("output") or [] if isinstance(o, Mapping)]
        audio_items = [
            o
            for o in raw_items
            if any(
                (p or {}).get("type") in ("output_audio", "audio") for p in o.get("content") or []
            )
        ]
        items = []
        for raw in raw_items:
            item_id = raw.get("id")
            duration = None
            if raw in audio_items:
                known = self.audio_bytes.get(item_id) if isinstance(item_id, str) else None
                if known is not None:
                    duration = int(known / _bytes_per_ms(self.output_format))
                else:
                    # No audio bytes in the log: the reported output audio tokens give the
                    # length (split evenly when one response speaks several items).
                    ms = usage.output.audio * self.server.profile.audio_output_ms_per_token
                    duration = int(ms / len(audio_items))
            try:
                items.append(from_realtime_item(raw, audio_ms=duration))
            except InputFormatError:
                continue
            if isinstance(item_id, str):
                self.known.add(item_id)
        return items


def _bytes_per_ms(fmt: str) -> float:
    return 48.0 if fmt in ("audio/pcm", "pcm16") else 8.0


def _decoded_size(data: str) -> int | None:
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None  # a placeholder where the recorder dropped the audio


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
    prov = get_provider_profile(provider) if isinstance(provider, str) else provider
    report = ReplayReport(base)
    cache = PromptCache(base.cache)
    counter = TokenCounter(base)
    session: _Session | None = None
    sessions = 0
    for log_event in events:
        if log_event.direction != "server":
            continue
        event = log_event.event
        kind = event.get("type")
        if kind == "session.created":
            chosen = base
            if follow_session_model and profile is None:
                chosen = profile_for_model((event.get("session") or {}).get("model"), base)
                if chosen is not report.profile and not report.rows:
                    report.profile = chosen
                    cache, counter = PromptCache(chosen.cache), TokenCounter(chosen)
            session = _Session(sessions, report.profile, prov, cache, counter)
            sessions += 1
            session.configure(event.get("session") or {})
            continue
        if session is None:
            session = _Session(sessions, report.profile, prov, cache, counter)
            sessions += 1
        if log_event.t is not None:
            session.clock.set(max(log_event.t, session.clock.now))
        _apply(session, event, report)
    return report


def _on_session_updated(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    s.configure(event.get("session") or {})


def _on_speech(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    item_id = event.get("item_id")
    if isinstance(item_id, str):
        key = "audio_start_ms" if str(event.get("type")).endswith("started") else "audio_end_ms"
        s.speech.setdefault(item_id, {})[key] = int(event.get(key) or 0)


def _on_output_item(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    item = event.get("item") or {}
    if isinstance(item.get("id"), str):
        s.outputs.add(item["id"])


def _on_item(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    raw = event.get("item") or {}
    if raw.get("id") not in s.outputs:
        s.add_input(raw, event.get("previous_item_id"))


def _on_audio_delta(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    item_id = event.get("item_id")
    if isinstance(item_id, str):
        size = _decoded_size(str(event.get("delta") or ""))
        before = s.audio_bytes.get(item_id, 0)
        s.audio_bytes[item_id] = None if size is None or before is None else before + size


def _on_response_created(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    s.flush()


def _on_deleted(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    item_id = event.get("item_id")
    if isinstance(item_id, str) and item_id in s.known:
        s.flush()
        with contextlib.suppress(ServerModelError):  # already gone: nothing to mirror
            s.server.delete_item(item_id)


def _on_truncated(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    item_id, end = event.get("item_id"), event.get("audio_end_ms")
    if isinstance(item_id, str) and isinstance(end, int) and item_id in s.known:
        try:
            s.server.truncate_item(item_id, end)
        except ServerModelError:
            report.notes.append(f"could not truncate {item_id} at {end} ms")


def _on_response_done(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    _response_done(s, event.get("response") or {}, report)


_Handler = Callable[[_Session, Mapping[str, Any], ReplayReport], None]
_HANDLERS: dict[str, _Handler] = {
    "session.updated": _on_session_updated,
    "input_audio_buffer.speech_started": _on_speech,
    "input_audio_buffer.speech_stopped": _on_speech,
    "response.output_item.added": _on_output_item,
    "conversation.item.added": _on_item,
    "conversation.item.created": _on_item,  # the beta name, still sent by Azure Voice Live
    "conversation.item.done": _on_item,
    "response.output_audio.delta": _on_audio_delta,
    "response.audio.delta": _on_audio_delta,
    "response.created": _on_response_created,
    "conversation.item.deleted": _on_deleted,
    "conversation.item.truncated": _on_truncated,
    "response.done": _on_response_done,
}


def _apply(s: _Session, event: Mapping[str, Any], report: ReplayReport) -> None:
    handler = _HANDLERS.get(str(event.get("type")))
    if handler is not None:  # unknown types are ignored: newer logs still replay
        handler(s, event, report)


def _response_done(s: _Session, response: Mapping[str, Any], report: ReplayReport) -> None:
    s.flush()
    status = str(response.get("status") or "completed")
    observed = Usage.from_dict(response.get("usage") or {})
    if response.get("conversation_id", "") is None:
        report.notes.append(
            f"session {s.index}: an out-of-band response (conversation none) was skipped"
        )
        return
    outputs = s.outputs_of(response, observed)
    result = s.server.create_response(outputs)
    report.rows.append(
        ReplayRow(
            session=s.index,
            response=result.index,
            status=status,
            predicted=result.usage,
            observed=observed,
            compared=status == "completed" and observed.input_tokens > 0,
        )
    )


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
