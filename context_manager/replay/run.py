"""`replay`: a recorded session through the server model, both directions read.

The server's events are the truth the conversation is rebuilt from, by the same
`SessionMirror` the live engine uses (its docstring gives the rules); the client's events,
where the log has them, give what the server never echoes: the bytes of audio appended
before a manual commit (push-to-talk), a ``response.create``'s own parameters (instructions,
tools, ``input``, out of band), and a ``session.update`` whose ``session.updated`` the log
lacks. Every ``response.done``, out of band too, gives the usage the model is compared with.

Nothing in a log stops a replay: each imperfection (a line that is not an event, a response
without ``response.done``, a log that starts mid-session, audio of unknown length, an event
type nobody knows) becomes a note, and the replay goes on with the best prediction it can
make. ``replay --strict`` turns notes into an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..errors import UnknownModelError
from ..live.changes import ResponseDone
from ..live.mirror import SessionMirror
from ..live.records import ResponseOutcome
from ..profiles import ModelProfile, ProviderProfile, get_model_profile, model_names
from ..server import ManualClock
from .log import FAMILIES, EventLog, LogEvent
from .report import ReplayReport

__all__ = ["profile_for_model", "replay"]


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


class _Replay:
    """One log's replay: the mirror, the clock, and what the log lacked."""

    def __init__(self, report: ReplayReport, provider: ProviderProfile | str, follow: bool):
        self.report = report
        self.follow = follow
        self.clock = ManualClock()
        self.mirror = SessionMirror(report.profile, provider, clock=self.clock)
        self.mid_session: bool | None = None  # unknown until the log shows it
        self.suspect: bool | None = None  # the first server event is not session.created
        self.configured = False  # a session object (instructions, tools) seen
        self.update: tuple[object, Mapping[str, Any]] | None = None  # a client session.update
        self.unknown: Counter[str] = Counter()

    def client(self, event: Mapping[str, Any]) -> None:
        self.mirror.sent(event)
        if event.get("type") == "session.update" and isinstance(event.get("session"), Mapping):
            self.update = (event.get("event_id"), event["session"])

    def server(self, event: Mapping[str, Any], t: float | None) -> None:
        kind = event.get("type")
        if not isinstance(kind, str):
            self.report.notes.append("a server event without a type; skipped")
            return
        if not kind.startswith(FAMILIES):
            self.unknown[kind] += 1
        if self.mid_session is None:
            self.mid_session = self._joined_late(kind, event)
        if kind == "session.created":
            self.end_response()
            if self.follow and not self.report.rows:
                model = (event.get("session") or {}).get("model")
                chosen = profile_for_model(model, self.report.profile)
                if chosen is not self.report.profile:
                    self.report.profile = chosen
                    self.mirror.use_profile(chosen)
        elif kind == "session.updated":
            self.update = None
        elif kind == "error" and self.update is not None:
            error = event.get("error")
            if isinstance(error, Mapping) and error.get("event_id") == self.update[0]:
                self.update = None  # refused
        elif kind == "response.created" and self.update is not None:
            # The update reached the server before this response (the log lacks the echo).
            self.mirror.configure(self.update[1])
            self.update = None
            self.report.notes.append("session.update applied from the client's event")
        if t is not None:
            self.clock.set(max(t, self.clock.now))
        for change in self.mirror.feed(event):
            if isinstance(change, ResponseDone):
                self.row(change.outcome)

    def _joined_late(self, kind: str, event: Mapping[str, Any]) -> bool | None:
        """Whether the log began after its session did (``None``: not known yet).

        A log that does not open with ``session.created`` may still hold the whole
        conversation (a WebRTC sideband connection opens with ``session.updated``): it began
        late if its first item follows an item the log never showed, if no session object
        (instructions, tools) came before it, or if a response comes before any item.
        """
        if self.suspect is None:
            self.suspect = kind != "session.created"
        if not self.suspect:
            return False
        if kind in ("session.updated", "session.created"):
            self.configured = True
            return None
        if kind in ("conversation.item.added", "conversation.item.created"):
            # The first item, first: the conversation starts here, if the settings are known.
            return event.get("previous_item_id") is not None or not self.configured
        if kind.startswith(("response.", "conversation.item.")):
            return True
        return None

    def row(self, outcome: ResponseOutcome) -> None:
        if self.mid_session and outcome.session == 0:
            outcome = replace(outcome, compared=False)  # what came before the log is unknown
        self.report.rows.append(outcome)

    def end_response(self) -> None:
        outcome = self.mirror.abandon()
        if outcome is not None:
            self.row(outcome)

    def finish(self) -> None:
        self.end_response()
        notes = self.report.notes
        if self.mid_session:
            notes.append(
                "the log starts mid-session (no session.created, and an earlier item or the"
                " session's settings unknown): its first session's responses are shown, not"
                " compared"
            )
        for kind, count in sorted(self.unknown.items()):
            notes.append(f"{count} events of unknown type {kind[:60]!r} ignored")
        notes.extend(self.mirror.notes)


def replay(
    events: Iterable[LogEvent],
    profile: ModelProfile | None = None,
    provider: ProviderProfile | str = "openai",
    *,
    follow_session_model: bool = True,
) -> ReplayReport:
    """Rebuild the conversation of an event log, run the model, compare every response.

    Args:
        events: the log's events, in order (an `EventLog` brings its reading notes).
        profile: the profile to use; by default the built-in profile of the session's model
            (``gpt-realtime`` when the log does not name one).
        provider: the provider profile (or name).
        follow_session_model: pick the profile from ``session.created``'s model name; set
            False to force `profile`.
    """
    report = ReplayReport(profile or get_model_profile("gpt-realtime"))
    if isinstance(events, EventLog):
        report.notes.extend(events.notes)
    run = _Replay(report, provider, follow_session_model and profile is None)
    for log_event in events:
        if log_event.direction == "client":
            run.client(log_event.event)
        else:
            run.server(log_event.event, log_event.t)
    run.finish()
    return report
