"""What the live session has not acknowledged yet, for a new session to get again.

A session can die under client events it never answered: an item created (no
``conversation.item.added`` yet), a response requested (no ``response.created``), the user's
turn in progress (audio appended since the server last committed or cleared the buffer, and a
manual commit it has not acknowledged). `InFlight` keeps them, in order, so the adapter can
re-send them to the next session before anything else: a drop mid-sentence loses no word.
The turn's audio is bounded by `buffer_seconds` (its oldest chunks go first, counted).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

__all__ = ["InFlight"]


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
        elif kind == "response.created":
            self.requested = None

    def resend(self) -> list[dict[str, Any]]:
        """Everything in flight, in the order a new session needs it.

        The turn's audio first, then its commit, the items, the response request.
        """
        return [
            *self._turn_audio,
            *([self._commit] if self._commit else []),
            *self.unacked.values(),
            *([self.requested] if self.requested else []),
        ]

    def _forget_turn(self) -> None:
        self._turn_audio.clear()
        self._turn_bytes = 0
        self._commit = None
