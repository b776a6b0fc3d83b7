"""`ContextEngine`: the live session loop's context manager, events in and events out.

Feed it every server event of a Realtime connection (`ContextEngine.feed`) and every client
event the application sends (`ContextEngine.sent`). It keeps a **mirror** of the server's
conversation (`SessionMirror`, the one reader of server events), so it knows the live budget
and predicts truncation (`ContextEngine.forecast`); the **history** of the whole call under
stable keys (`ContextEngine.history`); the user's own **audio** of recent turns
(`AudioKeeper`), for seeds when nobody transcribed them; **calibration** of the per-item
overhead from observed usage; **compaction** plans, returned from `feed` as client events at
safe points; and **rollover**: before the provider's maximum, at a safe point,
`ContextEngine.rollover_due` turns true and `ContextEngine.plan_rollover` gives the new
session's ``session.update`` and seed.

What must be persisted comes out as records (`ContextEngine.take_records`), which the openai
adapter (`context_manager.realtime`) writes to a store (`context_manager.store.recorder`).
The engine does no I/O and reads time only from its clock.

>>> from context_manager.server import ManualClock
>>> clock = ManualClock()
>>> engine = ContextEngine("gpt-realtime", "azure", clock=clock)
>>> _ = engine.feed({"type": "session.created", "session": {"instructions": "Be brief."}})
>>> _ = engine.feed({"type": "conversation.item.added", "item": {"id": "u1", "type": "message",
...     "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}})
>>> engine.budget.history_tokens
6
>>> clock.advance(1700.0)
1700.0
>>> engine.rollover_due  # 100 s before Azure's 30 minutes, but no response has ended yet
False
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..budget import BudgetBreakdown
from ..compaction.plan import CompactionPlan
from ..compaction.strategies import CompactionStrategy
from ..errors import ConfigurationError
from ..items import FunctionCall, Item, Message
from ..profiles import ModelProfile, ProviderProfile, get_model_profile, get_provider_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPlan, RolloverPolicy, SeedDraft
from ..server import Truncation
from ..wire import as_event
from .audio import AudioKeeper
from .calibration import Calibration, OverheadFit
from .changes import (
    AudioCommitted,
    Change,
    Forecast,
    ItemAdded,
    ItemDeleted,
    RateLimits,
    ResponseDone,
    ServerError,
    SessionBegan,
    SessionChanged,
    TranscriptArrived,
    TranscriptionBilled,
)
from .compacting import CompactionSteps
from .confirm import PendingCompaction
from .history import CallHistory, sent_item
from .jobs import CompactionJob
from .mirror import FOLLOWING_ERRORS, SessionMirror
from .records import (
    Compacted,
    ItemChanged,
    ItemStored,
    ItemsTruncated,
    Record,
    ResponseOutcome,
    SeedLinked,
    SessionEnded,
    SessionStarted,
    TranscriptionUsage,
    TurnsNotCarried,
    unpredicted,
)
from .seeding import name_seed, session_update

__all__ = ["ContextEngine"]

log = logging.getLogger(__name__)


class ContextEngine(CompactionSteps):
    """The context of one call, kept live from its Realtime events.

    Args:
        profile: the model profile (or a built-in name).
        provider: the provider profile (or name): its maximum session length sets rollover.
        compaction: the strategy whose plans `feed` returns (``None``: the engine never compacts).
        rollover: what a new session is seeded with (`DEFAULT_ROLLOVER` unless told;
            ``None``: the engine never rolls over, and an expired session is seeded with
            the default).
        rollover_margin_seconds: roll over this long before the provider's maximum.
        truncation: the truncation the engine wants; when the server's differs, `feed` returns
            the ``session.update`` that sets it (``None``: keep the application's).
        calibrate: refit the per-item overhead from observed usage.
        clock: seconds (``time.monotonic`` by default; a `ManualClock` in tests).
        keep_user_audio_seconds: the user's own audio kept (`AudioKeeper`, 2.88 MB a minute
            of PCM16), so a seed re-sends turns nobody transcribed (0: none).
        transcription: an input transcription model (``gpt-4o-mini-transcribe``, say) the
            engine switches on in every session that has transcription off (the API's
            default); its price per minute is the provider profile's.
    """

    def __init__(
        self,
        profile: ModelProfile | str = "gpt-realtime",
        provider: ProviderProfile | str = "openai",
        *,
        compaction: CompactionStrategy | None = None,
        rollover: RolloverPolicy | None = DEFAULT_ROLLOVER,
        rollover_margin_seconds: float = 120.0,
        truncation: Truncation | None = None,
        calibrate: bool = True,
        clock: Callable[[], float] | None = None,
        keep_user_audio_seconds: float = 120.0,
        transcription: str | None = None,
    ) -> None:
        self.profile = get_model_profile(profile) if isinstance(profile, str) else profile
        self.provider = get_provider_profile(provider) if isinstance(provider, str) else provider
        if not 0 <= rollover_margin_seconds < self.provider.max_session_seconds:
            raise ConfigurationError(
                f"rollover margin must be in [0, {self.provider.max_session_seconds:g}) s for"
                f" {self.provider.name}, got {rollover_margin_seconds:g}"
            )
        self.compaction = compaction
        self.rollover = rollover if rollover is not None else DEFAULT_ROLLOVER
        self.rolls_over = rollover is not None
        self.margin = rollover_margin_seconds
        self.truncation = truncation
        self.calibrate = calibrate
        self.clock: Callable[[], float] = clock if clock is not None else time.monotonic
        # Assistant audio is measured from the reported output tokens: the audio deltas, most
        # of a call's events, then pass by in O(1).
        self.mirror = SessionMirror(
            self.profile, self.provider, clock=self.clock, audio_bytes=False
        )
        self._handled = self.mirror.handled
        self._fit = OverheadFit(self.profile.item_overhead_tokens)
        self.audio = AudioKeeper(keep_user_audio_seconds)
        self.transcription = transcription
        """The user's audio of recent turns, by history key."""
        self.history = CallHistory()
        """Every item of the call once, oldest first, under stable keys."""
        self.session_index = -1
        self.started_at: float | None = None
        self.total_cost_usd = 0.0
        """What the call cost: its responses (out-of-band ones included) as the server reported
        their usage, and input transcription (`transcription_cost_usd`)."""
        self.transcription_cost_usd = 0.0
        """What input transcription cost, at the provider profile's price per minute."""
        self.responses = 0
        """Responses the server reported (``response.done``), in band or not."""
        self.compactions = 0
        """Compactions the server confirmed."""
        self.errors: list[dict[str, Any]] = []
        self.rate_limits: list[dict[str, Any]] = []
        self.expired = False
        """The server said ``session_expired``: the session is over."""
        self._records: list[Record] = []
        self._pending = PendingCompaction()
        self._last_response_at: float | None = None
        self._warned = False
        self.offload = False
        """Hand compaction planning out as jobs (`take_compaction_job`), not inside `feed`.

        The realtime adapter sets it, so no summarizer runs on the event loop."""
        self.uncarried_turns = 0
        """User turns with no transcript that new sessions' seeds could not carry (each
        session counts its own)."""
        self.compaction_failures = 0
        """Plannings whose strategy and fallback both failed (nothing was compacted then)."""
        self._job: CompactionJob | None = None
        self._ready: tuple[CompactionPlan, int] | None = None
        self._config: dict[str, Any] = {}  # the session settings the application chose

    # ------------------------------------------------------------------ reading

    @property
    def summary(self) -> str | None:
        """The newest summary of compacted history."""
        return self.history.summary

    @property
    def budget(self) -> BudgetBreakdown:
        """The live window: reserve, instructions, tools, history, free."""
        return replace(self.mirror.server.budget, history_tokens=self.mirror.history_tokens())

    def forecast(self) -> Forecast:
        """What the next response would drop, or whether it would fail."""
        return self.mirror.forecast()

    @property
    def calibration(self) -> Calibration:
        """The prediction error so far and the overhead in use."""
        return self._fit.view(self.mirror.profile.item_overhead_tokens)

    def conversation(self) -> list[Item]:
        """The call as the client remembers it: history not compacted, stable keys as ids."""
        return self.history.conversation()

    def take_records(self) -> list[Record]:
        """The records produced since the last call (then forgotten)."""
        records, self._records = self._records, []
        return records

    @property
    def session_age(self) -> float:
        """Seconds since the current session began (0 before the first)."""
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    @property
    def pending_calls(self) -> tuple[str, ...]:
        """Call ids of function calls still waiting for their output."""
        return self.history.pending_calls

    @property
    def rollover_due(self) -> bool:
        """Time to roll over: past the provider's maximum less the margin, at a safe point.

        Within a quarter of the margin of the cut the engine stops waiting for a safe point
        (the session ends anyway; pending calls are carried over).
        """
        if not self.rolls_over or self.started_at is None or self._last_response_at is None:
            return False
        left = self.provider.max_session_seconds - self.session_age
        if left <= self.margin / 4:
            return True
        return left <= self.margin and self.safe

    # ------------------------------------------------------------------ events

    def sent(self, event: Mapping[str, Any] | Any) -> None:
        """Note a client event the application sent (audio it buffered, mostly).

        Raises:
            InputFormatError: `event` is neither a dict nor an ``openai`` SDK event.
        """
        event = as_event(event)
        self.mirror.sent(event)
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            self.audio.appended(event.get("audio"))
        elif kind == "input_audio_buffer.clear":
            self.audio.cleared()
        if kind != "conversation.item.create":
            return
        raw = event.get("item")
        client_id = raw.get("id") if isinstance(raw, Mapping) else None
        if not isinstance(raw, Mapping) or not isinstance(client_id, str):
            return  # without an id the item is the server's to name: stored when it echoes
        if client_id in self._pending.created or self.history.is_seed(client_id):
            return  # the engine's own compaction or seed, not the application's
        item = sent_item(raw, self.mirror.input_format)
        if item is None:
            return  # an item type this library does not hold (MCP)
        # Stored at once (the adapter writes it before it goes out): a drop or a crash before
        # the server acknowledges it loses nothing.
        key = self.history.sent(item, client_id)
        if key is not None:
            self._records.append(ItemStored(key, item, self.session_index))

    def feed(self, event: Mapping[str, Any] | Any) -> list[dict[str, Any]]:
        """Apply one server event; returns the client events the engine wants sent.

        The event is a dict as it arrives on the socket, or the ``openai`` SDK's event model.

        Raises:
            InputFormatError: `event` is neither.
        """
        if type(event) is dict:
            # Most events of a call (deltas) are read by nobody: one look-up and they pass.
            kind = event.get("type")
            if type(kind) is str and kind not in self._handled:
                return []
            changes = self.mirror.feed(event)
        else:
            changes = self.mirror.feed(as_event(event))
        if not changes:
            return []  # deltas and the like: nothing to keep (most events of a call)
        out: list[dict[str, Any]] = []
        for change in changes:
            try:
                out.extend(self._react(change))
            except FOLLOWING_ERRORS as exc:  # an impossible sequence: a note, never a crash
                name = type(change).__name__
                self.mirror.note(f"{name}: the engine could not follow ({type(exc).__name__})")
        return out

    @property
    def notes(self) -> list[str]:
        """What the model could not follow (malformed, duplicated or reordered events).

        The newest, last; `SessionMirror.notes_total` counts them all.
        """
        return self.mirror.notes

    def _react(self, change: Change) -> list[dict[str, Any]]:
        if isinstance(change, ItemAdded):
            return self._item_added(change)
        if isinstance(change, TranscriptArrived):
            self._transcript(change)
        elif isinstance(change, ResponseDone):
            return self._response_done(change.outcome)
        elif isinstance(change, ItemDeleted):
            self._confirm(change.item_id)
        elif isinstance(change, SessionBegan):
            return self._session_began(change)
        elif isinstance(change, SessionChanged):
            self._config = {**self._config, **change.session}
            self.audio.set_format(self.mirror.input_format)
            return self._wanted_truncation(change.session) + self._wanted_transcription(
                change.session
            )
        elif isinstance(change, ServerError):
            self._error(dict(change.error))
        elif isinstance(change, RateLimits):
            self.rate_limits = [dict(r) for r in change.limits]
        elif isinstance(change, AudioCommitted):
            self.audio.committed(change.item_id, change.start_ms, change.end_ms)
        elif isinstance(change, TranscriptionBilled):
            self.transcription_cost_usd += change.cost_usd
            self.total_cost_usd += change.cost_usd
            self._records.append(TranscriptionUsage(self.session_index, change))
        return []

    def _session_began(self, change: SessionBegan) -> list[dict[str, Any]]:
        if self.session_index >= 0 and not self.expired:
            self._records.append(SessionEnded(self.session_index, "rollover"))
        self.session_index += 1
        self.started_at = self.clock()
        self._last_response_at = None
        self.expired = False
        self.history.new_session()
        self.audio.new_session(self.mirror.input_format)
        self._pending = PendingCompaction()
        self._job = self._ready = None
        session = change.session
        if self.session_index == 0:
            self._config = dict(session)  # later sessions start with defaults, not the app's
        sid, model = session.get("id"), session.get("model")
        self._records.append(
            SessionStarted(
                self.session_index,
                sid if isinstance(sid, str) else None,
                model if isinstance(model, str) else None,
            )
        )
        return self._wanted_truncation(session) + self._wanted_transcription(session)

    def _wanted_transcription(self, session: Mapping[str, Any]) -> list[dict[str, Any]]:
        # Only a session that says transcription is off (null) is switched on: the
        # application's own choice of a model stays.
        audio_in = (session.get("audio") or {}).get("input") or {}
        if self.transcription is None or audio_in.get("transcription", False) is not None:
            return []
        wanted = {"transcription": {"model": self.transcription}}
        return [{"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": wanted}}}]  # fmt: skip

    def _wanted_truncation(self, session: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.truncation is None or "truncation" not in session:
            return []
        if Truncation.from_realtime(session.get("truncation")) == self.truncation:
            return []
        update = {"type": "realtime", "truncation": self.truncation.to_realtime()}
        return [{"type": "session.update", "session": update}]

    def _item_added(self, change: ItemAdded) -> list[dict[str, Any]]:
        item = change.item
        item_id = item.id
        assert item_id is not None  # the mirror adds items by their server id
        replaced = self._pending.replaces.get(item_id)
        if replaced is not None and (key := self.history.key_of(replaced)) is not None:
            self.history.link(item_id, key)  # the same item of the call, in another form
        if item_id in self._pending.created:
            self._confirm(item_id)
            return []
        if self.history.is_seed(item_id):
            return []
        key = self.history.key_of(item_id)
        if key is None:
            self._add(item, item_id)
        elif item != self.history.entry(key).item:
            self._change(key, item)
        return self._warn()

    def _add(self, item: Item, item_id: str) -> str:
        key = self.history.add(item, item_id)
        self.audio.rename(item_id, key)
        self._records.append(ItemStored(key, item, self.session_index))
        return key

    def _change(self, key: str, item: Item) -> None:
        self.history.entry(key).item = item
        self._records.append(ItemChanged(key, item))

    def _transcript(self, change: TranscriptArrived) -> None:
        key = self.history.key_of(change.item_id)
        if key is None or self.history.is_seed(change.item_id):
            return
        item = self.history.entry(key).item
        if isinstance(item, Message) and item.text != change.text:
            self._change(key, replace(item, text=change.text))

    def _error(self, error: dict[str, Any]) -> None:
        self.errors.append(error)
        if error.get("code") == "session_expired":
            self.expired = True
            self._records.append(SessionEnded(self.session_index, "expired"))
        elif self._pending.waiting:
            # A planned create or delete was refused: give the plan up, keep the history.
            log.warning("compaction step refused by the server: %s", error.get("code"))
            self._pending = PendingCompaction()

    # ------------------------------------------------------------------ responses

    def _response_done(self, outcome: ResponseOutcome) -> list[dict[str, Any]]:
        self.responses += 1
        self.total_cost_usd += outcome.observed_cost.total
        if not outcome.in_band:
            self._records.append(outcome)
            return []
        self._last_response_at = self.clock()
        for item in outcome.outputs:
            if item.id is not None and self.history.key_of(item.id) is None:
                self._add(item, item.id)
        dropped = (self.history.key_of(i) for i in outcome.dropped)
        kept = tuple(k for k in dropped if k is not None)
        if kept:
            self.history.mark(kept, "truncated")
            self._records.append(ItemsTruncated(kept))
        self._records.append(outcome)
        if outcome.compared:
            self._calibrate(outcome)
        self._warned = False
        return self._compact()

    def _calibrate(self, outcome: ResponseOutcome) -> None:
        current = self.mirror.profile.item_overhead_tokens
        self._fit.add(outcome, current)
        best = self._fit.overhead() if self.calibrate else None
        if best is not None and best != current:
            log.info("calibration: item overhead %d -> %d tokens", current, best)
            self.mirror.use_profile(
                self.mirror.profile.model_copy(update={"item_overhead_tokens": best}),
                keep_cache=True,
            )

    def _warn(self) -> list[dict[str, Any]]:
        if self._warned or self.mirror.history_tokens() <= self.mirror.history_limit:
            return []
        forecast = self.forecast()
        if forecast.drops or forecast.overflow:
            self._warned = True
            log.warning(
                "the next response will %s (%d of %d history tokens)",
                "overflow" if forecast.overflow else f"truncate {len(forecast.drops)} items",
                forecast.history_tokens,
                forecast.history_limit,
            )
        return []

    # ------------------------------------------------------------------ rollover

    def session_update(self) -> dict[str, Any]:
        """The ``session.update`` that configures a new session as the current one."""
        return session_update(self._config, self.truncation)

    def plan_rollover(
        self,
        reason: str = "rollover",
        *,
        history: Sequence[Item] | None = None,
        summary: str | None = None,
        resent: Collection[str] = (),
        seed: SeedDraft | None = None,
    ) -> RolloverPlan:
        """Plan the next session: its ``session.update`` and its seed.

        The seed is the policy's draft of the engine's history, or of `history` and `summary`
        (a store's `load`), then any function call still waiting for its output.

        `resent` names items the application sent that the old session never acknowledged
        (their client ids): the caller re-sends them as they are, so the seed leaves them out.
        `seed` is the policy's draft of `rollover_source`'s history, when the caller made it
        elsewhere (the adapter does, in a worker thread: a summary of a long call takes time).
        User turns the seed cannot carry are logged (and recorded by `seeded`).
        """
        history, summary = self.rollover_source(history=history, summary=summary, resent=resent)
        if seed is None:
            seed = self.rollover.draft(history, self.counter, summary, self.audio.snapshot())
        items = list(seed.items)
        carried = {i.call_id for i in items if isinstance(i, FunctionCall)}
        for key, call in self.history.waiting_calls():
            if call.call_id not in carried:
                items.append(replace(call, id=key))
        named, seeded = name_seed(items, history, self.session_index + 1, seed.origins)
        self.history.seed(seeded)
        audio = {str(named[n].id): a.b64() for n, a in seed.audio.items()}
        if seed.uncarried:
            log.warning("%d untranscribed user turns not carried", len(seed.uncarried))
        tokens = self.counter.items(named).total
        return RolloverPlan(reason, self.session_update(), tuple(named), tokens, audio,
                            tuple(seed.uncarried), seed.heard)  # fmt: skip

    def rollover_source(
        self,
        *,
        history: Sequence[Item] | None = None,
        summary: str | None = None,
        resent: Collection[str] = (),
    ) -> tuple[list[Item], str | None]:
        """What a new session's seed is made from (`CallHistory.source`).

        ``self.rollover.seed`` of the result touches no engine state: it may run in a thread.
        """
        return self.history.source(history, summary, resent)

    def seeded(self, plan: RolloverPlan) -> None:
        """Record that `plan`'s seed was sent into the current session (links for the store)."""
        self._records.append(SeedLinked(self.session_index, self.history.seeded()))
        if plan.summarized:
            # The model's summary heard these turns: it stands for them from now on, so a
            # later seed (after a drop, say) carries it rather than their unheard copies.
            summary = next(i for i in plan.seed if isinstance(i, Message) and i.role == "system")
            self.history.mark(plan.summarized, "compacted")
            self.history.summary = summary.text
            tokens = self.mirror.history_tokens()
            self._records.append(Compacted(plan.summarized, summary.text, "rollover-summary",
                                           self.session_index, tokens, tokens))  # fmt: skip
        if plan.uncarried:
            self.uncarried_turns += len(plan.uncarried)
            self._records.append(TurnsNotCarried(self.session_index, plan.uncarried))

    def late_response(self, response: Mapping[str, Any]) -> None:
        """A response the previous session finished after a switch: its usage still counts.

        Recorded out of band (no longer the conversation's), tagged ``context_manager: late``.
        """
        outcome, _ = unpredicted(
            response, session=self.session_index - 1, prices=self.profile.prices_per_million
        )
        tags = {**(outcome.metadata or {}), "context_manager": "late"}
        self.responses += 1
        self.total_cost_usd += outcome.observed_cost.total
        self._records.append(replace(outcome, metadata=tags))

    def disconnected(self) -> None:
        """The connection dropped without the server ending the session."""
        self._end("disconnected")

    def closed(self) -> None:
        """The application closed the connection: the session is over, by its choice."""
        self._end("closed")

    def _end(self, reason: str) -> None:
        if not self.expired and self.session_index >= 0:
            self._records.append(SessionEnded(self.session_index, reason))
            self.expired = True
