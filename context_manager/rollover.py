"""Rollover: what a new session is seeded with when the provider ends the old one.

A provider ends a session at its maximum duration (OpenAI 60 minutes, Azure 30), and a new
session starts empty. A `RolloverPolicy` re-sends the most recent whole turns as text within a
token budget, newest first, each beginning with the user item that opened it (so a function
call is never separated from its output and the seed never opens with the assistant), and may
carry the older history ahead of them as one system item: an extractive summary or the fact
ledger. Audio cannot be re-sent (assistant audio cannot be created by a client), so every
message goes in as its transcript. A `RolloverPlan` is the live engine's plan for the next
session: its ``session.update`` and seed as client events.

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

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from .compaction.strategies import Ledger
from .compaction.summarizers import ExtractiveSummarizer
from .errors import ConfigurationError
from .items import FunctionCall, FunctionCallOutput, Item, Message, turn_starts
from .tokens import TokenCounter
from .wire import create_event

__all__ = ["DEFAULT_ROLLOVER", "RolloverPlan", "RolloverPolicy", "seed_text_tokens"]


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


Carry = Literal["recent", "summary", "ledger"]


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
    """

    budget_tokens: int = 4096
    carry: Carry = "recent"
    summary_tokens: int = 512

    def __post_init__(self) -> None:
        if self.budget_tokens < 0 or self.summary_tokens < 0:
            raise ConfigurationError(
                f"rollover budgets must be >= 0 tokens, got {self.budget_tokens}"
                f" and {self.summary_tokens}"
            )
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
        self, history: Sequence[Item], counter: TokenCounter, budget: int | None = None
    ) -> int:
        """Index of the first history item re-sent as is (``len(history)`` for none)."""
        budget = self.budget_tokens if budget is None else budget
        starts = turn_starts(history)
        chosen = len(history)
        used = 0
        end = len(history)
        for start in reversed(starts):
            cost = sum(seed_text_tokens(i, counter) for i in history[start:end])
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
        if self.carry == "recent" and not previous:
            return [as_seed_item(i) for i in history[self.first_seeded(history, counter) :]]
        reserve = min(self.summary_tokens, self.budget_tokens)
        first = self.first_seeded(history, counter, self.budget_tokens - reserve)
        older = history[:first]
        carried = self._carried(older, counter, reserve, previous) if reserve else ""
        head: list[Item] = [Message(role="system", text=carried)] if carried else []
        return [*head, *(as_seed_item(i) for i in history[first:])]

    def _carried(
        self, older: Sequence[Item], counter: TokenCounter, budget: int, previous: str | None
    ) -> str:
        if not older and not previous:
            return ""
        # The system item has its own overhead: the text gets what is left of the budget.
        room = max(budget - counter.profile.item_overhead_tokens, 0)
        if self.carry == "ledger":
            ledger = Ledger()
            return ledger.text(ledger.facts(older, previous), counter, room)
        # `recent` reaches here only with a previous summary; older turns that no longer fit
        # are then summarized into it rather than silently lost.
        return ExtractiveSummarizer().summarize(older, budget_tokens=room, previous=previous)


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

    @property
    def events(self) -> list[dict[str, Any]]:
        """The client events: the ``session.update``, then one create per seeded item."""
        return [self.session_update, *(create_event(item) for item in self.seed)]
