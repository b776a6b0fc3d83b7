"""A fake OpenAI Realtime server, for testing realtime agents offline.

Point the real ``openai`` client at `FakeRealtimeServer` and an agent runs end to end, with
no network, no API key and no cost: the server speaks the GA Realtime protocol over a local
WebSocket (127.0.0.1 only) and answers with the events, item shapes and ``response.done``
usage the real server sends, as recorded in real sessions (``tests/data/realtime-logs``).

What the fake model says comes from a *responder* (`echo_responder` by default, `scripted` for
a fixed list of replies, or any function of the conversation). Everything else comes from the
library's `ServerModel`: the conversation, truncation, the prompt cache (one cache shared by
all the server's sessions, scoped as the profile says, so a second session can hit the cache of
the first, as recorded) and the usage of every response. Time is a virtual clock (a
`ManualClock` by default): user audio and the assistant's speech move it forward, a test can
move it too, and a session ends at the provider's maximum (60 minutes on OpenAI, 30 on Azure)
with the real server's ``session_expired`` error and a close 1001. `FakeRealtimeServer.drop`
cuts every connection abruptly, to test reconnection.

`FakeSession` is the same server without sockets: client events in, server events out.

Examples:
    >>> session = FakeSession(responder=scripted([Reply("Hi there!", audio_ms=750)]))
    >>> [e["type"] for e in session.opening()]
    ['session.created']
    >>> events = session.receive({"type": "session.update", "session": {
    ...     "type": "realtime", "instructions": "Answer in two or three words."}})
    >>> events = session.receive({"type": "conversation.item.create", "item": {
    ...     "type": "message", "role": "user",
    ...     "content": [{"type": "input_text", "text": "Say a short greeting."}]}})
    >>> [e["type"] for e in events]
    ['conversation.item.added', 'conversation.item.done']
    >>> done = session.receive({"type": "response.create"})[-2]
    >>> done["type"], done["response"]["usage"]["input_tokens"]
    ('response.done', 16)
    >>> done["response"]["usage"]["output_token_details"]
    {'text_tokens': 3, 'audio_tokens': 15}
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

from .errors import (
    BudgetExceededError,
    ConfigurationError,
    ContextManagerError,
    ContextOverflowError,
    InputFormatError,
    ServerModelError,
    SessionExpiredError,
)
from .items import (
    _BYTES_PER_MS,
    FunctionCall,
    FunctionCallOutput,
    Item,
    Message,
    from_realtime_item,
)
from .profiles import ModelProfile, ProviderProfile, get_model_profile, get_provider_profile
from .server.cache import PromptCache
from .server.model import ManualClock, ServerModel, SessionConfig
from .server.truncation import Truncation
from .tokens import TokenCounter

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "MS_PER_WORD",
    "FakeRealtimeServer",
    "FakeSession",
    "Reply",
    "Responder",
    "ScriptExhaustedError",
    "ScriptedResponder",
    "ScriptedSummarizer",
    "Transcriber",
    "echo_responder",
    "scripted",
    "speech_ms",
]

DEFAULT_INSTRUCTIONS = (
    "You are a voice assistant being tested. Be helpful and friendly, and answer briefly."
)
"""The instructions a fake session starts with (the real server sets its own default too)."""

MS_PER_WORD = 400
"""Milliseconds of speech per word for `Reply.speech` and `echo_responder`."""

_RATE_LIMIT_TOKENS = 15_000_000  # the tokens limit the recorded rate_limits.updated events show
_AUDIO_CHUNK_MS = 250  # duration of each response.output_audio.delta
_MIN_COMMIT_MS = 100  # input_audio_buffer.commit needs at least this much audio (spec §3)
_PCM_RATE = 24_000


# ------------------------------------------------------------------------- replies


def speech_ms(text: str, *, ms_per_word: int = MS_PER_WORD) -> int:
    """A plausible duration for speaking `text`: `ms_per_word` per word (one word at least).

    >>> speech_ms("Hi there!")
    800
    """
    return max(1, len(text.split())) * ms_per_word


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model answers to one ``response.create``.

    * ``Reply("text")``: a text output item (``output_text``);
    * ``Reply("text", audio_ms=1200)``: an assistant audio item whose transcript is ``text``
      (in a session whose ``output_modalities`` is ``["text"]`` it becomes a text item);
    * ``Reply(function_call=("name", '{"json": "arguments"}'))``: a single ``function_call``
      item with a fresh ``call_id``.
    """

    text: str = ""
    """The text, or the transcript of the audio."""
    audio_ms: int | None = None
    """Duration of the spoken answer; ``None`` for a text answer."""
    function_call: tuple[str, str] | None = None
    """``(name, arguments)`` of a tool call, the arguments a JSON string."""

    def __post_init__(self) -> None:
        if self.audio_ms is not None and self.audio_ms < 0:
            raise ValueError(f"audio_ms must be >= 0, got {self.audio_ms}")
        if self.function_call is not None and (self.text or self.audio_ms is not None):
            raise ValueError("a function call reply carries no text or audio")

    @classmethod
    def speech(cls, text: str, *, ms_per_word: int = MS_PER_WORD) -> Reply:
        """A spoken reply whose duration follows from its words (`speech_ms`)."""
        return cls(text, audio_ms=speech_ms(text, ms_per_word=ms_per_word))

    @classmethod
    def call(cls, name: str, arguments: str | Mapping[str, Any] = "{}") -> Reply:
        """A tool call; `arguments` is a JSON string or a mapping to encode."""
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return cls(function_call=(name, args))


