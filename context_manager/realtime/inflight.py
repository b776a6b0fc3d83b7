"""What the live session has not acknowledged yet, for a new session to get again.

A session can die under client events it never answered: an item created (no
``conversation.item.added`` yet), a response requested (no ``response.created``), the user's
turn in progress (audio appended since the server last committed or cleared the buffer, and a
manual commit it has not acknowledged), a session update (no ``session.updated``). `InFlight`
keeps them, in order, so the adapter can re-send them to the next session before anything
else: a drop mid-sentence loses no word.
The turn's audio is bounded by `buffer_seconds` (its oldest chunks go first, counted).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ..live.records import TurnInProgress

__all__ = ["InFlight", "TurnNotes"]


class InFlight:
    """Client events sent and not acknowledged, by kind (see the module)."""

    def __init__(self, buffer_seconds: float = 60.0) -> None:
        # base64 characters of `buffer_seconds` of PCM16 at 24 kHz (48,000 bytes a second)
        self._turn_budget = int(buffer_seconds * 48_000 * 4 / 3)
        self.unacked: dict[str, dict[str, Any]] = {}
        """Item creates by item id."""
        self.requested: dict[str, Any] | None = None
        """A ``response.create`` not yet answered by ``response.created``."""
        self._turn_audio: deque[dict[str, Any]] = deque()
        self._turn_bytes = 0
        self._commit: dict[str, Any] | None = None
        self.audio_dropped_bytes = 0
        """Bytes of a turn in progress that did not fit `buffer_seconds` (oldest first)."""
        # Session updates not answered by ``session.updated`` yet, in order (each answers the
        # oldest); True marks the application's, which a new session gets again.
        self._updates: deque[tuple[bool, dict[str, Any]]] = deque()
        self._carried_updates: list[dict[str, Any]] = []
        self.responses: set[str] = set()
        """Responses the session started and has not finished (ids): their usage is to come."""

    def sent(self, data: dict[str, Any]) -> None:
        """A client event is going out (an item create must carry its id)."""
        kind = data.get("type")
        if kind == "conversation.item.create":
            self.unacked[data["item"]["id"]] = data
        elif kind == "response.create":
            self.requested = data
        elif kind == "input_audio_buffer.append":
            audio = data.get("audio")
            self._turn_audio.append(data)
            self._turn_bytes += len(audio) if isinstance(audio, str) else 0
            while self._turn_bytes > self._turn_budget and len(self._turn_audio) > 1:
                dropped = len(self._turn_audio.popleft().get("audio") or "")
                self._turn_bytes -= dropped
                self.audio_dropped_bytes += dropped * 3 // 4
        elif kind == "input_audio_buffer.commit":
            self._commit = data
        elif kind == "input_audio_buffer.clear":
            self._forget_turn()
        elif kind == "session.update":
            self._updates.append((True, data))

    def adapter_sent(self, data: Mapping[str, Any]) -> None:
        """An event of the adapter's own is going out (its session update is answered too)."""
        if data.get("type") == "session.update":
            self._updates.append((False, dict(data)))

    def new_session(self) -> None:
        """A new session is being set up: the application's unanswered updates carry over."""
        self._carried_updates = [data for mine, data in self._updates if mine]
        self._updates.clear()

    def acknowledged(self, raw: Mapping[str, Any]) -> None:
        """A server event: whatever it acknowledges is no longer in flight."""
        kind = raw.get("type")
        if kind in ("input_audio_buffer.committed", "input_audio_buffer.cleared"):
            self._forget_turn()
        elif kind in ("conversation.item.added", "conversation.item.created"):
            item = raw.get("item")
            item_id = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(item_id, str):
                self.unacked.pop(item_id, None)
        elif kind == "session.updated":
            if self._updates:
                self._updates.popleft()
        elif kind == "response.created":
            self.requested = None
            self._response(raw, self.responses.add)
        elif kind == "response.done":
            self._response(raw, self.responses.discard)

    def switched(self) -> set[str]:
        """A new session replaces the live one: the responses it left running (now forgotten)."""
        running, self.responses = self.responses, set()
        return running

    @staticmethod
    def _response(raw: Mapping[str, Any], apply: Callable[[str], object]) -> None:
        response = raw.get("response")
        rid = response.get("id") if isinstance(response, Mapping) else None
        if isinstance(rid, str):
            apply(rid)

    @property
    def turn_size(self) -> int:
        """Bytes of the turn in progress kept so far."""
        return self._turn_bytes * 3 // 4

    def resend(self) -> list[dict[str, Any]]:
        """Everything in flight, in the order a new session needs it.

        The application's session updates first (a turn detection switched off must be off
        before the audio arrives), then the turn's audio, its commit, the items, the response
        request.
        """
        updates = self._carried_updates
        self._updates.extend((True, data) for data in updates)
        return [
            *updates,
            *self._turn_audio,
            *([self._commit] if self._commit else []),
            *self.unacked.values(),
            *([self.requested] if self.requested else []),
        ]

    def _forget_turn(self) -> None:
        self._turn_audio.clear()
        self._turn_bytes = 0
        self._commit = None


class TurnNotes:
    """When the store hears of the user's turn in progress (`TurnInProgress` records).

    Noted at its first audio and then every `step_ms` of it, cleared once the server's item of
    that turn is added (the item is stored first: records are written in order) or the buffer
    is cleared. A process that dies mid-turn leaves it noted on its session: the resume knows
    a turn was lost, and how long it was.
    """

    def __init__(self, step_ms: int = 1000) -> None:
        self.step_ms = step_ms
        self.noted: int | None = None
        self._committed: str | None = None

    def appended(self, session: int, ms: int) -> TurnInProgress | None:
        """Audio was appended: the turn now holds `ms`."""
        if self.noted is not None and ms < self.noted + self.step_ms:
            return None
        self.noted = ms
        return TurnInProgress(session, ms)

    def server(self, session: int, raw: Mapping[str, Any]) -> TurnInProgress | None:
        """A server event: the turn's item added, or the buffer cleared, ends the note."""
        kind = raw.get("type")
        if kind == "input_audio_buffer.committed":
            item_id = raw.get("item_id")
            self._committed = item_id if isinstance(item_id, str) else None
            return None
        item = raw.get("item")
        added = kind == "conversation.item.added" and isinstance(item, Mapping)
        if (added and item.get("id") == self._committed) or kind == "input_audio_buffer.cleared":  # type: ignore[union-attr]
            self._committed = None
            if self.noted is not None:
                self.noted = None
                return TurnInProgress(session, None)
        return None

    def switched(self, old: int, new: int) -> list[TurnInProgress]:
        """The turn's audio goes to session `new`: the note moves with it."""
        if self.noted is None or old == new:
            return []
        return [TurnInProgress(old, None), TurnInProgress(new, self.noted)]
