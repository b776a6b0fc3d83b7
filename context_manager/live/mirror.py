"""`SessionMirror`: the one reader of a Realtime session's server events.

Fed every server event of a Realtime connection (live, or read back from a log), the mirror
keeps a `ServerModel` holding what the server holds, so the model predicts the next request's
tokens, what truncation will drop, what the cache will hit, and, at each ``response.done``, the
usage the server reports (`ResponseOutcome`: predicted beside observed, each priced once). It
says what changed as typed changes (`SessionBegan`, `ItemAdded`, `TranscriptArrived`,
`ItemDeleted`, `ResponseDone`, `ServerError`, `RateLimits`); the live engine reacts to those and
never reads an event itself, and the ``replay`` command reads the same changes, so a recording
and a live session are read by one rule.

The server's events are the truth: ``session.created``/``session.updated`` give instructions,
tools and truncation; ``conversation.item.added`` (or the beta ``.created``) adds an input item
where its ``previous_item_id`` says, and a later ``.done`` of the same item completes it (a
transcript arrives); ``conversation.item.deleted``/``.truncated`` change it; ``response.done``
gives the output items. Audio durations come from ``input_audio_buffer.speech_started``/
``speech_stopped`` (user audio), from what the client appended before a manual commit
(`SessionMirror.sent`), from the bytes of ``response.output_audio.delta`` at the session's
format (assistant audio) or, when no audio bytes were seen, from the response's reported
output audio tokens. Unknown event types are ignored (forward compatible).

The mirror never enforces the provider's session maximum: it follows the server, which decides.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..errors import ContextManagerError, ContextOverflowError, InputFormatError, ServerModelError
from ..items import Item, Message
from ..profiles import ModelProfile, ProviderProfile, get_provider_profile
from ..server import ManualClock, PromptCache, ServerModel, SessionConfig, Truncation, Usage
from ..server.request import ResponseParams
from ..tokens import TokenCounter
from ..wire import AUDIO_FORMATS, audio_ms_from_size, base64_size, item_from_wire
from .changes import (
    Change,
    Forecast,
    ItemAdded,
    TranscriptArrived,
    TranscriptionBilled,
)
from .handlers import HANDLERS, NO_DELTAS, NOTHING, transcript_of
from .records import ResponseOutcome, outcome_of, read_usage, reported_status
from .requests import ResponseRequests

__all__ = ["FOLLOWING_ERRORS", "UNFINISHED", "SessionMirror"]

UNFINISHED = "unfinished"
"""The status of a response that never got its ``response.done`` (`SessionMirror.abandon`)."""


_MAX_NOTES = 200
# What reading a server event may raise when the stream is malformed or out of order.
FOLLOWING_ERRORS = (ContextManagerError, KeyError, TypeError, ValueError, AttributeError)


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
        """What the model could not follow (a truncation it cannot place, say): the newest."""
        self.notes_total = 0
        """How many notes were taken in all."""
        self._touched = False
        self._handlers = HANDLERS if audio_bytes else NO_DELTAS
        self.handled = frozenset(self._handlers)
        """The event types `feed` reads: any other changes nothing."""
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

        With `keep_cache` the prompt cache stays, and every item keeps its cached prefix (an
        audio item's cache key is its id, not its count).
        """
        items, config = self.server.items, self.server.config
        self._set_profile(profile, self.cache if keep_cache else None, None)
        self._new_server(config=config)
        self._pending_tokens: int | None = None
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
        self.input_format = "audio/pcm"
        self._pending: list[tuple[Item, str | None]] = []  # input items not yet in the model
        self._pending_tokens = 0  # their tokens (None: to count again)
        self._known: set[str] = set()
        self._speech: dict[str, dict[str, int]] = {}  # item id -> audio_start_ms/audio_end_ms
        self._audio_bytes: dict[str, int | None] = {}  # assistant item -> bytes (None: unknown)
        self._outputs: set[str] = set()
        self._reported: set[str] = set()  # outputs a response.done has put in the model
        self._created: set[str] = set()  # ids of the items the client created
        self._buffered: int | None = 0  # bytes appended since the last commit or clear
        self.incomplete = False
        """An input item of this session is left out of the model (audio of unknown length):
        the predictions from then on lack it, so they are not compared."""
        self.requests = ResponseRequests()
        """The client's ``response.create`` parameters, paired with the responses."""
        self.running: str | None = None
        """The id of the response in progress (``response.created`` seen, no ``.done``)."""
        self.made: dict[str, Mapping[str, Any]] = {}
        """The output items seen of the response in progress (for one that never ends)."""
        self.in_progress: set[str] = set()
        """Ids of the responses running (``response.created`` seen, ``response.done`` not yet)."""
        self.speaking = False
        """The user is speaking (``speech_started`` seen, not yet stopped or committed)."""
        self.transcribing: set[str] = set()
        """User audio items whose input transcription has not finished (nor failed)."""
        self.awaiting = False
        """A response is on its way: asked for (``response.create``) or started by a voice
        activity commit, and its ``response.created`` not seen yet."""

    # ------------------------------------------------------------------ reading

    @property
    def responding(self) -> bool:
        """A response is running, in the conversation or out of band."""
        return bool(self.in_progress)

    @property
    def items(self) -> list[Item]:
        """The conversation as the next request will hold it (before truncation)."""
        return [*self.server.items, *(item for item, _ in self._pending)]

    @property
    def history_limit(self) -> int:
        """The most history tokens a request may hold before truncation."""
        return self.server.history_limit

    def history_tokens(self) -> int:
        """Tokens of the conversation's items in the next request (before truncation)."""
        if self._pending_tokens is None:
            self._pending_tokens = self.counter.items([i for i, _ in self._pending]).total
        return self.server.retained_tokens().total + self._pending_tokens

    def forecast(self) -> Forecast:
        """What the next response would drop, or whether it would fail."""
        tokens, limit = self.history_tokens(), self.server.history_limit
        try:
            drops = self.server.preview_truncation([item for item, _ in self._pending])
        except ContextOverflowError:
            return Forecast(tokens, limit, (), True)
        return Forecast(tokens, limit, drops, False)

    def is_output(self, item_id: str) -> bool:
        """Whether `item_id` is an item a response of this session produced."""
        return item_id in self._outputs

    # ------------------------------------------------------------------ events

    def feed(self, event: Mapping[str, Any]) -> tuple[Change, ...]:
        """Apply one server event; returns what it changed (most events change nothing)."""
        kind = event.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return NOTHING  # deltas, unknown or irrelevant types: newer servers still mirror
        try:
            changes = handler(self, event)
        except FOLLOWING_ERRORS as exc:
            # A malformed field, a duplicate or reordered event, an id the model never saw:
            # the server is the truth and the model follows what it can. A note, not a crash.
            self.note(f"{kind}: could not follow ({type(exc).__name__})")
            changes = NOTHING
        self._touched = True
        return changes

    def note(self, text: str) -> None:
        """Keep a note of what the model could not follow (the newest 200; no text of the call)."""
        self.notes_total += 1
        if len(self.notes) >= _MAX_NOTES:
            del self.notes[0]
        self.notes.append(text)

    def sent(self, event: Mapping[str, Any]) -> None:
        """Note a client event: audio appended or cleared by hand (push-to-talk)."""
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            audio = event.get("audio")
            size = base64_size(audio) if isinstance(audio, str) else None
            if size is None or self._buffered is None:
                self._buffered = None  # a placeholder (a log without the bytes): unknown
            else:
                self._buffered += size
        elif kind == "input_audio_buffer.clear":
            self._buffered = 0
        elif kind == "response.create":
            self.awaiting = True
            for text in self.requests.asked(event, self.input_format):
                self.note(text)
        elif kind == "conversation.item.create":
            # The server echoes a created audio item without its bytes: keep its length now.
            item = event.get("item")
            item_id = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(item, Mapping) and isinstance(item_id, str):
                self._created.add(item_id)
                size = _audio_size(item)
                if size:
                    ms = audio_ms_from_size(size, self.input_format)
                    self._speech[item_id] = {"audio_start_ms": 0, "audio_end_ms": ms}

    def configure(self, session: Mapping[str, Any]) -> None:
        """Apply a session object (``session.created``/``.updated``'s ``session``)."""
        self.session = {**self.session, **session}
        tools = session.get("tools")
        audio = session.get("audio") or {}
        for side in ("input", "output"):
            fmt = ((audio.get(side) or {}).get("format") or {}).get("type")
            if isinstance(fmt, str) and fmt in AUDIO_FORMATS:  # an unknown one keeps the last
                setattr(self, f"{side}_format", fmt)
        instructions = session.get("instructions")
        self.server.update_session(
            instructions=instructions if isinstance(instructions, str) else None,
            tools=tools if isinstance(tools, list) else None,
            truncation=Truncation.from_realtime(session.get("truncation"))
            if "truncation" in session
            else None,
        )

    def _user_audio_ms(self, item_id: str) -> int | None:
        marks = self._speech.get(item_id, {})
        if "audio_start_ms" in marks and "audio_end_ms" in marks:
            return marks["audio_end_ms"] - marks["audio_start_ms"]
        return None

    def transcription_config(self) -> Mapping[str, Any] | None:
        """The session's input transcription settings (``None``: off).

        GA sessions keep them in ``audio.input.transcription``; the beta shape (Azure Voice
        Live) in ``input_audio_transcription``.
        """
        config = ((self.session.get("audio") or {}).get("input") or {}).get("transcription")
        if not isinstance(config, Mapping):
            config = self.session.get("input_audio_transcription")
        return config if isinstance(config, Mapping) else None

    def transcription_billed(self, item_id: str, usage: object) -> tuple[Change, ...]:
        """What a finished input transcription costs, at the provider's price per minute."""
        config = self.transcription_config()
        model = config.get("model") if config is not None else None
        if not isinstance(model, str):
            model = "unknown"
        seconds = usage.get("seconds") if isinstance(usage, Mapping) else None
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            marks = self._speech.get(item_id, {})  # billed by tokens: the item's own length
            seconds = (marks.get("audio_end_ms", 0) - marks.get("audio_start_ms", 0)) / 1000
        per_minute = self.provider.transcription_usd_per_minute.get(model)
        if per_minute is None:
            self.note(f"transcription: no price for model {model!r}; counted as free")
            per_minute = 0.0
        return (TranscriptionBilled(item_id, model, float(seconds), seconds / 60 * per_minute),)

    def add_input(self, raw: Mapping[str, Any], previous: str | None) -> tuple[Change, ...]:
        """Add (or complete) an input item from its server form."""
        item_id = raw.get("id")
        if not isinstance(item_id, str) or item_id in self._outputs:
            return NOTHING
        if self.running is not None and item_id not in self._created and _is_output(raw):
            # Made by the response in progress (a log without ``output_item.added``): its
            # ``response.done`` brings it.
            self._outputs.add(item_id)
            self.made[item_id] = raw
            return NOTHING
        waiting = next((n for n, (i, _) in enumerate(self._pending) if i.id == item_id), None)
        if item_id in self._known and waiting is None:
            return transcript_of(item_id, raw)  # in the model already: only words can arrive
        audio = any((p or {}).get("type") == "input_audio" for p in raw.get("content") or [])
        duration = self._user_audio_ms(item_id) if audio else None
        try:
            item = item_from_wire(raw, audio_ms=duration, audio_format=self.input_format)
        except InputFormatError:
            if waiting is not None:
                return NOTHING
            # An item type the model does not hold (MCP), or audio of unknown length: the
            # latter is still the call's, with no duration.
            try:
                unplaced = item_from_wire(raw, audio_ms=0, audio_format=self.input_format)
            except InputFormatError:
                return NOTHING
            self._known.add(item_id)
            if audio:
                self.incomplete = True
            return (ItemAdded(unplaced, modelled=False),)
        if waiting is not None:
            # `.done` after `.added`: the finished content (a transcript, say) replaces it.
            before = self._pending[waiting][0]
            self._pending[waiting] = (item, self._pending[waiting][1])
            if item != before:
                self._recount(before, item)
            if isinstance(item, Message) and item != before and item.text:
                return (TranscriptArrived(item_id, item.text),)
            return NOTHING
        self._known.add(item_id)
        self._pending.append((item, previous))
        self._recount(None, item)
        return (ItemAdded(item),)

    def _recount(self, before: Item | None, after: Item) -> None:
        """Keep the waiting items' tokens as one of them changes, not counting all again."""
        if self._pending_tokens is None:
            return
        # Only assistant audio looks at the other items (the latest keeps its audio): with
        # it all are counted again; any other item counts in full wherever it stands.
        added = self.counter.item(after)
        removed = self.counter.item(before) if before is not None else None
        if added.is_assistant_audio or (removed is not None and removed.is_assistant_audio):
            self._pending_tokens = None
            return
        self._pending_tokens += added.text + added.audio + added.image
        if removed is not None:
            self._pending_tokens -= removed.text + removed.audio + removed.image

    def flush(self) -> None:
        """Move the waiting input items into the model (a response is about to read them)."""
        if not self._pending:
            return
        for item, previous in self._pending:
            # The echo's ``previous_item_id`` is the item now before it: null means first (an
            # insert at "root", as a summary is); an id the model does not hold (or none
            # given), the end.
            where = "root" if previous is None else previous if previous in self._known else None
            try:
                self.server.create_item(item, previous_item_id=where)
            except ServerModelError:
                self.server.create_item(item)
        self._pending.clear()
        self._pending_tokens = 0

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
                known = self._audio_bytes.get(item_id) if isinstance(item_id, str) else None
                if known is not None:
                    duration = audio_ms_from_size(known, self.output_format)
                else:
                    # No audio bytes seen: the reported output audio tokens give the length
                    # (split evenly when one response speaks several items).
                    ms = usage.output.audio * self.profile.audio_output_ms_per_token
                    duration = int(ms / len(audio_items))
            try:
                items.append(item_from_wire(raw, audio_ms=duration))
            except InputFormatError:
                continue
            if isinstance(item_id, str):
                self._known.add(item_id)
                self._reported.add(item_id)
        return items

    def _claim_outputs(self, response: Mapping[str, Any]) -> None:
        """Take back output items read as inputs (a log without ``output_item.added``)."""
        for raw in response.get("output") or []:
            item_id = raw.get("id") if isinstance(raw, Mapping) else None
            if not isinstance(item_id, str):
                continue
            self._outputs.add(item_id)
            if item_id not in self._known or item_id in self._reported:
                continue
            self._known.discard(item_id)
            waiting = [n for n, (i, _) in enumerate(self._pending) if i.id == item_id]
            if waiting:
                del self._pending[waiting[0]]
                self._pending_tokens = None
            else:
                with contextlib.suppress(ServerModelError):
                    self.server.delete_item(item_id)

    def abandon(self) -> ResponseOutcome | None:
        """End the response in progress that never got its ``response.done`` (a drop).

        Its request is predicted from the conversation with the outputs seen so far; the
        observed usage is unknown (zero), status ``unfinished``, not compared.
        """
        if self.running is None:
            return None
        self.note("a response ended with no response.done (a dropped connection?)")
        response = {"id": self.running, "status": UNFINISHED, "output": list(self.made.values())}
        return self.response_done(response)

    def response_done(self, response: Mapping[str, Any]) -> ResponseOutcome:
        """Run the model on a ``response.done``'s response and compare it with the report."""
        self.in_progress.discard(str(response.get("id")))
        if response.get("id") == self.running or response.get("conversation_id", "") is not None:
            self.running = None
            self.made = {}
        observed, readable = read_usage(response)
        if not readable:
            self.note("response.done: usage unreadable, counted as zero")

        def outcome(**figures: Any) -> ResponseOutcome:
            # One record a response, built once with the model's figures (unpredicted without).
            return outcome_of(
                response,
                session=self.index,
                prices=self.profile.prices_per_million,
                observed=observed,
                **figures,
            )

        params = self.requests.done(response.get("id"))
        in_band = response.get("conversation_id", "") is not None
        if not in_band and params is None:
            # Its response.create is not in sight (a log of server events only): the best
            # guess is the documented default, the whole conversation.
            self.note("response.done: an out-of-band response without its request")
            params = ResponseParams(in_band=False)
        elif params is not None and params.in_band != in_band:
            self.note("response.done: paired with a request of the other conversation")
            params = ResponseParams(in_band=in_band)
        try:
            self._claim_outputs(response)
            self.flush()
            outputs = self._outputs_of(response, observed)
            result = self.server.create_response(outputs, params)
        except FOLLOWING_ERRORS as exc:
            why = exc.code if isinstance(exc, ServerModelError) else type(exc).__name__
            self.note(f"response.done: could not follow ({why})")
            # Paid for whatever the model made of it: the usage is kept, unpredicted.
            number = self.server.responses_created if in_band else -1
            return outcome(response=number, in_band=in_band)
        compared = (
            result.ok
            and reported_status(response) == "completed"
            and observed.input_tokens > 0
            and not self.incomplete
        )
        modelled = {
            "in_band": in_band,
            "modelled": result.ok,
            "predicted": result.usage,
            "predicted_cost": result.cost,
            "compared": compared,
            "items": result.retained_items,
        }
        if not in_band:  # its outputs joined nothing
            return outcome(**modelled)
        if not result.ok:
            # The model predicted an overflow the server did not have (the server answered):
            # follow the server, whose outputs joined its conversation.
            self.note("response.done: the model predicted an overflow the server did not have")
            for item in outputs:
                with contextlib.suppress(ServerModelError):
                    self.server.create_item(item)
            with_ids = tuple(outputs)
        else:
            # An output read with its server id keeps it: copied only when it had none.
            with_ids = tuple(
                o if o.id == i else replace(o, id=i)
                for o, i in zip(outputs, result.output_item_ids, strict=True)
            )
        return outcome(
            **modelled, response=result.index, outputs=with_ids, dropped=result.dropped_items
        )


def _is_output(raw: Mapping[str, Any]) -> bool:
    """What only a response makes: an assistant message or a function call."""
    return raw.get("type") == "function_call" or raw.get("role") == "assistant"


def _audio_size(item: Mapping[str, Any]) -> int:
    """Bytes of the input audio an item create carries."""
    total = 0
    for part in item.get("content") or []:
        audio = part.get("audio") if isinstance(part, Mapping) else None
        if isinstance(audio, str):
            total += base64_size(audio) or 0
    return total
