"""What the parts of a `FakeSession` share: its state, ids, events and item registry.

`FakeSession` is assembled from one class per family of client events, each a `SessionBase`:
`ConversationHandlers` (``conversation.item.*``), `InputAudioHandlers`
(``input_audio_buffer.*``) and `ResponseHandlers` (``response.*``). The attributes declared
here are set by `FakeSession.__init__`.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..profiles import ModelProfile, ProviderProfile
from ..server.model import ManualClock, ServerModel
from ..wire import bytes_per_ms

__all__ = ["SessionBase"]


class SessionBase:
    """The state and helpers every event handler of a `FakeSession` uses (see the module)."""

    profile: ModelProfile
    provider: ProviderProfile
    clock: Callable[[], float]
    model: ServerModel
    session: dict[str, Any]
    send_audio: bool
    advance_clock: bool
    conversation_id: str
    _tag: str
    _serial: Iterator[int]
    _items: dict[str, dict[str, Any]]  # item id -> the item as the server shows it
    _audio: dict[str, bytes]  # user item id -> its audio bytes

    def error_event(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> dict[str, Any]:
        """An ``error`` event (not recorded in `sent`); `event_id` is the client event's."""
        error = {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        return self._event("error", error=error)

    # ------------------------------------------------------------------ ids and events

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{self._tag}_{next(self._serial):06d}"

    def _new_item_id(self) -> str:
        while True:
            item_id = self._new_id("item")
            if item_id not in self._items and item_id not in self.model.dropped_ids:
                return item_id

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": self._new_id("event"), **fields}

    def _previous(self, item_id: str) -> str | None:
        ids = [i.id for i in self.model.items]
        n = ids.index(item_id)
        return ids[n - 1] if n else None

    def _added_done(self, item_id: str) -> list[dict[str, Any]]:
        previous = self._previous(item_id)
        wire = self._items[item_id]
        return [
            self._event(
                "conversation.item.added", previous_item_id=previous, item=copy.deepcopy(wire)
            ),
            self._event(
                "conversation.item.done", previous_item_id=previous, item=copy.deepcopy(wire)
            ),
        ]

    # ------------------------------------------------------------------ audio and time

    def _audio_format(self, side: str) -> str:
        """The session's ``input`` or ``output`` audio format (``audio/pcm``, ...)."""
        format_type: str = self.session["audio"][side]["format"]["type"]
        return format_type

    def _zeros(self, ms: int) -> str:
        """`ms` of silence in the output format, as base64."""
        size = int(ms * bytes_per_ms(self._audio_format("output")))
        return base64.b64encode(bytes(size)).decode()

    def _advance(self, ms: int) -> None:
        if self.advance_clock and ms and isinstance(self.clock, ManualClock):
            self.clock.advance(ms / 1000)

    # ------------------------------------------------------------------ hooks

    def _respond(self, params: Mapping[str, Any], client_id: str | None) -> list[dict[str, Any]]:
        """Run a response (`ResponseHandlers`); server VAD starts one after a commit."""
        raise NotImplementedError
