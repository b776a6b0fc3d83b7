"""What the parts of a `FakeSession` share: its state, ids, events and item registry.

`FakeSession` is assembled from one class per family of client events, each a `SessionBase`:
`ConversationHandlers` (``conversation.item.*``), `InputAudioHandlers`
(``input_audio_buffer.*``) and `ResponseHandlers` (``response.*``, with `OutputStreams`
for the output events). The attributes declared here are set by `FakeSession.__init__`.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..items import Item, Message
from ..profiles import ModelProfile, ProviderProfile
from ..server.model import ManualClock, ResponseResult, ServerModel
from .speech import silence

__all__ = ["ActiveResponse", "SessionBase", "TranscriptionTiming"]

TranscriptionTiming = Literal["late", "interleaved", "early"]
"""When input transcription events come: after the response the turn started (``late``),
right after its ``response.created`` (``interleaved``) or before it (``early``)."""


@dataclass(slots=True, kw_only=True)
class ActiveResponse:
    """A response in progress: created, some of its output streamed, not yet done."""

    response: dict[str, Any]
    """The response object as ``response.created`` showed it."""
    in_band: bool
    """Whether its output joins the conversation (``conversation: "auto"``)."""
    model: ServerModel
    """The model that served its request (the session's, or an out-of-band copy)."""
    result: ResponseResult
    """Its request's accounting, made at creation with the whole output."""
    item: Item
    """The whole output item the model will have produced."""
    pieces: list[str]
    """The item's text (or arguments) in the pieces its deltas carry."""
    pause_ms: int | None
    """Where it holds (`Reply.pause_after_ms`); ``None``: it runs to the end."""
    opened: bool = False
    """Whether the output item's events have begun."""
    said: int = 0
    """Pieces streamed so far."""
    at_ms: int = 0
    """Milliseconds of audio streamed so far."""


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
    sent: list[dict[str, Any]]
    transcription_timing: TranscriptionTiming
    cancelled_usage: Literal["produced", "zero"]
    _items: dict[str, dict[str, Any]]  # item id -> the item as the server shows it
    _audio: dict[str, bytes]  # user item id -> its audio bytes
    _heard: dict[str, str]  # user audio item id -> the words the fake heard in it
    _active: dict[str, ActiveResponse]  # response id -> a response in progress, in order
    # Input transcriptions not yet sent: (item id, transcript, their events).
    _pending_transcripts: list[tuple[str, str, list[dict[str, Any]]]]

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
        return base64.b64encode(silence(ms, self._audio_format("output"))).decode()

    def _ears(self, items: Sequence[Item]) -> list[Item]:
        """`items` as the model hears them: a user audio message's text is the words said."""
        out: list[Item] = []
        for item in items:
            words = self._heard.get(item.id or "")
            out.append(replace(item, text=words) if words and isinstance(item, Message) else item)
        return out

    def _in_band_active(self) -> ActiveResponse | None:
        """The response in progress in the conversation, if any."""
        return next((a for a in self._active.values() if a.in_band), None)

    def _take_transcripts(self) -> list[dict[str, Any]]:
        """The input transcription events held back so far; the items show the transcripts."""
        events = []
        for item_id, transcript, held in self._pending_transcripts:
            if item_id in self._items:
                self._items[item_id]["content"][0]["transcript"] = transcript
            events += held
        self._pending_transcripts.clear()
        return events

    def _advance(self, ms: int) -> None:
        if self.advance_clock and ms and isinstance(self.clock, ManualClock):
            self.clock.advance(ms / 1000)

    # ------------------------------------------------------------------ hooks

    def _respond(self, params: Mapping[str, Any], client_id: str | None) -> list[dict[str, Any]]:
        """Run a response (`ResponseHandlers`); server VAD starts one after a commit."""
        raise NotImplementedError

    def _cancel(self, active: ActiveResponse, reason: str) -> list[dict[str, Any]]:
        """Cancel a response in progress (`ResponseHandlers`); server VAD does on speech."""
        raise NotImplementedError
