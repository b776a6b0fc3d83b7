"""`FakeSession`: one fake Realtime session, without I/O: client events in, server events out.

The protocol state machine of the fake server. It dispatches each client event to its handler
(``session.update`` here; the others in `ConversationHandlers`, `InputAudioHandlers` and
`ResponseHandlers`), turns a refusal into the real server's ``error`` event, and ends the
session at the provider's maximum duration. A session starts as the real one does: server
VAD on, input transcription off.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..errors import (
    BudgetExceededError,
    ConfigurationError,
    ServerModelError,
    SessionExpiredError,
)
from ..profiles import ModelProfile, ProviderProfile, get_model_profile, get_provider_profile
from ..server.cache import PromptCache
from ..server.model import ManualClock, ServerModel, SessionConfig
from ..tokens import TokenCounter
from .base import TranscriptionTiming
from .config import DEFAULT_INSTRUCTIONS, default_session, updated_session
from .conversation import ConversationHandlers
from .errors import _Reject, missing, server_param
from .input_audio import InputAudioHandlers
from .replies import Responder, Transcriber, echo_responder
from .responses import ResponseHandlers
from .speech import say

__all__ = ["FakeSession"]


class FakeSession(ConversationHandlers, InputAudioHandlers, ResponseHandlers):
    """One fake Realtime session, without I/O: client events in, server events out.

    `FakeRealtimeServer` runs one per WebSocket connection; a test can also drive one
    directly. `received` and `sent` keep every event, and `model` is the `ServerModel` that
    holds the conversation, so tests can assert on what the server saw.

    Args:
        profile: the model profile (or its name).
        provider: the provider profile (or name): its maximum session duration ends the session.
        clock: seconds, a callable; a new `ManualClock` at 0 by default. Only a `ManualClock`
            is moved by `advance_clock`, and only it allows out-of-band responses.
        responder: gives each response's reply (`echo_responder` by default).
        transcriber: transcribes committed user audio when the session configured input
            transcription (default: the words the fake hears in it, see `say`).
        cache: the prompt cache; pass one shared cache to several sessions.
        session_id: this session's id (``sess_...``); the other ids derive from it.
        model_name: the model the client asked for (``session.model``); the profile's name
            by default.
        send_audio: send ``response.output_audio.delta`` events (base64 zeros of the exact
            length); off by default, since most tests need only the transcript.
        advance_clock: move a `ManualClock` by the user audio committed and by the assistant's
            speech after each response.
        counter: a token counter for `profile` to share.
        transcription_timing: when input transcription events come (`TranscriptionTiming`):
            ``"late"`` (the default) after the response the turn started, ``"interleaved"``
            right after its ``response.created``, ``"early"`` before it.
        cancelled_usage: the usage of a cancelled response: ``"zero"`` (the default: all
            zero, as recorded sessions of the real API reported) or ``"produced"``
            (its request's input and the output made before it stopped).
    """

    def __init__(
        self,
        *,
        profile: ModelProfile | str = "gpt-realtime",
        provider: ProviderProfile | str = "openai",
        clock: Callable[[], float] | None = None,
        responder: Responder = echo_responder,
        transcriber: Transcriber | None = None,
        cache: PromptCache | None = None,
        session_id: str = "sess_001",
        model_name: str | None = None,
        send_audio: bool = False,
        advance_clock: bool = True,
        counter: TokenCounter | None = None,
        transcription_timing: TranscriptionTiming = "late",
        cancelled_usage: Literal["produced", "zero"] = "zero",
    ) -> None:
        if transcription_timing not in ("late", "interleaved", "early"):
            raise ConfigurationError(f"unknown transcription_timing {transcription_timing!r}")
        if cancelled_usage not in ("produced", "zero"):
            raise ConfigurationError(f"unknown cancelled_usage {cancelled_usage!r}")
        self.transcription_timing = transcription_timing
        self.cancelled_usage = cancelled_usage
        self.profile = get_model_profile(profile) if isinstance(profile, str) else profile
        self.provider = get_provider_profile(provider) if isinstance(provider, str) else provider
        self.clock = clock if clock is not None else ManualClock()
        self.responder = responder
        self.transcriber = transcriber
        self.id = session_id
        self.model_name = model_name or self.profile.name
        self.send_audio = send_audio
        self.advance_clock = advance_clock
        self.model = ServerModel(
            self.profile,
            self.provider,
            config=SessionConfig(instructions=DEFAULT_INSTRUCTIONS),
            cache=cache if cache is not None else PromptCache(self.profile.cache),
            clock=self.clock,
            session_id=session_id,
            counter=counter,
        )
        self.received: list[dict[str, Any]] = []
        """Every client event, in order."""
        self.sent: list[dict[str, Any]] = []
        """Every server event, in order."""
        self.closed = False
        """Whether the session is over (expired, or its connection dropped)."""
        self.close_reason = ""
        """Why it closed: the ``session_expired`` message, or ``"dropped"``."""
        self._tag = session_id.removeprefix("sess_")
        self._serial = itertools.count(1)
        self.conversation_id = self._new_id("conv")
        self._items = {}
        self._audio = {}
        self._heard = {}
        self._active = {}
        self._pending_transcripts = []
        self._buffer = bytearray()
        self._buffer_start_ms = 0.0
        self._vad = None
        self._speech = None
        expires_at = int(self.model.started_at + self.provider.max_session_seconds)
        self.session = default_session(session_id, self.model_name, expires_at)
        """The session object as ``session.created``/``session.updated`` show it."""
        self._sync_vad()
        self._handlers: dict[str, Callable[[Mapping[str, Any]], list[dict[str, Any]]]] = {
            "session.update": self._session_update,
            "conversation.item.create": self._item_create,
            "conversation.item.delete": self._item_delete,
            "conversation.item.truncate": self._item_truncate,
            "conversation.item.retrieve": self._item_retrieve,
            "input_audio_buffer.append": self._buffer_append,
            "input_audio_buffer.commit": self._buffer_commit,
            "input_audio_buffer.clear": self._buffer_clear,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }

    # ------------------------------------------------------------------ the interface

    def opening(self) -> list[dict[str, Any]]:
        """The events the server sends as the connection opens: ``session.created``."""
        return self._record([self._event("session.created", session=copy.deepcopy(self.session))])

    def receive(self, client_event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Handle one client event; returns the server's events, in order.

        A rejected event gives an ``error`` event and changes nothing; the session stays open.
        Once the provider's maximum duration has passed, any event gets the ``session_expired``
        error and the session is `closed` (a closed session answers nothing).

        Raises:
            Exception: whatever the responder or transcriber raised (`FakeRealtimeServer`
                reports it to the client as a ``server_error`` and re-raises it on exit).
        """
        self.received.append(dict(client_event))
        if self.closed:
            return []
        client_id = client_event.get("event_id")
        client_id = client_id if isinstance(client_id, str) else None
        try:
            expired = self.check_expiry()
            if expired:
                return expired
            kind = client_event.get("type")
            if not isinstance(kind, str):
                raise missing("type")
            handler = self._handlers.get(kind)
            if handler is None:
                supported = ", ".join(f"'{t}'" for t in self._handlers)
                raise _Reject(
                    "invalid_value",
                    f"Invalid value: '{kind}'. Supported values are: {supported}.",
                    "type",
                )
            events = handler(client_event)
        except _Reject as exc:
            events = [self.error_event(exc.code, exc.message, param=exc.param, event_id=client_id)]
        except SessionExpiredError as exc:
            events = [self._expire(exc)]
        except ServerModelError as exc:
            events = [
                self.error_event(exc.code, str(exc), param=server_param(exc), event_id=client_id)
            ]
        return self._record(events)

    def receive_raw(self, message: str | bytes) -> list[dict[str, Any]]:
        """Handle one WebSocket message: JSON text, or an ``error`` event if it is not JSON."""
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError) as exc:
            if self.closed:
                return []
            expired = self.check_expiry()
            if expired:
                return expired
            return self._record(
                [self.error_event("invalid_json", f"The message is not valid JSON: {exc}.")]
            )
        if not isinstance(data, dict):
            data = {"type": None}
        return self.receive(data)

    def check_expiry(self) -> list[dict[str, Any]]:
        """End the session if its maximum duration has passed: returns the error, else ``[]``.

        The server calls this on a timer too, so an idle client also sees the session end.
        """
        if self.closed or not self.model.expired:
            return []
        elapsed = self.clock() - self.model.started_at
        exc = SessionExpiredError(
            max_session_seconds=self.provider.max_session_seconds, elapsed=elapsed
        )
        event = self._expire(exc)
        self.sent.append(event)
        return [event]

    def close(self, reason: str) -> None:
        """Mark the session over (its connection is gone)."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason

    def say(self, words: str, ms: int | None = None) -> bytes:
        """Audio of the user saying `words`, in the session's input format (see `say`)."""
        return say(words, ms, audio_format=self._audio_format("input"))

    def heard(self, item_id: str) -> str | None:
        """The words the fake heard in a user audio item (``""``: none); ``None`` for others.

        What the model "hears", whether or not the session transcribes: the responder gets
        these words as the item's text.
        """
        return self._heard.get(item_id)

    @property
    def items(self) -> list[dict[str, Any]]:
        """The conversation as the server shows its items, in order (dropped items excluded)."""
        return [copy.deepcopy(self._items[i.id]) for i in self.model.items if i.id in self._items]

    # ------------------------------------------------------------------ helpers

    def _record(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.sent.extend(events)
        return events

    def _expire(self, exc: SessionExpiredError) -> dict[str, Any]:
        self.close(str(exc))
        return self.error_event(exc.code, str(exc))

    def _session_update(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        new, changes = updated_session(
            self.session, event.get("session"), max_output_tokens=self.profile.max_output_tokens
        )
        try:
            self.model.update_session(**changes)
        except BudgetExceededError as exc:
            raise _Reject("invalid_value", str(exc), "session.instructions") from None
        except ConfigurationError as exc:
            raise _Reject("invalid_value", str(exc), "session.truncation") from None
        self.session = new
        self._sync_vad()
        return [self._event("session.updated", session=copy.deepcopy(new))]
