"""The ``openai`` SDK's realtime item types, to and from items: a thin layer over `wire`.

``openai`` is imported only when `to_realtime_item` is called, so nothing else in the package
needs the ``openai`` extra.

>>> from context_manager import Message
>>> said = Message(role="user", text="Hi.", id="u1")
>>> from_realtime_item(to_realtime_item(said)) == said
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .items import FunctionCall, Item, Message
from .wire import as_event, item_from_wire, item_to_wire

if TYPE_CHECKING:
    from openai.types.realtime import ConversationItem

__all__ = ["from_realtime_item", "to_realtime_item"]


def to_realtime_item(item: Item) -> ConversationItem:
    """The ``openai`` SDK's realtime item for `item` (the server's item object shape).

    ``.model_dump(exclude_none=True)`` of the result is `wire.item_to_wire`'s dict: a valid
    ``conversation.item.create`` item, except for assistant audio, which the server does not
    let a client create: send ``item.as_text()`` instead (DESIGN.md, "Sessions").
    """
    from openai.types import realtime as types

    wire = item_to_wire(item)
    if isinstance(item, Message) and item.role == "system":
        return types.RealtimeConversationItemSystemMessage.model_validate(wire)
    if isinstance(item, Message) and item.role == "user":
        return types.RealtimeConversationItemUserMessage.model_validate(wire)
    if isinstance(item, Message):
        return types.RealtimeConversationItemAssistantMessage.model_validate(wire)
    if isinstance(item, FunctionCall):
        return types.RealtimeConversationItemFunctionCall.model_validate(wire)
    return types.RealtimeConversationItemFunctionCallOutput.model_validate(wire)


def from_realtime_item(
    obj: ConversationItem | Mapping[str, Any],
    *,
    audio_ms: int | None = None,
    t: float | None = None,
    audio_format: str = "audio/pcm",
) -> Item:
    """Build an item from a Realtime item object (an ``openai`` model or its JSON dict).

    See `wire.item_from_wire` for the arguments and errors.
    """
    raw = as_event(obj, source="realtime item")
    return item_from_wire(raw, audio_ms=audio_ms, t=t, audio_format=audio_format)
