"""`ContextEngine`: the live session loop's context manager, events in and events out.

Feed it every server event of a Realtime connection (`ContextEngine.feed`) and every client
event the application sends (`ContextEngine.sent`). It keeps

* a **mirror** of the server's conversation (`SessionMirror`), so it knows the live budget and
  predicts what truncation will drop before the server does it (`ContextEngine.forecast`);
* the **history** of the whole call, across sessions: every user, assistant and function item
  once, with a stable key, transcripts filled in as they arrive (`ContextEngine.history`);
* **calibration**: at each ``response.done`` the model's predicted usage is compared with the
  server's, and the per-item overhead is refitted so the prediction converges
  (`ContextEngine.calibration`);
* **compaction**: at safe points its strategy's plans come back from `feed` as client events
  to send (creates first, deletes after);
* **rollover**: before the provider's maximum (less a margin), at a safe point (after a
  ``response.done``, no function call waiting for its output, the user not speaking),
  `ContextEngine.rollover_due` turns true and `ContextEngine.plan_rollover` gives the new
  session's ``session.update`` and seed (summary and latest turns as text, within the seed
  budget, pending function calls carried). An unexpected ``session_expired`` or disconnect is
  planned the same way, from the history or from a store.

What must be persisted comes out as records (`ContextEngine.take_records`): items added and
completed, server truncations, compactions, usage with its prediction, session starts and ends.
The openai adapter (`context_manager.realtime`) writes them to a store; plain-Python users may
do as they please. The engine does no I/O and reads time only from its clock.

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
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .budget import BudgetBreakdown
from .compaction.plan import CompactionPlan, Create
from .compaction.strategies import SUMMARY_PREFIX, CompactionContext, CompactionStrategy
from .errors import ConfigurationError, ContextOverflowError, InputFormatError
from .items import FunctionCall, FunctionCallOutput, Item, Message, from_realtime_item
from .mirror import ResponseOutcome, SessionMirror, bytes_per_ms
from .profiles import ModelProfile, ProviderProfile, get_model_profile, get_provider_profile
from .server import Truncation, price
from .simulate.rollover import RolloverPolicy
from .tokens import TokenCounter

__all__ = [
    "DEFAULT_ROLLOVER",
    "Calibration",
    "Compacted",
    "ContextEngine",
    "Forecast",
    "ItemChanged",
    "ItemStored",
    "ItemsTruncated",
    "Record",
    "ResponseUsage",
    "RolloverPlan",
    "SeedLinked",
    "SessionEnded",
    "SessionStarted",
]

log = logging.getLogger(__name__)

DEFAULT_ROLLOVER = RolloverPolicy(carry="summary")
"""The seed of a new session unless told otherwise: a summary, then the latest turns."""

# Session settings a client may send back in ``session.update`` (the rest is read-only).
_UPDATABLE = (
    "type", "instructions", "tools", "tool_choice", "truncation", "max_output_tokens",
    "output_modalities", "audio", "include", "prompt", "tracing",
)  # fmt: skip


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """A server session began (``session.created``)."""

    session: int
    server_session_id: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """A session ended: ``rollover`` (planned), ``expired`` or ``disconnected``."""

    session: int
    reason: str


@dataclass(frozen=True, slots=True)
class ItemStored:
    """A new item of the call: `item.id` is its server id in `session`."""

    key: str
    item: Item
    session: int


@dataclass(frozen=True, slots=True)
class ItemChanged:
    """An item's content completed (a transcript arrived): replace what was stored."""

    key: str
    item: Item


