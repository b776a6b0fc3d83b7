"""The ``conversation.item.*`` client events: items created, deleted, truncated, retrieved.

`parse_item` checks a ``conversation.item.create``'s item as strictly as the real server and
gives the conversation's item and the item object the server shows for it
(`context_manager.wire`'s shape; a message shows the content parts the client sent, as the
real server does). `ConversationHandlers` are `FakeSession`'s handlers of these events.

``conversation.item.truncate`` cuts an assistant audio item at the client's playback point,
refused (as by the real server) past the item's audio, which for a cancelled response is the
audio made before it stopped. ``conversation.item.retrieve`` returns an item with its audio:
a user item's bytes as committed or sent, an assistant item's as silence of its length.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..errors import InputFormatError, ServerModelError
from ..items import FunctionCall, FunctionCallOutput, Item, Message
from ..wire import audio_ms_from_size, item_from_wire, item_to_wire
from .base import SessionBase
from .errors import _Reject, b64decode, invalid, missing, required_text, server_param
from .speech import hear

__all__ = ["CONTENT_TYPES", "ConversationHandlers", "ParsedItem", "parse_item"]

CONTENT_TYPES: Mapping[str, tuple[str, ...]] = {
    "system": ("input_text",),
    "user": ("input_text", "input_audio", "input_image"),
    "assistant": ("output_text",),
}
"""The content part types a client may send in a message of each role."""


class ParsedItem(NamedTuple):
    """A client's item, as `parse_item` checked it."""

    item: Item
    """The conversation's item."""
    wire: dict[str, Any]
    """The item object as the server shows it in its events."""
    audio: bytes | None = None
    """The user audio bytes of an ``input_audio`` message."""


def parse_item(raw: object, new_id: Callable[[], str], input_format: str) -> ParsedItem:
    """Check a ``conversation.item.create``'s ``item``; `new_id` gives an id it lacks.

    >>> parsed = parse_item({"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ...                     lambda: "item_1", "audio/pcm")
    >>> parsed.wire
    {'id': 'item_1', 'type': 'function_call_output', 'call_id': 'c1', 'output': 'ok'}

    Raises:
        _Reject: a missing field, a wrong type or value, or an item type the fake does not model.
    """
    if not isinstance(raw, Mapping):
        raise missing("item")
    item_id = raw.get("id")
    if item_id is not None and not isinstance(item_id, str):
        raise invalid("item.id", item_id, "expected a string")
    item_id = item_id or new_id()
    kind = raw.get("type")
    if kind == "function_call":
        name, call_id = required_text(raw, "name"), required_text(raw, "call_id")
        arguments = raw.get("arguments", "")
        if not isinstance(arguments, str):
            raise invalid("item.arguments", arguments, "expected a JSON string")
        call = FunctionCall(name=name, call_id=call_id, arguments=arguments, id=item_id)
        return ParsedItem(call, item_to_wire(call, status="completed"))
    if kind == "function_call_output":
        call_id, output = required_text(raw, "call_id"), required_text(raw, "output")
        result = FunctionCallOutput(call_id=call_id, output=output, id=item_id)
        # Recorded: the real server shows a function_call_output with no status.
        return ParsedItem(result, item_to_wire(result))
    if kind == "message":
        return _parse_message(raw, item_id, input_format)
    if isinstance(kind, str) and kind.startswith("mcp_"):
        raise _Reject(
            "unsupported_by_fake", f"The fake server does not model {kind} items.", "item.type"
        )
    raise invalid("item.type", kind, "expected message, function_call or function_call_output")


