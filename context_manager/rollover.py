"""Rollover: what a new session is seeded with when the provider ends the old one.

A provider ends a session at its maximum duration (OpenAI 60 minutes, Azure 30), and a new
session starts empty. A `RolloverPolicy` re-sends the most recent whole turns as text within a
token budget, newest first, each beginning with the user item that opened it (so a function
call is never separated from its output and the seed never opens with the assistant), and may
carry the older history ahead of them as one system item: an extractive summary or the fact
ledger. Messages go in as their transcripts (assistant audio cannot be created by a client);
a user turn with no transcript (input transcription is off by default) goes in as its own
audio when the live engine kept it (`context_manager.live.audio`), and is otherwise left out
and reported (`SeedDraft.uncarried`): a seed never holds an empty user turn. A `RolloverPlan`
is the live engine's plan for the next session: its ``session.update`` and seed as client
events.

`DEFAULT_ROLLOVER` is the one default of every entry point: the live engine, the store's
`seed`, the simulator (`simulate_call`, `run_calls`, sweeps) and the command line's
``--rollover``. It carries the recent turns within 4,096 tokens, which the vectorized simulator
prices at full speed; ``RolloverPolicy(carry="summary")`` keeps a summary of what no longer fits.

Examples:
    >>> from context_manager.items import Message
    >>> from context_manager.profiles import get_model_profile
    >>> from context_manager.tokens import TokenCounter
    >>> history = [Message(role="user", text="Book Oslo.", audio_ms=2000),
    ...            Message(role="assistant", text="Which date?", audio_ms=1500),
    ...            Message(role="user", text="The sixth.", audio_ms=1200),
    ...            Message(role="assistant", text="Done.", audio_ms=900)]
    >>> counter = TokenCounter(get_model_profile("gpt-realtime"))
    >>> seed = RolloverPolicy(budget_tokens=20).seed(history, counter)
    >>> [(m.role, m.text, m.audio_ms) for m in seed]
    [('user', 'The sixth.', None), ('assistant', 'Done.', None)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from .compaction.strategies import Ledger
from .compaction.summarizers import ExtractiveSummarizer, Summarizer
from .errors import ConfigurationError
from .items import FunctionCall, FunctionCallOutput, Item, Message, turn_starts
from .tokens import TokenCounter
from .wire import create_event

__all__ = [
    "DEFAULT_ROLLOVER",
    "RolloverPlan",
    "RolloverPolicy",
    "SeedDraft",
    "SeedSummary",
    "is_unheard",
    "seed_text_tokens",
]


class _Audio(Protocol):
    """Kept user audio (`context_manager.live.audio.KeptAudio`): bytes with a format."""

    format: str

    def b64(self) -> str: ...


def is_unheard(item: Item) -> bool:
    """A user audio turn with no transcript: as text it would be an empty turn."""
    return (
        isinstance(item, Message)
        and item.role == "user"
        and item.audio_ms is not None
        and not item.text.strip()
        and not item.images
    )


def as_seed_item(item: Item) -> Item:
    """The form an item is re-sent in: messages as text, function items as they are, no id."""
    if isinstance(item, Message):
        return replace(item.as_text(), id=None)
    if isinstance(item, FunctionCall | FunctionCallOutput):
        return replace(item, id=None)
    raise ConfigurationError(f"cannot seed an item of type {type(item).__name__}")


def seed_text_tokens(item: Item, counter: TokenCounter) -> int:
    """Tokens an item costs in the seed (its text form, with overhead)."""
    return counter.item(as_seed_item(item)).full.total


@dataclass(frozen=True, slots=True)
class SeedSummary:
    """A summary of the older history made ahead of a switch (by the realtime model, say)."""

    text: str
    covers: frozenset[str]
    """The ids of the history items it covers."""


@dataclass(frozen=True, slots=True)
class SeedDraft:
    """A seed before it is named: its items, where each came from, what it could not carry."""

    items: list[Item]
    origins: list[str | None]
    """The history id each item repeats (``None``: the summary or ledger)."""
    audio: dict[int, _Audio] = field(default_factory=dict)
    """Index in `items` -> the user audio that item re-sends."""
    uncarried: list[str] = field(default_factory=list)
    """History ids of user turns with no transcript that the seed could not carry: beyond the
    kept audio, or covered by a text summary that cannot hold them."""
    heard: tuple[str, ...] = ()
    """History ids the seed's summary covers when the realtime model wrote it, having heard
    them: they are the call's summary from now on (compacted into it)."""


Carry = Literal["recent", "summary", "ledger"]


_MOST = 10_000_000  # tokens: far past any model's window, well inside int64 sums