Responder: TypeAlias = Callable[[Sequence[Item]], Reply]
"""Gives the fake model's reply from the conversation the response sees (after truncation)."""

Transcriber: TypeAlias = Callable[[bytes], str]
"""Gives the transcript of committed user audio (the raw bytes in the session's format)."""


def echo_responder(items: Sequence[Item]) -> Reply:
    """The default responder: deterministic and spoken.

    It answers the latest user message with ``"You said: <its text>"``, or, when a tool's
    output came after it, with ``"The tool says: <output>"``; the audio lasts `speech_ms`.

    >>> echo_responder([Message(role="user", text="Hello")])
    Reply(text='You said: Hello', audio_ms=1200, function_call=None)
    """
    for item in reversed(items):
        if isinstance(item, FunctionCallOutput):
            return Reply.speech(f"The tool says: {item.output}")
        if isinstance(item, Message) and item.role == "user":
            return Reply.speech(f"You said: {item.text or '(inaudible)'}")
    return Reply.speech("Hello! How can I help?")


class ScriptExhaustedError(ContextManagerError):
    """A `scripted` responder was asked for more replies than it was given."""


class ScriptedResponder:
    """Replies from a fixed list, in order (see `scripted`)."""

    def __init__(self, replies: Iterable[Reply | str]) -> None:
        self._replies = [Reply.speech(r) if isinstance(r, str) else r for r in replies]
        self._used = 0

    @property
    def remaining(self) -> int:
        """Replies not yet given."""
        return len(self._replies) - self._used

    def __call__(self, items: Sequence[Item]) -> Reply:
        if self._used >= len(self._replies):
            raise ScriptExhaustedError(
                f"the scripted responder has no reply left: all {len(self._replies)} were"
                f" used, and response #{self._used + 1} asked for another"
            )
        self._used += 1
        return self._replies[self._used - 1]


def scripted(replies: Iterable[Reply | str]) -> ScriptedResponder:
    """A responder that gives `replies` in order; a string is a spoken reply (`Reply.speech`).

    Asking for more replies than given raises `ScriptExhaustedError`.

    >>> answer = scripted(["Hello!", Reply("Done.")])
    >>> answer([]).audio_ms, answer([]).text
    (400, 'Done.')
    """
    return ScriptedResponder(replies)


@dataclass
class ScriptedSummarizer:
    """A summarizer that returns given summaries in order, and records what it was asked.

    For testing compaction without a model: each call returns the next text (the last one
    again once they run out), as given whatever the budget; `calls` records each call's items,
    budget and previous summary for the test to check.

    Examples:
        >>> summarizer = ScriptedSummarizer(["The user booked Oslo."])
        >>> summarizer.summarize([Message(role="user", text="Book Oslo.")], budget_tokens=64)
        'The user booked Oslo.'
        >>> summarizer.calls[0][1:]
        (64, None)
    """

    texts: Sequence[str]
    calls: list[tuple[tuple[Item, ...], int, str | None]] = field(default_factory=list)

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        """The next scripted summary (see the class)."""
        if not self.texts:
            raise ConfigurationError("a ScriptedSummarizer needs at least one text")
        text = self.texts[min(len(self.calls), len(self.texts) - 1)]
        self.calls.append((tuple(items), budget_tokens, previous))
        return text


# ------------------------------------------------------------------------- the session