def _parse_message(raw: Mapping[str, Any], item_id: str, input_format: str) -> ParsedItem:
    role = raw.get("role")
    if not isinstance(role, str) or role not in CONTENT_TYPES:
        raise invalid("item.role", role, "expected system, user or assistant")
    content = raw.get("content")
    if not isinstance(content, list):
        raise missing("item.content")
    parts: list[dict[str, Any]] = []
    audio = bytearray()
    has_audio = False
    for n, part in enumerate(content):
        where = f"item.content[{n}]"
        ptype = part.get("type") if isinstance(part, Mapping) else None
        if ptype not in CONTENT_TYPES[role]:
            if role == "assistant" and ptype == "output_audio":
                raise _Reject(
                    "invalid_value",
                    "Cannot populate assistant audio messages: send the transcript as output_text.",
                    f"{where}.type",
                )
            allowed = ", ".join(CONTENT_TYPES[role])
            raise invalid(f"{where}.type", ptype, f"{role} messages take {allowed}")
        assert isinstance(part, Mapping)
        if ptype in ("input_text", "output_text"):
            parts.append({"type": ptype, "text": required_text(part, "text", where)})
        elif ptype == "input_audio":
            has_audio = True
            audio += b64decode(part.get("audio"), f"{where}.audio")
            parts.append({"type": ptype, "transcript": part.get("transcript")})
        else:
            url = required_text(part, "image_url", where)
            parts.append({"type": ptype, "image_url": url, "detail": part.get("detail", "auto")})
    audio_ms = audio_ms_from_size(len(audio), input_format) if has_audio else None
    shown = {"id": item_id, "type": "message", "role": role, "content": parts}
    try:
        item = item_from_wire(shown, audio_ms=audio_ms)
    except InputFormatError as exc:
        raise _Reject("invalid_value", str(exc), "item") from None
    # The envelope is the codec's; the content is the client's parts (the real server shows
    # them as sent: an image's detail "auto", an audio part's transcript null, each part).
    wire = {**item_to_wire(item, status="completed"), "content": parts}
    return ParsedItem(item, wire, bytes(audio) if has_audio else None)


class ConversationHandlers(SessionBase):
    """`FakeSession`'s handlers of the ``conversation.item.*`` client events."""

    def _item_create(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        previous = event.get("previous_item_id")
        if previous is not None and not isinstance(previous, str):
            raise invalid("previous_item_id", previous, "expected an item id or 'root'")
        item, wire, audio = parse_item(
            event.get("item"), self._new_item_id, self._audio_format("input")
        )
        assert item.id is not None
        try:
            self.model.create_item(item, previous)
        except ServerModelError as exc:
            param = "item.id" if exc.code == "item_id_exists" else "previous_item_id"
            raise _Reject(exc.code, str(exc), param) from None
        self._items[item.id] = wire
        if audio is not None:
            # Re-sent audio is heard again: the words of `say` clips travel in the bytes.
            self._audio[item.id] = audio
            self._heard[item.id] = hear(audio, self._audio_format("input"))
        return self._added_done(item.id)

    def _item_id(self, event: Mapping[str, Any]) -> str:
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            raise missing("item_id")
        if item_id not in self._items:
            raise _Reject("item_not_found", f"Item with item_id '{item_id}' not found.", "item_id")
        return item_id

    def _settled_item_id(self, event: Mapping[str, Any]) -> str:
        """The event's ``item_id``, which no response may still be generating."""
        item_id = self._item_id(event)
        if any(a.in_band and a.item.id == item_id for a in self._active.values()):
            raise _Reject(
                "unsupported_by_fake",
                "The fake server does not model changing an item while its response is in"
                " progress; cancel the response first.",
                "item_id",
            )
        return item_id

    def _item_delete(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        item_id = self._settled_item_id(event)
        self.model.delete_item(item_id)
        del self._items[item_id]
        self._audio.pop(item_id, None)
        self._heard.pop(item_id, None)
        return [self._event("conversation.item.deleted", item_id=item_id)]

    def _item_truncate(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        item_id = self._settled_item_id(event)
        content_index = event.get("content_index", 0)
        audio_end_ms = event.get("audio_end_ms")
        if content_index != 0:
            raise invalid("content_index", content_index, "assistant audio is content 0")
        if type(audio_end_ms) is not int:
            raise missing("audio_end_ms")
        try:
            self.model.truncate_item(item_id, audio_end_ms)
        except ServerModelError as exc:
            raise _Reject(exc.code, str(exc), server_param(exc)) from None
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