@dataclass(frozen=True, slots=True)
class RolloverPolicy:
    """What a new session is seeded with.

    The most recent whole turns as text, within `budget_tokens`; with ``carry="summary"`` (or
    ``"ledger"``) the older history goes in first as one system item of at most
    `summary_tokens`: an extractive summary (or the fact ledger, last write wins), and the
    recent turns fill the rest of the budget.

    Attributes:
        budget_tokens: the most tokens the seed may take (0 sends nothing).
        carry: ``recent``, ``summary`` or ``ledger``.
        summary_tokens: the part of the budget the summary or ledger may take.
        summarizer: what writes the summary (the extractive one by default, and whenever
            this one fails or is not live: a `context_manager.realtime.RealtimeSummarizer`
            is asked ahead of the switch, while the old session can still answer).
    """

    budget_tokens: int = 4096
    carry: Carry = "recent"
    summary_tokens: int = 512
    summarizer: Summarizer | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not (0 <= self.budget_tokens <= _MOST and 0 <= self.summary_tokens <= _MOST):
            bad = (
                self.budget_tokens if not 0 <= self.budget_tokens <= _MOST else self.summary_tokens
            )
            raise ConfigurationError(f"rollover budgets must be 0 to {_MOST:,} tokens, got {bad:,}")
        if self.carry not in ("recent", "summary", "ledger"):
            raise ConfigurationError(f"carry must be recent, summary or ledger, got {self.carry!r}")

    @classmethod
    def parse(cls, text: str) -> RolloverPolicy | None:
        """Read a rollover setting from the command line.

        The forms: ``none`` (the call ends with its session), ``recent[:BUDGET]``,
        ``summary[:BUDGET[:SUMMARY_TOKENS]]`` and ``ledger[:BUDGET[:LEDGER_TOKENS]]``.
        """
        parts = text.strip().split(":")
        if parts == ["none"]:
            return None
        carries: dict[str, Carry] = {"recent": "recent", "summary": "summary", "ledger": "ledger"}
        carry = carries.get(parts[0])
        most = 2 if carry == "recent" else 3
        if carry is not None and len(parts) <= most and all(p.isdigit() for p in parts[1:]):
            numbers = [int(p) for p in parts[1:]]
            return cls(
                budget_tokens=numbers[0] if numbers else 4096,
                carry=carry,
                summary_tokens=numbers[1] if len(numbers) > 1 else 512,
            )
        raise ConfigurationError(
            f"bad rollover {text!r}; use none, recent[:BUDGET], summary[:BUDGET[:SUMMARY]]"
            " or ledger[:BUDGET[:LEDGER]]"
        )

    def __str__(self) -> str:
        if self.carry == "recent":
            return f"recent:{self.budget_tokens}"
        return f"{self.carry}:{self.budget_tokens}:{self.summary_tokens}"

    def first_seeded(
        self,
        history: Sequence[Item],
        counter: TokenCounter,
        budget: int | None = None,
        audio: Mapping[str, _Audio] | None = None,
        *,
        summarized: bool = False,
    ) -> int:
        """Index of the first history item re-sent as is (``len(history)`` for none).

        With `summarized` (a summary covers what comes before) a turn the seed cannot carry
        as it is (a user turn with no transcript and no kept audio) ends the recent part, so
        the summary covers it.
        """
        budget = self.budget_tokens if budget is None else budget
        starts = turn_starts(history)
        chosen = len(history)
        used = 0
        end = len(history)
        for start in reversed(starts):
            forms = [_seed_form(item, audio) for item in history[start:end]]
            if summarized and None in forms:
                break
            cost = sum(counter.item(f).full.total for f in forms if f is not None)
            if used + cost > budget:
                break
            used += cost
            chosen = end = start
        return chosen

    def seed(
        self, history: Sequence[Item], counter: TokenCounter, previous: str | None = None
    ) -> list[Item]:
        """The items a new session is seeded with, in order.

        `previous` is a summary (or ledger) the history already had (the store keeps one when
        the client compacted): it is folded into what the seed carries, so with ``recent`` it
        goes in first as it is (cut to `summary_tokens`).
        """
        return self.draft(history, counter, previous).items

    def draft(
        self,
        history: Sequence[Item],
        counter: TokenCounter,
        previous: str | None = None,
        audio: Mapping[str, _Audio] | None = None,
        ahead: SeedSummary | None = None,
    ) -> SeedDraft:
        """`seed`, with each item's origin, and user audio re-sent where it was kept.

        `audio` maps history ids to the user audio kept for them: a user turn with no
        transcript goes in as that audio (its audio tokens count in the budget). `ahead` is
        a summary made before the switch (`older`): used when it covers the older history.
        """
        heard, summarized = False, tuple[str, ...]()
        if self.carry == "recent" and not previous:
            first, carried = self.first_seeded(history, counter, audio=audio), ""
        else:
            reserve = min(self.summary_tokens, self.budget_tokens)
            first = self.first_seeded(
                history, counter, self.budget_tokens - reserve, audio, summarized=True
            )
            covered = _covered(history, ahead)
            if covered:
                # The realtime model's summary, made ahead of the switch: it heard the audio.
                # What came after it goes in as recent turns, over the budget if need be.
                first, carried, heard = min(first, covered), ahead.text, True  # type: ignore[union-attr]
                summarized = tuple(str(i.id) for i in history[:first])
            else:
                older = history[:first]
                carried = self._carried(older, counter, reserve, previous) if reserve else ""
        draft = SeedDraft([], [], heard=summarized if heard else ())
        if carried:
            draft.items.append(Message(role="system", text=carried))
            draft.origins.append(None)
        if carried and not heard:
            # A text summary cannot hold what nobody transcribed (the model's, made ahead of
            # the switch, heard it).
            draft.uncarried.extend(str(i.id) for i in history[:first] if is_unheard(i))
        for item in history[first:]:
            form = _seed_form(item, audio)
            if form is None:
                draft.uncarried.append(str(item.id))
                continue
            if is_unheard(item) and audio is not None:
                draft.audio[len(draft.items)] = audio[str(item.id)]
            draft.items.append(form)
            draft.origins.append(item.id)
        return draft

    def older(
        self,
        history: Sequence[Item],
        counter: TokenCounter,
        audio: Mapping[str, _Audio] | None = None,
    ) -> tuple[list[Item], int]:
        """The history a summary would cover, and the tokens its text may take."""
        reserve = min(self.summary_tokens, self.budget_tokens)
        first = self.first_seeded(
            history, counter, self.budget_tokens - reserve, audio, summarized=True
        )
        return list(history[:first]), max(reserve - counter.profile.item_overhead_tokens, 0)

    def _carried(
        self, older: Sequence[Item], counter: TokenCounter, budget: int, previous: str | None
    ) -> str:
        if not older and not previous:
            return ""
        # The system item has its own overhead: the text gets what is left of the budget.
        room = max(budget - counter.profile.item_overhead_tokens, 0)
        if not older and previous is not None and counter.text(previous) <= room:
            return previous  # nothing new to fold, and the summary fits: it goes in as it is
        if self.carry == "ledger":
            ledger = Ledger()
            return ledger.text(ledger.facts(older, previous), counter, room)
        # `recent` reaches here only with a previous summary; older turns that no longer fit
        # are then summarized into it rather than silently lost.
        chosen = self.summarizer
        if chosen is not None and getattr(chosen, "live", True):
            try:
                return chosen.summarize(older, budget_tokens=room, previous=previous)
            except Exception:  # the summary model's failure is never the call's
                pass
        return ExtractiveSummarizer().summarize(older, budget_tokens=room, previous=previous)