@dataclass(frozen=True, slots=True)
class ItemsTruncated:
    """The server's truncation dropped these items (predicted by the mirror)."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compacted:
    """A compaction the server confirmed: `keys` left the context, `summary` replaces them."""

    keys: tuple[str, ...]
    summary: str | None
    strategy: str
    session: int
    tokens_before: int
    tokens_after: int


@dataclass(frozen=True, slots=True)
class ResponseUsage:
    """A ``response.done``: observed and predicted usage, and the observed cost."""

    outcome: ResponseOutcome
    cost_usd: float


@dataclass(frozen=True, slots=True)
class SeedLinked:
    """Stored items were re-sent into `session` under these server ids (``{key: id}``)."""

    session: int
    server_ids: Mapping[str, str]


Record = (
    SessionStarted
    | SessionEnded
    | ItemStored
    | ItemChanged
    | ItemsTruncated
    | Compacted
    | ResponseUsage
    | SeedLinked
)
"""What the engine asks to be persisted, in order."""


# ---------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class Forecast:
    """What the next response would do to the context, as the model predicts it."""

    history_tokens: int
    history_limit: int
    drops: tuple[str, ...]
    """Server ids of the items truncation would drop."""
    overflow: bool
    """The response would fail (``disabled`` truncation, or one item larger than the limit)."""

    @property
    def fill(self) -> float:
        """History tokens as a fraction of the limit."""
        return self.history_tokens / self.history_limit if self.history_limit else math.inf


@dataclass(frozen=True, slots=True)
class Calibration:
    """How well the model predicts the server, and the correction it applies."""

    responses: int
    """Responses compared."""
    last_error: int
    """Observed minus predicted input tokens of the latest compared response."""
    mean_abs_error: float
    """Mean absolute input-token error over the compared responses."""
    item_overhead_tokens: int
    """The per-item overhead the model now uses (the profile's, refitted)."""


@dataclass(frozen=True, slots=True)
class RolloverPlan:
    """How to continue the call in a new session.

    Send `session_update` first, then the `seed` events (``conversation.item.create``, in order).
    """

    reason: str
    session_update: dict[str, Any]
    seed: tuple[Item, ...]
    """The seeded items (ids ``seed...``/``summary_...``), in order."""
    seed_tokens: int
    """Tokens the seed takes in the new session's context."""

    @property
    def events(self) -> list[dict[str, Any]]:
        """The client events: the ``session.update``, then one create per seeded item."""
        creates = CompactionPlan(
            creates=tuple(Create(i, None) for i in self.seed), reason="rollover seed"
        ).client_events()
        return [self.session_update, *creates]


@dataclass(slots=True)
class _Entry:
    key: str
    item: Item
    status: Literal["live", "truncated", "compacted"] = "live"


@dataclass(slots=True)
class _Fit:
    """Least squares of the input error on the item count: error = a + d x items."""

    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    abs_error: int = 0
    last: int = 0

    def add(self, items: int, error_at_base: int, error: int) -> None:
        self.n += 1
        self.sx += items
        self.sy += error_at_base
        self.sxx += items * items
        self.sxy += items * error_at_base
        self.abs_error += abs(error)
        self.last = error

    def slope(self) -> float | None:
        spread = self.n * self.sxx - self.sx * self.sx
        if self.n < 3 or spread <= 0:
            return None  # not enough distinct item counts to tell overhead from a constant
        return (self.n * self.sxy - self.sx * self.sy) / spread


@dataclass(slots=True)
class _Pending:
    """A compaction sent and not yet confirmed by the server."""

    compaction: CompactionPlan | None = None
    waiting: set[str] = field(default_factory=set)
    created: frozenset[str] = frozenset()
    replaces: dict[str, str] = field(default_factory=dict)
    """Created id -> the deleted id it stands for (audio replaced by its transcript)."""
    tokens_before: int = 0


class ContextEngine:
    """The context of one call, kept live from its Realtime events.

    Args:
        profile: the model profile (or a built-in name).
        provider: the provider profile (or name): its maximum session length sets rollover.
        compaction: the strategy whose plans `feed` returns (``None``: the engine never compacts).
        rollover: what a new session is seeded with (default: a summary and the latest turns
            within 4,096 tokens; ``None``: the engine never rolls over, and an expired session
            is seeded with this default).
        rollover_margin_seconds: roll over this long before the provider's maximum.
        truncation: the truncation the engine wants; when the server's differs, `feed` returns
            the ``session.update`` that sets it (``None``: keep the application's).
        calibrate: refit the per-item overhead from observed usage.
        clock: seconds (``time.monotonic`` by default; a `ManualClock` in tests).
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
        self._handled = (
            frozenset(_HANDLERS) | self.mirror.event_types() | {"input_audio_buffer.committed"}
        )
        self._base_overhead = self.profile.item_overhead_tokens
        self._fit = _Fit()
        self.history: list[_Entry] = []
        """Every item of the call once, oldest first (seed copies and summaries excluded)."""
        self._by_key: dict[str, _Entry] = {}
        self._keys: dict[str, str] = {}  # server id in this session -> history key
        self._seeded: dict[str, str | None] = {}  # seeded server id -> history key (None: summary)
        self.summary: str | None = None
        """The newest summary of compacted history."""
        self.session_index = -1
        self.started_at: float | None = None
        self.total_cost_usd = 0.0
        """What the call's responses cost, as the server reported their usage."""
        self.responses = 0
        self.compactions = 0
        """Compactions the server confirmed."""
        self.errors: list[dict[str, Any]] = []
        self.rate_limits: list[dict[str, Any]] = []
        self.expired = False
        """The server said ``session_expired``: the session is over."""
        self._records: list[Record] = []
        self._pending = _Pending()
        self._calls: dict[str, str] = {}  # call_id -> key of the function call awaiting output
        self._speaking = False
        self._buffered_bytes = 0
        self._input_format = "audio/pcm"
        self._last_response_at: float | None = None
        self._warned = False
        self._config: dict[str, Any] = {}  # the session settings the application chose

    # ------------------------------------------------------------------ reading

    @property
    def counter(self) -> TokenCounter:
        """The token counter of the (calibrated) profile."""
        return self.mirror.counter

    @property
    def budget(self) -> BudgetBreakdown:
        """The live window: reserve, instructions, tools, history, free."""
        return replace(self.mirror.server.budget, history_tokens=self.mirror.history_tokens())

    def forecast(self) -> Forecast:
        """What the next response would drop, or whether it would fail."""
        server = self.mirror.server
        pending = [item for item, _ in self.mirror.pending]
        limit = server.history_limit
        try:
            drops = server.preview_truncation(pending)
        except ContextOverflowError:
            return Forecast(self.mirror.history_tokens(), limit, (), True)
        return Forecast(self.mirror.history_tokens(), limit, drops, False)

    @property
    def calibration(self) -> Calibration:
        """The prediction error so far and the overhead in use."""
        fit = self._fit
        return Calibration(
            responses=fit.n,
            last_error=fit.last,
            mean_abs_error=fit.abs_error / fit.n if fit.n else 0.0,
            item_overhead_tokens=self.mirror.profile.item_overhead_tokens,
        )

    def conversation(self) -> list[Item]:
        """The call as the client remembers it: history not compacted, stable keys as ids."""
        return [replace(e.item, id=e.key) for e in self.history if e.status != "compacted"]

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
        return tuple(self._calls)

    @property
    def safe(self) -> bool:
        """No response running, no function call waiting, the user not speaking, no plan out."""
        return not (
            self.mirror.responding or self._calls or self._speaking or self._pending.waiting
        )

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

    # ------------------------------------------------------------------ client events

    def sent(self, event: Mapping[str, Any] | Any) -> None:
        """Note a client event the application sent (audio it buffered, mostly)."""
        if not isinstance(event, Mapping):
            event = _as_mapping(event)
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            audio = event.get("audio")
            self._buffered_bytes += len(audio) * 3 // 4 if isinstance(audio, str) else 0
        elif kind == "input_audio_buffer.clear":
            self._buffered_bytes = 0

    # ------------------------------------------------------------------ server events

    def feed(self, event: Mapping[str, Any] | Any) -> list[dict[str, Any]]:
        """Apply one server event; returns the client events the engine wants sent.

        The event is a dict as it arrives on the socket, or the ``openai`` SDK's event model.

        Raises:
            InputFormatError: `event` is neither.
        """
        if type(event) is not dict and not isinstance(event, Mapping):  # dicts: no ABC check
            event = _as_mapping(event)
        kind = event.get("type")
        if not isinstance(kind, str) or kind not in self._handled:
            return []  # deltas and the like: nothing to keep (most events of a call)
        if kind == "input_audio_buffer.committed":
            self._committed(event)
        outcome = self.mirror.feed(event)
        handler = _HANDLERS.get(kind)
        out: list[dict[str, Any]] = []
        if handler is not None:
            out = handler(self, event) or []
        if outcome is not None:
            out = self._response_done(outcome)
        return out

    def _committed(self, event: Mapping[str, Any]) -> None:
        item_id = event.get("item_id")
        if isinstance(item_id, str) and self._buffered_bytes and item_id not in self.mirror.speech:
            # Audio committed by hand (no VAD): its length is what the application appended.
            ms = int(self._buffered_bytes / bytes_per_ms(self._input_format))
            self.mirror.speech[item_id] = {"audio_start_ms": 0, "audio_end_ms": ms}
        self._buffered_bytes = 0
        self._speaking = False

    def _session_created(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.session_index >= 0 and not self.expired:
            self._records.append(SessionEnded(self.session_index, "rollover"))
        self.session_index += 1
        self.started_at = self.clock()
        self._last_response_at = None
        self.expired = False
        self._keys.clear()
        self._speaking = False
        self._pending = _Pending()
        session = event.get("session") or {}
        if self.session_index == 0:
            self._config = dict(session)  # later sessions start with defaults, not the app's
        self._configured(session)
        sid, model = session.get("id"), session.get("model")
        self._records.append(
            SessionStarted(
                self.session_index,
                sid if isinstance(sid, str) else None,
                model if isinstance(model, str) else None,
            )
        )
        return self._wanted_truncation(session)

    def _configured(self, session: Mapping[str, Any]) -> None:
        fmt = (((session.get("audio") or {}).get("input") or {}).get("format") or {}).get("type")
        if isinstance(fmt, str):
            self._input_format = fmt

    def _wanted_truncation(self, session: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.truncation is None or "truncation" not in session:
            return []
        if Truncation.from_realtime(session.get("truncation")) == self.truncation:
            return []
        update = {"type": "realtime", "truncation": self.truncation.to_realtime()}
        return [{"type": "session.update", "session": update}]

    def _session_updated(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        session = event.get("session") or {}
        self._config = {**self._config, **session}
        self._configured(session)
        return self._wanted_truncation(session)

    def _item(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        raw = event.get("item") or {}
        item_id = raw.get("id")
        if not isinstance(item_id, str) or item_id in self.mirror.outputs:
            return []
        replaced = self._pending.replaces.get(item_id)
        if replaced is not None and (key := self._key_of(replaced)) is not None:
            self._keys[item_id] = key  # the same item of the call, in another form
        if item_id in self._pending.created:
            self._confirm(item_id)
            return []
        if item_id in self._seeded:
            return []
        item = self._parse(raw, item_id)
        if item is None:
            return []
        key = self._keys.get(item_id)
        if key is None:
            self._add(item, item_id)
        elif item != self._by_key[key].item:
            self._change(key, item)
        return self._warn()

    def _parse(self, raw: Mapping[str, Any], item_id: str) -> Item | None:
        for item, _ in self.mirror.pending:
            if item.id == item_id:
                return self._with_transcript(item, raw)
        try:  # not modelled (audio of unknown length): still the client's to remember
            return from_realtime_item(raw, audio_ms=0)
        except InputFormatError:  # an item type this library does not hold (MCP)
            return None

    @staticmethod
    def _with_transcript(item: Item, raw: Mapping[str, Any]) -> Item:
        if isinstance(item, Message) and item.audio_ms is not None and not item.text:
            for part in raw.get("content") or []:
                text = (part or {}).get("transcript")
                if isinstance(text, str) and text:
                    return replace(item, text=text)
        return item

    def _add(self, item: Item, item_id: str, *, output: bool = False) -> str:
        key = uuid.uuid4().hex
        entry = _Entry(key, item)
        self.history.append(entry)
        self._by_key[key] = entry
        self._keys[item_id] = key
        if isinstance(item, FunctionCall):
            self._calls[item.call_id] = key
        elif isinstance(item, FunctionCallOutput):
            self._calls.pop(item.call_id, None)
        self._records.append(ItemStored(key, replace(item, id=item_id), self.session_index))
        return key

    def _change(self, key: str, item: Item) -> None:
        entry = self._by_key[key]
        entry.item = item
        self._records.append(ItemChanged(key, item))

    def _transcript(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        item_id, text = event.get("item_id"), event.get("transcript")
        key = self._keys.get(item_id) if isinstance(item_id, str) else None
        if key is None or not isinstance(text, str):
            return []
        item = self._by_key[key].item
        if isinstance(item, Message) and item.text != text:
            self._change(key, replace(item, text=text))
        return []

    def _deleted(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        item_id = event.get("item_id")
        if isinstance(item_id, str):
            self._confirm(item_id)
        return []

    def _speech(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._speaking = str(event.get("type")).endswith("started")
        return []

    def _error(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        error = dict(event.get("error") or {})
        self.errors.append(error)
        if error.get("code") == "session_expired":
            self.expired = True
            self._records.append(SessionEnded(self.session_index, "expired"))
        elif self._pending.waiting:
            # A planned create or delete was refused: give the plan up, keep the history.
            log.warning("compaction step refused by the server: %s", error.get("message"))
            self._pending = _Pending()
        return []

    def _rate_limits(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        limits = event.get("rate_limits")
        self.rate_limits = list(limits) if isinstance(limits, list) else []
        return []

    # ------------------------------------------------------------------ responses

    def _response_done(self, outcome: ResponseOutcome) -> list[dict[str, Any]]:
        self.responses += 1
        self._last_response_at = self.clock()
        for item in outcome.outputs:
            if item.id is not None and item.id not in self._keys:
                self._add(item, item.id, output=True)
        dropped = tuple(self._key_of(i) for i in outcome.dropped)
        kept = tuple(k for k in dropped if k is not None)
        if kept:
            for key in kept:
                self._by_key[key].status = "truncated"
            self._records.append(ItemsTruncated(kept))
        cost = price(outcome.observed, self.profile.prices_per_million).total
        self.total_cost_usd += cost
        self._records.append(ResponseUsage(outcome, cost))
        if outcome.compared:
            self._calibrate(outcome)
        self._warned = False
        return self._compact()

    def _key_of(self, server_id: str) -> str | None:
        if server_id in self._seeded:
            return self._seeded[server_id]
        return self._keys.get(server_id)

    def _calibrate(self, outcome: ResponseOutcome) -> None:
        items = outcome.items
        current = self.mirror.profile.item_overhead_tokens
        # Errors at the starting overhead, so every response measures the same quantity.
        at_base = outcome.error + (current - self._base_overhead) * items
        self._fit.add(items, at_base, outcome.error)
        slope = self._fit.slope() if self.calibrate else None
        if slope is None:
            return
        best = max(round(self._base_overhead + slope), 0)
        if best != current:
            log.info("calibration: item overhead %d -> %d tokens", current, best)
            self.mirror.use_profile(
                self.mirror.profile.model_copy(update={"item_overhead_tokens": best}),
                keep_cache=True,
            )

    def _warn(self) -> list[dict[str, Any]]:
        if self._warned or self.mirror.history_tokens() <= self.mirror.server.history_limit:
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

    # ------------------------------------------------------------------ compaction

    def _cold(self) -> bool:
        if self._last_response_at is None or self.mirror.server.responses_created <= 1:
            return True
        return self.clock() - self._last_response_at >= self.profile.cache.ttl_seconds

    def _compact(self) -> list[dict[str, Any]]:
        if self.compaction is None or not self.safe or self.expired:
            return []
        items = self.mirror.items
        context = CompactionContext(
            items=items,
            counter=self.counter,
            limit=self.mirror.server.history_limit,
            cold=self._cold(),
            total=self.mirror.history_tokens(),
        )
        plan = self.compaction.plan(context)
        if plan is None or plan.empty:
            return []
        created = frozenset(c.item.id for c in plan.creates if c.item.id)
        gone = set(plan.deletes)
        replaces = {
            c.item.id: c.previous_item_id
            for c in plan.creates
            if c.item.id and c.previous_item_id in gone and not _is_system(c.item)
        }
        self._pending = _Pending(
            plan, set(created | gone), created, replaces, tokens_before=context.tokens()
        )
        return plan.client_events()

    def _confirm(self, item_id: str) -> None:
        pending = self._pending
        if item_id not in pending.waiting or pending.compaction is None:
            return
        pending.waiting.discard(item_id)
        if pending.waiting:
            return
        plan = pending.compaction
        replaced = set(pending.replaces.values())
        keys = tuple(
            dict.fromkeys(
                k for k in map(self._key_of, (d for d in plan.deletes if d not in replaced)) if k
            )
        )
        for key in keys:
            self._by_key[key].status = "compacted"
        summaries = [c.item.text for c in plan.creates if isinstance(c.item, Message)
                     and _is_system(c.item) and c.item.text]  # fmt: skip
        if summaries:
            self.summary = "\n".join(summaries)
        self.compactions += 1
        self._records.append(
            Compacted(
                keys=keys,
                summary=self.summary if summaries else None,
                strategy=plan.reason or getattr(self.compaction, "name", "compaction"),
                session=self.session_index,
                tokens_before=pending.tokens_before,
                tokens_after=self.mirror.history_tokens(),
            )
        )
        self._pending = _Pending()

    # ------------------------------------------------------------------ rollover

    def session_update(self) -> dict[str, Any]:
        """The ``session.update`` that configures a new session as the current one."""
        session = {k: v for k, v in self._config.items() if k in _UPDATABLE}
        session.setdefault("type", "realtime")
        if self.truncation is not None:
            session["truncation"] = self.truncation.to_realtime()
        return {"type": "session.update", "session": session}

    def plan_rollover(
        self,
        reason: str = "rollover",
        *,
        history: Sequence[Item] | None = None,
        summary: str | None = None,
    ) -> RolloverPlan:
        """Plan the next session: its ``session.update`` and its seed.

        The seed comes from the engine's own history, or from `history` and `summary` (a
        store's `load`, after a restart): summary first as a system item, then the latest
        whole turns as text within the policy's budget, then any function call still waiting
        for its output (so its output can follow in the new session).
        """
        if history is None:
            history, summary = self.conversation(), self.summary
        else:
            self._restore(history, summary)
        seed = self.rollover.seed(history, self.counter, previous=summary)
        carried = {i.call_id for i in seed if isinstance(i, FunctionCall)}
        for key in self._calls.values():
            item = self._by_key[key].item
            if isinstance(item, FunctionCall) and item.call_id not in carried:
                seed.append(replace(item, id=key))
        named: list[Item] = []
        self._seeded = {}
        index = self.session_index + 1
        originals = {i.call_id: i.id for i in history if isinstance(i, FunctionCall)}
        used: set[str] = set()
        for n, item in enumerate(seed):
            if isinstance(item, Message) and item.role == "system" and item.id is None:
                sid = f"{SUMMARY_PREFIX}r{index}"
                self._seeded[sid] = None
            else:
                sid = f"seed{index}_{n}"
                original = self._original_key(item, history, originals, used)
                self._seeded[sid] = original
                if original is not None:
                    used.add(original)
            named.append(replace(item, id=sid))
        tokens = self.counter.items(named).total
        return RolloverPlan(reason, self.session_update(), tuple(named), tokens)

    def _original_key(
        self,
        item: Item,
        history: Sequence[Item],
        originals: Mapping[str, str | None],
        used: set[str],
    ) -> str | None:
        if isinstance(item, FunctionCall):
            return originals.get(item.call_id)
        # Seed items are the last turns, in order: the newest history item of equal content
        # not already matched (the same words said twice are two items of the call).
        form = replace(item, id=None, t=None)
        for original in reversed(history):
            if original.id in used:
                continue
            candidate = original.as_text() if isinstance(original, Message) else original
            if replace(candidate, id=None, t=None) == form:
                return original.id
        return None

    def _restore(self, items: Sequence[Item], summary: str | None) -> None:
        """Adopt a stored conversation as this engine's history (after a restart)."""
        if self.history:
            return  # the engine remembers the call itself; the store holds the same
        for item in items:
            if item.id is None:
                continue
            entry = _Entry(item.id, item)
            self.history.append(entry)
            self._by_key[item.id] = entry
            if isinstance(item, FunctionCall):
                self._calls[item.call_id] = item.id
            elif isinstance(item, FunctionCallOutput):
                self._calls.pop(item.call_id, None)
        self.summary = summary

    def seeded(self, plan: RolloverPlan) -> None:
        """Record that `plan`'s seed was sent into the current session (links for the store)."""
        links = {key: sid for sid, key in self._seeded.items() if key is not None}
        for sid, key in self._seeded.items():
            if key is not None:
                self._keys[sid] = key
        self._records.append(SeedLinked(self.session_index, links))

    def disconnected(self) -> None:
        """The connection dropped without the server ending the session."""
        if not self.expired and self.session_index >= 0:
            self._records.append(SessionEnded(self.session_index, "disconnected"))
            self.expired = True


def _as_mapping(event: Any) -> Mapping[str, Any]:
    dump = getattr(event, "model_dump", None)
    if dump is None:
        raise InputFormatError(
            f"an event must be a dict or an openai SDK event, got {type(event).__name__}",
            source="realtime event",
        )
    data: dict[str, Any] = dump(mode="json", by_alias=True, exclude_none=True)
    return data


def _is_system(item: Item) -> bool:
    return isinstance(item, Message) and item.role == "system"


_Handler = Callable[[ContextEngine, Mapping[str, Any]], list[dict[str, Any]]]
_HANDLERS: dict[str, _Handler] = {
    "session.created": ContextEngine._session_created,
    "session.updated": ContextEngine._session_updated,
    "conversation.item.added": ContextEngine._item,
    "conversation.item.created": ContextEngine._item,
    "conversation.item.done": ContextEngine._item,
    "conversation.item.input_audio_transcription.completed": ContextEngine._transcript,
    "conversation.item.deleted": ContextEngine._deleted,
    "input_audio_buffer.speech_started": ContextEngine._speech,
    "input_audio_buffer.speech_stopped": ContextEngine._speech,
    "error": ContextEngine._error,
    "rate_limits.updated": ContextEngine._rate_limits,
}
