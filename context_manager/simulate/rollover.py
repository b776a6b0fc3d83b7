"""What a new session is seeded with when the provider ends the old one.

A provider ends a session at its maximum duration (OpenAI 60 minutes, Azure 30), and a new
session starts empty. The rollover policy here re-sends the most recent turns as text within a
token budget ([Compaction] adds summaries): whole turns, newest first, each beginning with the
user item that opened it, so a function call is never separated from its output and the seed
never opens with the assistant. Audio cannot be re-sent (assistant audio cannot be created by a
client), so every message goes in as its transcript.

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

from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Item, Message, turn_starts
from ..tokens import TokenCounter

__all__ = ["RolloverPolicy", "seed_text_tokens"]


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
class RolloverPolicy:
    """Re-send the most recent whole turns, as text, within `budget_tokens`.

    Attributes:
        budget_tokens: the most tokens the seed may take (0 sends nothing).
    """

    budget_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.budget_tokens < 0:
            raise ConfigurationError(
                f"rollover budget must be >= 0 tokens, got {self.budget_tokens}"
            )

    @classmethod
    def parse(cls, text: str) -> RolloverPolicy | None:
        """Read ``none`` (the call ends with its session), ``recent`` or ``recent:BUDGET``."""
        parts = text.strip().split(":")
        if parts == ["none"]:
            return None
        if parts[0] == "recent" and len(parts) <= 2:
            try:
                return cls(int(parts[1])) if len(parts) == 2 else cls()
            except ValueError:
                pass
        raise ConfigurationError(f"bad rollover {text!r}; use none, recent or recent:BUDGET_TOKENS")

    def __str__(self) -> str:
        return f"recent:{self.budget_tokens}"

    def first_seeded(self, history: Sequence[Item], counter: TokenCounter) -> int:
        """Index of the first history item the seed re-sends (``len(history)`` for none)."""
        starts = turn_starts(history)
        chosen = len(history)
        used = 0
        end = len(history)
        for start in reversed(starts):
            cost = sum(seed_text_tokens(i, counter) for i in history[start:end])
            if used + cost > self.budget_tokens:
                break
            used += cost
            chosen = end = start
        return chosen

    def seed(self, history: Sequence[Item], counter: TokenCounter) -> list[Item]:
        """The items a new session is seeded with, in order."""
        return [as_seed_item(i) for i in history[self.first_seeded(history, counter) :]]
