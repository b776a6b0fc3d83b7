"""`SessionMirror`: the server's conversation rebuilt from the server's own events.

Fed every server event of a Realtime connection (live, or read back from a log), the mirror
keeps a `ServerModel` holding what the server holds, so the model predicts the next request's
tokens, what truncation will drop, what the cache will hit, and, at each ``response.done``, the
usage the server reports (`ResponseOutcome`: predicted beside observed). The live engine and the
``replay`` command both use it, so a recording and a live session are read by one rule.

The server's events are the truth: ``session.created``/``session.updated`` give instructions,
tools and truncation; ``conversation.item.added`` (or the beta ``.created``) adds an input item
where its ``previous_item_id`` says, and a later ``.done`` of the same item replaces its content
(a transcript arrives); ``conversation.item.deleted``/``.truncated`` change it; ``response.done``
gives the output items. Audio durations come from ``input_audio_buffer.speech_started``/
``speech_stopped`` (user audio), from the bytes of ``response.output_audio.delta`` at the
session's format (assistant audio) or, when no audio bytes were seen, from the response's
reported output audio tokens. Unknown event types are ignored (forward compatible).

The mirror never enforces the provider's session maximum: it follows the server, which decides.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .errors import InputFormatError, ServerModelError
from .items import Item, from_realtime_item
from .profiles import ModelProfile, ProviderProfile, get_provider_profile
from .server import ManualClock, PromptCache, ServerModel, SessionConfig, Truncation, Usage
from .tokens import TokenCounter

__all__ = ["ResponseOutcome", "SessionMirror", "bytes_per_ms"]


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """One ``response.done``: the model's prediction beside the server's report."""

    session: int
    """0-based index of the session (``session.created`` count) the response belongs to."""
    response: int
    """0-based response number in its session."""
    response_id: str | None
    status: str
    predicted: Usage
    observed: Usage
    compared: bool
    """Whether it counts in a comparison: completed, in the conversation, with input tokens."""
    outputs: tuple[Item, ...] = ()
    """The response's output items, with the server's ids."""
    dropped: tuple[str, ...] = ()
    """Ids of the items the model predicts truncation dropped at this response."""
    items: int = 0
    """Conversation items in the response's input (as the model has it)."""

    @property
    def error(self) -> int:
        """Observed minus predicted input tokens (positive: the model under-counted)."""
        return self.observed.input_tokens - self.predicted.input_tokens


def bytes_per_ms(audio_format: str) -> float:
    """Bytes of one millisecond of audio in a Realtime audio format (PCM16 24 kHz or G.711)."""
    return 48.0 if audio_format in ("audio/pcm", "pcm16") else 8.0


_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _decoded_size(data: str) -> int | None:
    """Bytes of base64 `data`, from its length (the audio itself is never decoded).

    ``None`` for what is not base64 (a placeholder where a recorder dropped the audio): a
    length that is not a multiple of 4, or foreign characters at either end.
    """
    if len(data) % 4 or not (_BASE64.issuperset(data[:8]) and _BASE64.issuperset(data[-8:])):
        return None
    return len(data) // 4 * 3 - data.endswith("=") - data.endswith("==")