class _Reject(Exception):
    """A client event the server refuses: becomes an ``error`` event."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def _missing(param: str) -> _Reject:
    return _Reject("missing_required_parameter", f"Missing required parameter: '{param}'.", param)


def _invalid(param: str, value: object, expected: str) -> _Reject:
    return _Reject("invalid_value", f"Invalid value for '{param}': {value!r}; {expected}.", param)


def _audio_format(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or value.get("type") not in _FORMATS:
        kind = value.get("type") if isinstance(value, Mapping) else value
        raise _invalid(f"{param}.type", kind, "expected audio/pcm, audio/pcmu or audio/pcma")
    if value["type"] != "audio/pcm":
        return {"type": value["type"]}
    rate = value.get("rate", _PCM_RATE)
    if rate != _PCM_RATE:
        raise _invalid(f"{param}.rate", rate, f"audio/pcm is {_PCM_RATE} Hz only")
    return {"type": "audio/pcm", "rate": _PCM_RATE}


_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")

_TURN_DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    # As the recorded sessions echo them.
    "server_vad": {
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    },
    "semantic_vad": {"eagerness": "auto", "create_response": True, "interrupt_response": True},
}

_SESSION_KEYS = frozenset(
    {
        "type",
        "model",
        "output_modalities",
        "instructions",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "tracing",
        "truncation",
        "prompt",
        "audio",
        "include",
        "reasoning",
        "parallel_tool_calls",
    }
)

_MODELLED = ("instructions", "tools", "truncation", "max_output_tokens")

_CONTENT_TYPES = {
    "system": ("input_text",),
    "user": ("input_text", "input_audio", "input_image"),
    "assistant": ("output_text",),
}


_PIECE = re.compile(r"\s*[\w']+|\s*[^\w\s]+|\s+")


def _pieces(text: str) -> list[str]:
    """`text` in the pieces the server streams it in, one per delta.

    A word (with its leading space) or a run of punctuation, as recorded ("Hello", ",", " my").

    >>> _pieces("Hello, my friend.")
    ['Hello', ',', ' my', ' friend', '.']
    """
    return _PIECE.findall(text)


def _text(obj: Mapping[str, Any], key: str, where: str = "item") -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _missing(f"{where}.{key}")
    return value


def _b64decode(data: object, param: str) -> bytes:
    if not isinstance(data, str):
        raise _missing(param)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Reject("invalid_value", f"Invalid base64 audio in '{param}'.", param) from None


class FakeSession:
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
            transcription (default: a placeholder ``"(N ms of speech)"``).
        cache: the prompt cache; pass one shared cache to several sessions.
        session_id: this session's id (``sess_...``); the other ids derive from it.
        model_name: the model the client asked for (``session.model``); the profile's name
            by default.
        send_audio: send ``response.output_audio.delta`` events (base64 zeros of the exact
            length); off by default, since most tests need only the transcript.
        advance_clock: move a `ManualClock` by the user audio committed and by the assistant's
            speech after each response.
        counter: a token counter for `profile` to share.
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
    ) -> None:
        self.profile = get_model_profile(profile) if isinstance(profile, str) else profile
        self.provider = get_provider_profile(provider) if isinstance(provider, str) else provider
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
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
        self._items: dict[str, dict[str, Any]] = {}  # item id -> the item as the server shows it
        self._audio: dict[str, bytes] = {}  # user item id -> its audio bytes
        self._buffer = bytearray()
        self._buffer_start_ms = 0  # where the buffer starts on the session's input audio timeline
        expires_at = int(self.model.started_at + self.provider.max_session_seconds)
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": self.model_name,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": expires_at,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": _PCM_RATE},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": None,
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": _PCM_RATE},
                    "voice": "alloy",
                    "speed": 1.0,
                },
            },
            "include": None,
        }
        """The session object as ``session.created``/``session.updated`` show it."""
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
                raise _missing("type")
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
            events = [self.error_event(exc.code, str(exc), param=_param(exc), event_id=client_id)]
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

    @property
    def items(self) -> list[dict[str, Any]]:
        """The conversation as the server shows its items, in order (dropped items excluded)."""
        return [copy.deepcopy(self._items[i.id]) for i in self.model.items if i.id in self._items]

    # ------------------------------------------------------------------ helpers

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{self._tag}_{next(self._serial):06d}"

    def _new_item_id(self) -> str:
        while True:
            item_id = self._new_id("item")
            if item_id not in self._items and item_id not in self.model.dropped_ids:
                return item_id

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": self._new_id("event"), **fields}

    def _record(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.sent.extend(events)
        return events

    def _expire(self, exc: SessionExpiredError) -> dict[str, Any]:
        self.close(str(exc))
        return self.error_event(exc.code, str(exc))

    def _bytes_per_ms(self, side: str) -> float:
        return _BYTES_PER_MS[self.session["audio"][side]["format"]["type"]]

    def _advance(self, ms: int) -> None:
        if self.advance_clock and ms and isinstance(self.clock, ManualClock):
            self.clock.advance(ms / 1000)

    def _previous(self, item_id: str) -> str | None:
        ids = [i.id for i in self.model.items]
        n = ids.index(item_id)
        return ids[n - 1] if n else None

    # ------------------------------------------------------------------ session.update

    def _session_update(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        patch = event.get("session")
        if not isinstance(patch, Mapping):
            raise _missing("session")
        if "type" not in patch:
            raise _missing("session.type")
        if patch["type"] != "realtime":
            raise _Reject(
                "unsupported_by_fake",
                f"The fake server models realtime sessions only, not {patch['type']!r}.",
                "session.type",
            )
        for key in patch:
            if key not in _SESSION_KEYS:
                raise _Reject(
                    "unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}"
                )
        new = copy.deepcopy(self.session)
        changes = self._model_settings(patch, new)
        if "output_modalities" in patch:
            modalities = patch["output_modalities"]
            if modalities not in (["audio"], ["text"]):
                raise _invalid(
                    "session.output_modalities", modalities, "expected ['audio'] or ['text']"
                )
            new["output_modalities"] = list(modalities)
        if "audio" in patch:
            new["audio"] = self._merge_audio(new["audio"], patch["audio"])
        for key in _SESSION_KEYS - {"type", "model", "audio", "output_modalities", *_MODELLED}:
            if key in patch:
                new[key] = copy.deepcopy(patch[key])
        try:
            self.model.update_session(**changes)
        except BudgetExceededError as exc:
            raise _Reject("invalid_value", str(exc), "session.instructions") from None
        except ConfigurationError as exc:
            raise _Reject("invalid_value", str(exc), "session.truncation") from None
        self.session = new
        return [self._event("session.updated", session=copy.deepcopy(new))]

    def _model_settings(self, patch: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Check the settings the `ServerModel` uses; write them into `new`; return them."""
        changes: dict[str, Any] = {}
        if "instructions" in patch:
            text = patch["instructions"]
            if not isinstance(text, str):
                raise _invalid("session.instructions", text, "expected a string")
            # Recorded: the real server answers "" with its default instructions.
            new["instructions"] = changes["instructions"] = text or DEFAULT_INSTRUCTIONS
        if "tools" in patch:
            tools = patch["tools"]
            if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
                raise _invalid("session.tools", tools, "expected a list of tool objects")
            new["tools"] = changes["tools"] = [dict(t) for t in tools]
        if "truncation" in patch:
            try:
                truncation = Truncation.from_realtime(patch["truncation"])
            except (ConfigurationError, ValueError, TypeError, KeyError) as exc:
                raise _invalid("session.truncation", patch["truncation"], str(exc)) from None
            new["truncation"] = truncation.to_realtime()
            changes["truncation"] = truncation
        if "max_output_tokens" in patch:
            value = patch["max_output_tokens"]
            cap = self.profile.max_output_tokens
            if value != "inf" and not (type(value) is int and 1 <= value <= cap):
                raise _invalid("session.max_output_tokens", value, f"expected 1 to {cap} or 'inf'")
            new["max_output_tokens"] = value
            if value != "inf":
                changes["max_output_tokens"] = value
        return changes

    def _merge_audio(self, current: dict[str, Any], patch: object) -> dict[str, Any]:
        if not isinstance(patch, Mapping):
            raise _invalid("session.audio", patch, "expected an object")
        out = copy.deepcopy(current)
        for side in ("input", "output"):
            part = patch.get(side)
            if part is None:
                continue
            if not isinstance(part, Mapping):
                raise _invalid(f"session.audio.{side}", part, "expected an object")
            where = f"session.audio.{side}"
            if "format" in part:
                out[side]["format"] = _audio_format(part["format"], f"{where}.format")
            if side == "output":
                for key in ("voice", "speed"):
                    if key in part:
                        out[side][key] = part[key]
                continue
            if "transcription" in part:
                spec = part["transcription"]
                if spec is not None and not isinstance(spec, Mapping):
                    raise _invalid(f"{where}.transcription", spec, "expected an object or null")
                out[side]["transcription"] = (
                    None
                    if spec is None
                    else {
                        "model": spec.get("model"),
                        "language": spec.get("language"),
                        "prompt": spec.get("prompt"),
                    }
                )
            if "turn_detection" in part:
                spec = part["turn_detection"]
                if spec is None:
                    out[side]["turn_detection"] = None
                else:
                    kind = spec.get("type") if isinstance(spec, Mapping) else None
                    if kind not in _TURN_DETECTION_DEFAULTS:
                        raise _invalid(
                            f"{where}.turn_detection.type",
                            kind,
                            "expected server_vad or semantic_vad",
                        )
                    assert isinstance(spec, Mapping)
                    out[side]["turn_detection"] = {
                        "type": kind,
                        **_TURN_DETECTION_DEFAULTS[kind],
                        **{k: v for k, v in spec.items() if k != "type"},
                    }
            if "noise_reduction" in part:
                out[side]["noise_reduction"] = copy.deepcopy(part["noise_reduction"])
        return out

    # ------------------------------------------------------------------ items

    def _parse_item(self, raw: object) -> tuple[Item, dict[str, Any], bytes | None]:
        """The model's item, the item as the server shows it, and any user audio bytes."""
        if not isinstance(raw, Mapping):
            raise _missing("item")
        item_id = raw.get("id")
        if item_id is not None and not isinstance(item_id, str):
            raise _invalid("item.id", item_id, "expected a string")
        item_id = item_id or self._new_item_id()
        kind = raw.get("type")
        if kind == "function_call":
            name, call_id = _text(raw, "name"), _text(raw, "call_id")
            arguments = raw.get("arguments", "")
            if not isinstance(arguments, str):
                raise _invalid("item.arguments", arguments, "expected a JSON string")
            item: Item = FunctionCall(name=name, call_id=call_id, arguments=arguments, id=item_id)
            return item, _call_wire(item_id, name, call_id, arguments), None
        if kind == "function_call_output":
            call_id, output = _text(raw, "call_id"), _text(raw, "output")
            item = FunctionCallOutput(call_id=call_id, output=output, id=item_id)
            wire = {"id": item_id, "type": kind, "call_id": call_id, "output": output}
            return item, wire, None
        if kind == "message":
            return self._parse_message(raw, item_id)
        if isinstance(kind, str) and kind.startswith("mcp_"):
            raise _Reject(
                "unsupported_by_fake", f"The fake server does not model {kind} items.", "item.type"
            )
        raise _invalid("item.type", kind, "expected message, function_call or function_call_output")

    def _parse_message(
        self, raw: Mapping[str, Any], item_id: str
    ) -> tuple[Item, dict[str, Any], bytes | None]:
        role = raw.get("role")
        if role not in _CONTENT_TYPES:
            raise _invalid("item.role", role, "expected system, user or assistant")
        content = raw.get("content")
        if not isinstance(content, list):
            raise _missing("item.content")
        parts: list[dict[str, Any]] = []
        audio = bytearray()
        has_audio = False
        for n, part in enumerate(content):
            where = f"item.content[{n}]"
            ptype = part.get("type") if isinstance(part, Mapping) else None
            if ptype not in _CONTENT_TYPES[role]:
                if role == "assistant" and ptype == "output_audio":
                    raise _Reject(
                        "invalid_value",
                        "Cannot populate assistant audio messages: send the transcript as"
                        " output_text.",
                        f"{where}.type",
                    )
                allowed = ", ".join(_CONTENT_TYPES[role])
                raise _invalid(f"{where}.type", ptype, f"{role} messages take {allowed}")
            assert isinstance(part, Mapping)
            if ptype in ("input_text", "output_text"):
                parts.append({"type": ptype, "text": _text(part, "text", where)})
            elif ptype == "input_audio":
                has_audio = True
                audio += _b64decode(part.get("audio"), f"{where}.audio")
                parts.append({"type": ptype, "transcript": part.get("transcript")})
            else:
                url = _text(part, "image_url", where)
                parts.append(
                    {"type": ptype, "image_url": url, "detail": part.get("detail", "auto")}
                )
        audio_ms = int(len(audio) // self._bytes_per_ms("input")) if has_audio else None
        try:
            item = from_realtime_item({**raw, "id": item_id, "content": parts}, audio_ms=audio_ms)
        except (InputFormatError, ValueError) as exc:
            raise _Reject("invalid_value", str(exc), "item") from None
        wire = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": role,
            "content": parts,
        }
        return item, wire, bytes(audio) if has_audio else None

    def _item_create(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        previous = event.get("previous_item_id")
        if previous is not None and not isinstance(previous, str):
            raise _invalid("previous_item_id", previous, "expected an item id or 'root'")
        item, wire, audio = self._parse_item(event.get("item"))
        assert item.id is not None
        try:
            self.model.create_item(item, previous)
        except ServerModelError as exc:
            param = "item.id" if exc.code == "item_id_exists" else "previous_item_id"
            raise _Reject(exc.code, str(exc), param) from None
        self._items[item.id] = wire
        if audio is not None:
            self._audio[item.id] = audio
        return self._added_done(item.id)

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

    def _item_id(self, event: Mapping[str, Any]) -> str:
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            raise _missing("item_id")
        if item_id not in self._items:
            raise _Reject("item_not_found", f"Item with item_id '{item_id}' not found.", "item_id")
        return item_id

    def _item_delete(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        item_id = self._item_id(event)
        self.model.delete_item(item_id)
        del self._items[item_id]
        self._audio.pop(item_id, None)
        return [self._event("conversation.item.deleted", item_id=item_id)]

    def _item_truncate(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        item_id = self._item_id(event)
        content_index = event.get("content_index", 0)
        audio_end_ms = event.get("audio_end_ms")
        if content_index != 0:
            raise _invalid("content_index", content_index, "assistant audio is content 0")
        if type(audio_end_ms) is not int:
            raise _missing("audio_end_ms")
        try:
            self.model.truncate_item(item_id, audio_end_ms)
        except ServerModelError as exc:
            raise _Reject(exc.code, str(exc), _param(exc)) from None
        # The server deletes the transcript: no unheard text stays in context.
        self._items[item_id]["content"] = [{"type": "output_audio", "transcript": ""}]
        return [
            self._event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=content_index,
                audio_end_ms=audio_end_ms,
            )
        ]

    def _item_retrieve(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        item_id = self._item_id(event)
        wire = copy.deepcopy(self._items[item_id])
        held = {i.id: i for i in self.model.items}
        for part in wire.get("content", []):
            if part["type"] == "input_audio" and item_id in self._audio:
                part["audio"] = base64.b64encode(self._audio[item_id]).decode()
            elif part["type"] == "output_audio":
                item = held.get(item_id)
                ms = item.audio_ms if isinstance(item, Message) and item.audio_ms else 0
                part["audio"] = self._zeros(ms)
        return [self._event("conversation.item.retrieved", item=wire)]

    def _zeros(self, ms: int) -> str:
        return base64.b64encode(bytes(int(ms * self._bytes_per_ms("output")))).decode()

    # ------------------------------------------------------------------ input audio

    def _buffer_append(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._buffer += _b64decode(event.get("audio"), "audio")
        return []  # the real server does not acknowledge appends

    def _buffer_ms(self) -> int:
        return int(len(self._buffer) // self._bytes_per_ms("input"))

    def _buffer_clear(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._buffer_start_ms += self._buffer_ms()
        self._buffer.clear()
        return [self._event("input_audio_buffer.cleared")]

    def _buffer_commit(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        ms = self._buffer_ms()
        if ms < _MIN_COMMIT_MS:
            raise _Reject(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least"
                f" {_MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
            )
        audio = bytes(self._buffer)
        # The user spoke for `ms` before the commit: that time passes first.
        self._advance(ms)
        settings = self.session["audio"]["input"]
        transcript = None
        if settings["transcription"] is not None:
            transcript = self.transcriber(audio) if self.transcriber else f"({ms} ms of speech)"
        item_id = self._new_item_id()
        previous = self.model.items[-1].id if self.model.items else None
        self.model.create_item(Message(role="user", text=transcript or "", audio_ms=ms, id=item_id))
        self._buffer.clear()
        start, self._buffer_start_ms = self._buffer_start_ms, self._buffer_start_ms + ms
        self._items[item_id] = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._audio[item_id] = audio
        events = []
        vad = settings["turn_detection"]
        if vad is not None:
            # A commit stands for the end of speech that voice activity detection would find.
            events += [
                self._event(
                    "input_audio_buffer.speech_started", audio_start_ms=start, item_id=item_id
                ),
                self._event(
                    "input_audio_buffer.speech_stopped", audio_end_ms=start + ms, item_id=item_id
                ),
            ]
        events.append(
            self._event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        )
        events += self._added_done(item_id)
        if transcript is not None:
            self._items[item_id]["content"][0]["transcript"] = transcript
            events.append(
                self._event(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=item_id,
                    content_index=0,
                    transcript=transcript,
                    usage={"type": "duration", "seconds": math.ceil(ms / 1000)},
                )
            )
        if vad is not None and vad.get("create_response", True):
            events += self._respond({}, None)
        return events

    # ------------------------------------------------------------------ responses

    def _response_cancel(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        # Fake responses complete as they are created: none is ever in progress.
        raise _Reject(
            "response_cancel_not_active", "Cancellation failed: no active response found."
        )

    def _response_create(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        params = event.get("response") or {}
        if not isinstance(params, Mapping):
            raise _invalid("response", params, "expected an object")
        client_id = event.get("event_id")
        return self._respond(params, client_id if isinstance(client_id, str) else None)

    def _respond(self, params: Mapping[str, Any], client_id: str | None) -> list[dict[str, Any]]:
        conversation = params.get("conversation", "auto")
        if conversation not in ("auto", "none"):
            raise _invalid("response.conversation", conversation, "expected 'auto' or 'none'")
        if "input" in params:
            raise _Reject(
                "unsupported_by_fake",
                "The fake server does not model a custom response input.",
                "response.input",
            )
        modalities = params.get("output_modalities", self.session["output_modalities"])
        if modalities not in (["audio"], ["text"]):
            raise _invalid(
                "response.output_modalities", modalities, "expected ['audio'] or ['text']"
            )
        out_of_band = conversation == "none"
        model = self.model
        if out_of_band:
            if not isinstance(self.clock, ManualClock):
                raise _Reject(
                    "unsupported_by_fake",
                    "Out-of-band responses need the fake server to run on a ManualClock.",
                    "response.conversation",
                )
            model = self.model.fork()
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": self._new_id("resp"),
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": None if out_of_band else self.conversation_id,
            "output_modalities": list(modalities),
            "max_output_tokens": params.get("max_output_tokens", self.session["max_output_tokens"]),
            "audio": {
                "output": {
                    "format": dict(self.session["audio"]["output"]["format"]),
                    "voice": self.session["audio"]["output"]["voice"],
                }
            },
            "usage": None,
            "metadata": params.get("metadata"),
        }
        try:
            dropped = set(model.preview_truncation())
        except ContextOverflowError:
            return self._failed(model, response)
        # The reply comes before any event, so a failing responder leaves no response begun.
        reply = self.responder([i for i in model.items if i.id not in dropped])
        outputs = self._outputs(reply, modalities)
        result = model.create_response(outputs)
        # Items the truncation dropped (result.dropped_items) get no event: the real server
        # sends none (spec §2.2 "Server events on truncation", §10.5), so neither does the fake.
        events = [self._event("response.created", response=copy.deepcopy(response))]
        done_items = []
        for index, item in enumerate(outputs):
            assert item.id is not None
            wire = _output_wire(item)
            if not out_of_band:
                self._items[item.id] = wire
            events += self._output_events(response["id"], index, item, wire, out_of_band)
            done_items.append(copy.deepcopy(wire))
        response.update(status="completed", output=done_items, usage=result.usage.to_dict())
        events.append(self._event("response.done", response=response))
        # Recorded: rate_limits.updated follows response.done.
        remaining = _RATE_LIMIT_TOKENS - result.usage.total_tokens
        events.append(
            self._event(
                "rate_limits.updated",
                rate_limits=[
                    {
                        "name": "tokens",
                        "limit": _RATE_LIMIT_TOKENS,
                        "remaining": remaining,
                        "reset_seconds": 0.002,
                    }
                ],
            )
        )
        # The assistant speaks its answer: that time passes.
        self._advance(sum(i.audio_ms or 0 for i in outputs if isinstance(i, Message)))
        return events

    def _failed(self, model: ServerModel, response: dict[str, Any]) -> list[dict[str, Any]]:
        """An overflow with truncation disabled: a failed response and an error."""
        result = model.create_response([])
        assert result.error is not None
        error = result.error["error"]
        events = [self._event("response.created", response=copy.deepcopy(response))]
        response.update(
            status="failed",
            status_details={
                "type": "failed",
                "reason": None,
                "error": {
                    "type": error["type"],
                    "code": error["code"],
                    "message": error["message"],
                },
            },
            usage=result.usage.to_dict(),
        )
        events.append(self._event("response.done", response=response))
        events.append(self.error_event(error["code"], error["message"], param=error["param"]))
        return events

    def _outputs(self, reply: Reply, modalities: Sequence[str]) -> list[Item]:
        item_id = self._new_item_id()
        if reply.function_call is not None:
            name, arguments = reply.function_call
            return [
                FunctionCall(
                    name=name, call_id=self._new_id("call"), arguments=arguments, id=item_id
                )
            ]
        audio_ms = reply.audio_ms if list(modalities) == ["audio"] else None
        return [Message(role="assistant", text=reply.text, audio_ms=audio_ms, id=item_id)]

    def _output_events(
        self, response_id: str, index: int, item: Item, wire: dict[str, Any], out_of_band: bool
    ) -> list[dict[str, Any]]:
        assert item.id is not None
        pending = copy.deepcopy(wire)
        pending["status"] = "in_progress"
        if "content" in pending:
            pending["content"] = []
        else:
            pending["arguments"] = ""
        at = {"response_id": response_id, "item_id": item.id, "output_index": index}
        previous = None if out_of_band else self._previous(item.id)
        events = [
            self._event(
                "response.output_item.added",
                response_id=response_id,
                output_index=index,
                item=pending,
            )
        ]
        if not out_of_band:
            events.append(
                self._event(
                    "conversation.item.added",
                    previous_item_id=previous,
                    item=copy.deepcopy(pending),
                )
            )
        if isinstance(item, FunctionCall):
            call = {**at, "call_id": item.call_id}
            events += [
                *(
                    self._event("response.function_call_arguments.delta", **call, delta=piece)
                    for piece in _pieces(item.arguments)
                ),
                self._event(
                    "response.function_call_arguments.done",
                    **call,
                    name=item.name,
                    arguments=item.arguments,
                ),
            ]
        else:
            assert isinstance(item, Message)
            # One content part: audio (with its transcript) or text, streamed a piece a delta.
            audio = item.audio_ms is not None
            part = {**at, "content_index": 0}
            field_name, stream = ("transcript", "output_audio_transcript") if audio else (
                "text", "output_text")  # fmt: skip
            kind = "audio" if audio else "text"
            events.append(
                self._event(
                    "response.content_part.added", **part, part={"type": kind, field_name: ""}
                )  # fmt: skip
            )
            events += [
                self._event(f"response.{stream}.delta", **part, delta=piece)
                for piece in _pieces(item.text)
            ]
            if audio and self.send_audio:
                assert item.audio_ms is not None
                events += [
                    self._event("response.output_audio.delta", **part, delta=chunk)
                    for chunk in self._chunks(item.audio_ms)
                ]
            if audio:
                events.append(self._event("response.output_audio.done", **part))
            events += [
                self._event(f"response.{stream}.done", **part, **{field_name: item.text}),
                self._event(
                    "response.content_part.done", **part, part={"type": kind, field_name: item.text}
                ),  # fmt: skip
            ]
        # Recorded order: conversation.item.done, then response.output_item.done.
        if not out_of_band:
            events.append(
                self._event(
                    "conversation.item.done", previous_item_id=previous, item=copy.deepcopy(wire)
                )
            )
        events.append(
            self._event(
                "response.output_item.done",
                response_id=response_id,
                output_index=index,
                item=copy.deepcopy(wire),
            )
        )
        return events

    def _chunks(self, ms: int) -> list[str]:
        chunks = []
        for start in range(0, ms, _AUDIO_CHUNK_MS):
            chunks.append(self._zeros(min(_AUDIO_CHUNK_MS, ms - start)))
        return chunks


def _param(exc: ServerModelError) -> str | None:
    error = exc.event.get("error")
    param = error.get("param") if isinstance(error, dict) else None
    return param if isinstance(param, str) else None


def _call_wire(item_id: str, name: str, call_id: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "name": name,
        "call_id": call_id,
        "arguments": arguments,
    }


def _output_wire(item: Item) -> dict[str, Any]:
    assert item.id is not None
    if isinstance(item, FunctionCall):
        return _call_wire(item.id, item.name, item.call_id, item.arguments)
    assert isinstance(item, Message)
    part = (
        {"type": "output_audio", "transcript": item.text}
        if item.audio_ms is not None
        else {"type": "output_text", "text": item.text}
    )
    return {
        "id": item.id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }


# ------------------------------------------------------------------------- the server


class FakeRealtimeServer:
    """A local Realtime server for end-to-end tests of agents that use the ``openai`` client.

    ::

        async with FakeRealtimeServer("gpt-realtime", "azure") as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                ...

    Every connection to a path ending in ``/realtime`` is a new `FakeSession` (in `sessions`,
    in connection order); any other path gets a 404. The ``Authorization`` header is not
    checked. A session's ``model`` is the one the client asked for (``?model=``), while the
    accounting follows `profile`. Sessions share one clock and one prompt cache. A session
    past the provider's maximum duration gets the ``session_expired`` error and a close 1001,
    whether the client sends something (the next event) or stays idle (a timer checks every
    `expiry_poll_seconds`).

    If the responder or the transcriber raises, the client gets a ``server_error`` event and
    the exception is kept in `failures`; leaving the ``async with`` block re-raises the first
    one, so a broken script fails the test instead of hanging it.

    Args:
        profile: the model profile (or its name).
        provider: the provider profile (or name): ``"openai"`` (60 minutes) or ``"azure"`` (30).
        clock: the virtual clock (a callable giving seconds); a new `ManualClock` at 0 by
            default.
        responder: gives each response's reply.
        transcriber: transcribes committed user audio, when a session asks for transcription.
        send_audio: send the output audio as ``response.output_audio.delta`` events (zeros).
        advance_clock: move a `ManualClock` by committed user audio and the assistant's speech.
        port: the port on 127.0.0.1; 0 picks a free one.
        expiry_poll_seconds: how often idle sessions are checked for expiry (``None``: never;
            expiry then shows only at the client's next event).
    """

    def __init__(
        self,
        profile: ModelProfile | str = "gpt-realtime",
        provider: ProviderProfile | str = "openai",
        *,
        clock: Callable[[], float] | None = None,
        responder: Responder = echo_responder,
        transcriber: Transcriber | None = None,
        send_audio: bool = False,
        advance_clock: bool = True,
        port: int = 0,
        expiry_poll_seconds: float | None = 0.05,
    ) -> None:
        self.profile = get_model_profile(profile) if isinstance(profile, str) else profile
        self.provider = get_provider_profile(provider) if isinstance(provider, str) else provider
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
        self.responder = responder
        self.transcriber = transcriber
        self.send_audio = send_audio
        self.advance_clock = advance_clock
        self.expiry_poll_seconds = expiry_poll_seconds
        self.cache = PromptCache(self.profile.cache)
        """The prompt cache all sessions share."""
        self.sessions: list[FakeSession] = []
        """Every session, in connection order."""
        self.failures: list[Exception] = []
        """Exceptions raised by the responder or transcriber (or a bug in the fake)."""
        self._counter = TokenCounter(self.profile)
        self._port = port
        self._server: Server | None = None
        self._poller: asyncio.Task[None] | None = None
        self._open: dict[FakeSession, ServerConnection] = {}

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
        if exc_type is None and self.failures:
            raise self.failures[0]

    async def start(self) -> None:
        """Start listening on 127.0.0.1 (``async with`` does this)."""
        try:
            from websockets.asyncio.server import serve
        except ImportError as exc:
            raise ConfigurationError(
                'the fake realtime server needs websockets: pip install "context-manager[testing]"'
            ) from exc
        self._server = await serve(
            self._handle, "127.0.0.1", self._port, process_request=self._check_path
        )
        self._port = next(iter(self._server.sockets)).getsockname()[1]
        if self.expiry_poll_seconds is not None:
            self._poller = asyncio.create_task(self._poll(self.expiry_poll_seconds))

    async def close(self) -> None:
        """Stop: open connections are closed (1001) and the port is released."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def drop(self) -> None:
        """Cut every open connection abruptly, as a network failure would.

        No close frame is sent: the client sees an abnormal closure (1006). Those sessions
        are over; new connections are served as usual (a reconnecting client gets a new
        session, as from the real server).
        """
        dropped = list(self._open.items())
        for session, connection in dropped:
            session.close("dropped")
            connection.transport.abort()
        for _, connection in dropped:
            await connection.wait_closed()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise ConfigurationError("the fake realtime server is not running; use async with")
        return self._port

    @property
    def base_url(self) -> str:
        """The client's ``base_url``: ``AsyncOpenAI(api_key="test", base_url=server.base_url)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def url(self) -> str:
        """The WebSocket URL of the realtime endpoint (add ``?model=...``)."""
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    # ------------------------------------------------------------------ connections

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if not path.endswith("/realtime"):
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"not found: {path}; the realtime endpoint is /v1/realtime\n"
            )
        return None

    def _new_session(self, model_name: str | None) -> FakeSession:
        session = FakeSession(
            profile=self.profile,
            provider=self.provider,
            clock=self.clock,
            responder=self.responder,
            transcriber=self.transcriber,
            cache=self.cache,
            session_id=f"sess_{len(self.sessions) + 1:03d}",
            model_name=model_name,
            send_audio=self.send_audio,
            advance_clock=self.advance_clock,
            counter=self._counter,
        )
        self.sessions.append(session)
        return session

    async def _handle(self, connection: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        assert connection.request is not None
        query = parse_qs(urlsplit(connection.request.path).query)
        session = self._new_session(query.get("model", [None])[0])
        self._open[session] = connection
        try:
            await self._send(connection, session.opening())
            async for message in connection:
                try:
                    events = session.receive_raw(message)
                except Exception as exc:  # the responder's or transcriber's, or a fake's bug
                    self.failures.append(exc)
                    error = session.error_event(
                        "server_error",
                        f"The fake server failed: {type(exc).__name__}: {exc}",
                        error_type="server_error",
                    )
                    session.sent.append(error)
                    events = [error]
                await self._send(connection, events)
                if session.closed:
                    await connection.close(1001, session.close_reason)
                    break
        except ConnectionClosed:
            pass
        finally:
            self._open.pop(session, None)

    async def _send(self, connection: ServerConnection, events: list[dict[str, Any]]) -> None:
        for event in events:
            await connection.send(json.dumps(event))

    async def _poll(self, interval: float) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            await asyncio.sleep(interval)
            for session, connection in list(self._open.items()):
                events = session.check_expiry()
                if events:
                    with contextlib.suppress(ConnectionClosed):
                        await self._send(connection, events)
                        await connection.close(1001, session.close_reason)