def _covered(history: Sequence[Item], ahead: SeedSummary | None) -> int:
    """How many leading history items `ahead` covers (0: none, or it covers nothing)."""
    if ahead is None or not ahead.covers:
        return 0
    n = 0
    while n < len(history) and str(history[n].id) in ahead.covers:
        n += 1
    return n if n == len(ahead.covers) else 0


def _seed_form(item: Item, audio: Mapping[str, _Audio] | None) -> Item | None:
    """How `item` goes into a seed: as text, as its kept audio, or not at all (``None``)."""
    if not is_unheard(item):
        return as_seed_item(item)
    if audio is not None and item.id is not None and item.id in audio:
        return replace(item, id=None, t=None)
    return None


DEFAULT_ROLLOVER = RolloverPolicy()
"""The seed of a new session unless told otherwise, at every entry point: the latest whole
turns within 4,096 tokens."""


@dataclass(frozen=True, slots=True)
class RolloverPlan:
    """How to continue a live call in a new session.

    Send `session_update` first, then the `seed` events (``conversation.item.create``, in order).
    """

    reason: str
    """``rollover`` (planned), ``expired``, ``disconnected`` or ``resume``."""
    session_update: dict[str, Any]
    seed: tuple[Item, ...]
    """The seeded items (ids ``seed...``/``summary_...``), in order."""
    seed_tokens: int
    """Tokens the seed takes in the new session's context."""
    audio: Mapping[str, str] = field(default_factory=dict)
    """Seed item id -> the base64 user audio it re-sends (``input_audio``)."""
    uncarried: tuple[str, ...] = ()
    """History keys of user turns with no transcript that the seed does not carry."""
    summarized: tuple[str, ...] = ()
    """History keys its summary covers, when the realtime model wrote it (having heard them)."""

    @property
    def events(self) -> list[dict[str, Any]]:
        """The client events: the ``session.update``, then one create per seeded item."""
        events = [self.session_update]
        for item in self.seed:
            event = create_event(item)
            if item.id is not None and item.id in self.audio:
                event["item"]["content"][0]["audio"] = self.audio[item.id]
            events.append(event)
        return events
