"""A compaction as a plan: the client events that make the server's conversation match.

A plan lists items to create (each with the ``previous_item_id`` that places it) and items to
delete. Creates come first and deletes after, so history is removed only once what replaces it
exists: a plan cut short (a dropped connection, a failing summarizer upstream) never loses
anything. `CompactionPlan.client_events` gives the ``conversation.item.create`` and
``conversation.item.delete`` events to send; `CompactionPlan.apply` performs the plan on a
`ServerModel`; `CompactionPlan.result` is the conversation the plan promises, and applying the
plan gives exactly that (tested).

Examples:
    >>> from context_manager.items import Message
    >>> history = [Message(role="user", text="hi", id="u1"),
    ...            Message(role="assistant", text="hello", id="a1")]
    >>> plan = CompactionPlan(
    ...     creates=(Create(Message(role="system", text="Summary: greetings.", id="s1"), "root"),),
    ...     deletes=("u1", "a1"), reason="example")
    >>> [i.id for i in plan.result(history)]
    ['s1']
    >>> [e["type"] for e in plan.client_events()]
    ['conversation.item.create', 'conversation.item.delete', 'conversation.item.delete']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..items import Item, Message
from ..wire import create_event, delete_event

if TYPE_CHECKING:
    from ..server import ServerModel

__all__ = ["ROOT", "CompactionPlan", "Create"]

ROOT = "root"
"""``previous_item_id`` that puts an item first in the conversation."""


@dataclass(frozen=True, slots=True)
class Create:
    """An item to add, placed after `previous_item_id` (``"root"``: first; ``None``: last)."""

    item: Item
    previous_item_id: str | None


@dataclass(frozen=True, slots=True)
class CompactionPlan:
    """Items to create (in order) and items to delete, and why."""

    creates: tuple[Create, ...] = ()
    deletes: tuple[str, ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        for create in self.creates:
            if create.item.id is None:
                raise ConfigurationError("a planned item needs an id, so later plans can name it")
            item = create.item
            if isinstance(item, Message) and item.role == "assistant" and item.audio_ms is not None:
                raise ConfigurationError(
                    "a client cannot create assistant audio; plan its text form (Message.as_text())"
                )

    @property
    def empty(self) -> bool:
        """Whether the plan changes nothing."""
        return not self.creates and not self.deletes

    def result(self, items: Sequence[Item]) -> list[Item]:
        """The conversation after the plan, from the conversation `items` before it."""
        out = list(items)
        for create in self.creates:
            _insert(out, create)
        gone = set(self.deletes)
        return [i for i in out if i.id not in gone]

    def client_events(self) -> list[dict[str, Any]]:
        """The Realtime client events, in the order to send them (creates, then deletes)."""
        creates = [create_event(c.item, c.previous_item_id) for c in self.creates]
        return [*creates, *map(delete_event, self.deletes)]

    def apply(self, server: ServerModel) -> None:
        """Perform the plan on a `ServerModel` (creates, then deletes)."""
        for create in self.creates:
            server.create_item(create.item, previous_item_id=create.previous_item_id)
        for item_id in self.deletes:
            server.delete_item(item_id)


def _insert(items: list[Item], create: Create) -> None:
    where = create.previous_item_id
    if where is None:
        items.append(create.item)
    elif where == ROOT:
        items.insert(0, create.item)
    else:
        for n, item in enumerate(items):
            if item.id == where:
                items.insert(n + 1, create.item)
                return
        raise ConfigurationError(
            f"plan places an item after {where!r}, which is not in the conversation"
        )