class SessionMirror:
    """The server's conversation, rebuilt from server events, driving a `ServerModel`.

    Args:
        profile: the model profile predictions use.
        provider: the provider profile (or name); the mirror reports it but never enforces it.
        cache: the prompt cache (shared by the sessions of one mirror by default, as the server's
            cache is shared by an organization's sessions).
        counter: a token counter for `profile` to share.
        clock: seconds, for the cache's time to live (a `ManualClock` at 0 by default).
        audio_bytes: measure assistant audio from its ``response.output_audio.delta`` bytes
            (else from the output audio tokens ``response.done`` reports: the same tokens, and
            the live engine skips the deltas, most of a call's events, in O(1)).
    """

    def __init__(
        self,
        profile: ModelProfile,
        provider: ProviderProfile | str = "openai",
        *,
        cache: PromptCache | None = None,
        counter: TokenCounter | None = None,
        clock: Callable[[], float] | None = None,
        audio_bytes: bool = True,
    ) -> None:
        self.audio_bytes_counted = audio_bytes
        self.provider = get_provider_profile(provider) if isinstance(provider, str) else provider
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
        self.index = 0
        """0-based index of the current session (a log may begin before its ``session.created``)."""
        self.session: dict[str, Any] = {}
        """The server's last session object (``session.created``/``.updated``)."""
        self.notes: list[str] = []
        """What the model could not follow (a truncation it cannot place, say)."""
        self._touched = False
        self._set_profile(profile, cache, counter)
        self._new_server()

    # ------------------------------------------------------------------ set-up

    def _set_profile(
        self, profile: ModelProfile, cache: PromptCache | None, counter: TokenCounter | None
    ) -> None:
        self.profile = profile
        self.cache = cache if cache is not None else PromptCache(profile.cache)
        self.counter = counter if counter is not None else TokenCounter(profile)

    def use_profile(self, profile: ModelProfile, *, keep_cache: bool = False) -> None:
        """Predict with another profile from now on; the conversation is kept, re-counted.

        With `keep_cache` the prompt cache stays (text items keep their cached prefix; audio
        items are new to the cache, so the next prediction may under-count cached tokens once).
        """
        items, config = self.server.items, self.server.config
        self._set_profile(profile, self.cache if keep_cache else None, None)
        self._new_server(config=config)
        for item in items:
            self.server.create_item(item)

    def _new_server(self, config: SessionConfig | None = None) -> None:
        # The mirror follows the server: the provider's maximum is the server's to enforce.
        unlimited = self.provider.model_copy(update={"max_session_seconds": math.inf})
        self.server = ServerModel(
            self.profile,
            unlimited,
            config=config,
            cache=self.cache,
            clock=self.clock,
            session_id=f"mirror-{self.index}",
            counter=self.counter,
        )
        if config is not None:
            return  # the same session, re-counted: the event bookkeeping stays
        self.output_format = "audio/pcm"
        self.pending: list[tuple[Item, str | None]] = []  # input items not yet in the model
        self.known: set[str] = set()
        self.speech: dict[str, dict[str, int]] = {}  # item id -> audio_start_ms/audio_end_ms
        self.audio_bytes: dict[str, int | None] = {}  # assistant item -> bytes (None: unknown)
        self.outputs: set[str] = set()
        self.responding = False

    # ------------------------------------------------------------------ reading

    @property
    def items(self) -> list[Item]:
        """The conversation as the next request will hold it (before truncation)."""
        return [*self.server.items, *(item for item, _ in self.pending)]

    def history_tokens(self) -> int:
        """Tokens of the conversation's items in the next request (before truncation)."""
        pending = self.counter.items([item for item, _ in self.pending]).total
        return self.server.retained_tokens().total + pending

    # ------------------------------------------------------------------ events

    def event_types(self) -> frozenset[str]:
        """The server event types this mirror reads (the others change nothing it holds)."""
        return _TYPES if self.audio_bytes_counted else _TYPES - _AUDIO_DELTAS

    def feed(self, event: Mapping[str, Any]) -> ResponseOutcome | None:
        """Apply one server event; a ``response.done`` gives its `ResponseOutcome`."""
        handler = _HANDLERS.get(str(event.get("type")))
        if handler is None:
            return None  # unknown or irrelevant types: newer servers still mirror
        outcome = handler(self, event)
        self._touched = True
        return outcome

    def configure(self, session: Mapping[str, Any]) -> None:
        """Apply a session object (``session.created``/``.updated``'s ``session``)."""
        self.session = {**self.session, **session}
        tools = session.get("tools")
        audio = (session.get("audio") or {}).get("output") or {}
        fmt = (audio.get("format") or {}).get("type")
        if isinstance(fmt, str):
            self.output_format = fmt
        instructions = session.get("instructions")
        self.server.update_session(
            instructions=instructions if isinstance(instructions, str) else None,
            tools=tools if isinstance(tools, list) else None,
            truncation=Truncation.from_realtime(session.get("truncation"))
            if "truncation" in session
            else None,
        )

    def _user_audio_ms(self, item_id: str) -> int | None:
        marks = self.speech.get(item_id, {})
        if "audio_start_ms" in marks and "audio_end_ms" in marks:
            return marks["audio_end_ms"] - marks["audio_start_ms"]
        return None

    def add_input(self, raw: Mapping[str, Any], previous: str | None) -> Item | None:
        """Add (or complete) an input item from its server form; returns the item, if modelled."""
        item_id = raw.get("id")
        if not isinstance(item_id, str) or item_id in self.outputs:
            return None
        waiting = [n for n, (item, _) in enumerate(self.pending) if item.id == item_id]
        if item_id in self.known and not waiting:
            return None  # already in the model; later changes arrive as their own events
        audio = any((p or {}).get("type") == "input_audio" for p in raw.get("content") or [])
        duration = self._user_audio_ms(item_id) if audio else None
        try:
            item = from_realtime_item(raw, audio_ms=duration if audio else None)
        except InputFormatError:
            return None  # an item type the model does not hold (MCP), or audio of unknown length
        if waiting:
            # `.done` after `.added`: the finished content (a transcript, say) replaces it.
            n = waiting[0]
            self.pending[n] = (item, self.pending[n][1])
            return item
        self.known.add(item_id)
        self.pending.append((item, previous))
        return item

    def flush(self) -> None:
        """Move the waiting input items into the model (a response is about to read them)."""
        for item, previous in self.pending:
            if previous is not None and previous not in self.known:
                previous = None
            try:
                self.server.create_item(item, previous_item_id=previous)
            except ServerModelError:
                self.server.create_item(item)
        self.pending.clear()

    def _outputs_of(self, response: Mapping[str, Any], usage: Usage) -> list[Item]:
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
                    duration = int(known / bytes_per_ms(self.output_format))
                else:
                    # No audio bytes seen: the reported output audio tokens give the length
                    # (split evenly when one response speaks several items).
                    ms = usage.output.audio * self.profile.audio_output_ms_per_token
                    duration = int(ms / len(audio_items))
            try:
                items.append(from_realtime_item(raw, audio_ms=duration))
            except InputFormatError:
                continue
            if isinstance(item_id, str):
                self.known.add(item_id)
        return items

    def response_done(self, response: Mapping[str, Any]) -> ResponseOutcome | None:
        """Run the model on a ``response.done``'s response; ``None`` for an out-of-band one."""
        self.flush()
        self.responding = False
        status = str(response.get("status") or "completed")
        observed = Usage.from_dict(response.get("usage") or {})
        if response.get("conversation_id", "") is None:
            return None  # out of band (conversation "none"): nothing joined the conversation
        outputs = self._outputs_of(response, observed)
        result = self.server.create_response(outputs)
        with_ids = tuple(
            replace(o, id=i) for o, i in zip(outputs, result.output_item_ids, strict=True)
        )
        response_id = response.get("id")
        return ResponseOutcome(
            session=self.index,
            response=result.index,
            response_id=response_id if isinstance(response_id, str) else None,
            status=status,
            predicted=result.usage,
            observed=observed,
            compared=status == "completed" and observed.input_tokens > 0,
            outputs=with_ids,
            dropped=result.dropped_items,
            items=result.retained_items,
        )


_Handler = Callable[[SessionMirror, Mapping[str, Any]], ResponseOutcome | None]


def _on_session_created(m: SessionMirror, event: Mapping[str, Any]) -> None:
    if m._touched:  # not the session a fresh mirror began with: a new one
        m.index += 1
        m._new_server()
    m.session = {}
    m.configure(event.get("session") or {})


def _on_session_updated(m: SessionMirror, event: Mapping[str, Any]) -> None:
    m.configure(event.get("session") or {})


def _on_speech(m: SessionMirror, event: Mapping[str, Any]) -> None:
    item_id = event.get("item_id")
    if isinstance(item_id, str):
        key = "audio_start_ms" if str(event.get("type")).endswith("started") else "audio_end_ms"
        m.speech.setdefault(item_id, {})[key] = int(event.get(key) or 0)


def _on_output_item(m: SessionMirror, event: Mapping[str, Any]) -> None:
    item = event.get("item") or {}
    if isinstance(item.get("id"), str):
        m.outputs.add(item["id"])


def _on_item(m: SessionMirror, event: Mapping[str, Any]) -> None:
    raw = event.get("item") or {}
    if raw.get("id") not in m.outputs:
        m.add_input(raw, event.get("previous_item_id"))


def _on_audio_delta(m: SessionMirror, event: Mapping[str, Any]) -> None:
    item_id = event.get("item_id")
    if isinstance(item_id, str) and m.audio_bytes_counted:
        size = _decoded_size(str(event.get("delta") or ""))
        before = m.audio_bytes.get(item_id, 0)
        m.audio_bytes[item_id] = None if size is None or before is None else before + size


def _on_response_created(m: SessionMirror, event: Mapping[str, Any]) -> None:
    m.flush()
    m.responding = True


def _on_deleted(m: SessionMirror, event: Mapping[str, Any]) -> None:
    item_id = event.get("item_id")
    if not isinstance(item_id, str) or item_id not in m.known:
        return
    waiting = [n for n, (item, _) in enumerate(m.pending) if item.id == item_id]
    if waiting:
        del m.pending[waiting[0]]
        return
    with contextlib.suppress(ServerModelError):  # already gone (truncated): nothing to mirror
        m.server.delete_item(item_id)


def _on_truncated(m: SessionMirror, event: Mapping[str, Any]) -> None:
    item_id, end = event.get("item_id"), event.get("audio_end_ms")
    if isinstance(item_id, str) and isinstance(end, int) and item_id in m.known:
        m.flush()
        try:
            m.server.truncate_item(item_id, end)
        except ServerModelError:
            m.notes.append(f"could not truncate {item_id} at {end} ms")


def _on_response_done(m: SessionMirror, event: Mapping[str, Any]) -> ResponseOutcome | None:
    return m.response_done(event.get("response") or {})


_HANDLERS: dict[str, _Handler] = {
    "session.created": _on_session_created,
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


_TYPES = frozenset(_HANDLERS)
_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
