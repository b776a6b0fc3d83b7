"""The Realtime wire format: items and client events as dicts, audio bytes as milliseconds.

One codec for everything that speaks to or reads from a Realtime socket (the live engine and
its mirror, compaction and rollover plans, the fake server, and the ``openai`` SDK conversion
in `context_manager.sdk`, a thin layer over this one). It imports nothing from ``openai``.

* `item_to_wire` gives the Realtime item object of an item: the shape the server shows in
  ``conversation.item.*`` events and a client sends in ``conversation.item.create``.
* `item_from_wire` builds an item back from that shape. The wire carries no duration and no
  time, so the caller gives them, or the duration is measured from the audio bytes.
* `create_event` / `delete_event` are the client events of a compaction or a seed.
* `bytes_per_ms`, `base64_size` and `audio_ms_from_bytes` are the one rule for the length of
  audio: base64 text is measured from its length (never decoded) at the session's format.

Examples:
    >>> wire = item_to_wire(Message(role="assistant", text="Hello.", audio_ms=900, id="a1"))
    >>> wire["content"]
    [{'type': 'output_audio', 'transcript': 'Hello.'}]
    >>> item_from_wire(wire, audio_ms=900)
    Message(role='assistant', text='Hello.', audio_ms=900, images=(), id='a1', t=None)
    >>> audio_ms_from_bytes("AAAA" * 16, "audio/pcm")  # 48 bytes: 1 ms of PCM16 at 24 kHz
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InputFormatError
from .items import FunctionCall, FunctionCallOutput, Image, Item, Message

__all__ = [
    "AUDIO_FORMATS",
    "as_event",
    "audio_ms_from_bytes",
    "audio_ms_from_size",
    "base64_size",
    "bytes_per_ms",
    "create_event",
    "delete_event",
    "item_from_wire",
    "item_to_wire",
]

# Bytes per millisecond of each Realtime audio format (mono): PCM16 at 24 kHz, G.711 at 8 kHz.
# The beta names (pcm16, g711_*) are still sent by Azure.
AUDIO_FORMATS: Mapping[str, float] = {
    "audio/pcm": 48.0,
    "pcm16": 48.0,
    "audio/pcmu": 8.0,
    "g711_ulaw": 8.0,
    "audio/pcma": 8.0,
    "g711_alaw": 8.0,
}

_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_AUDIO_PARTS = frozenset({"input_audio", "output_audio", "audio"})


def bytes_per_ms(audio_format: str) -> float:
    """Bytes of one millisecond of audio in a Realtime audio format.

    Raises:
        InputFormatError: a format the Realtime API does not have.
    """
    try:
        return AUDIO_FORMATS[audio_format]
    except KeyError:
        known = ", ".join(sorted(AUDIO_FORMATS))
        raise InputFormatError(f"unknown audio format {audio_format!r}; known: {known}") from None


def base64_size(data: str) -> int | None:
    """Decoded bytes of base64 `data`, from its length and padding (it is never decoded).

    ``None`` for what is not base64 (a recorder's placeholder): a length that is not a
    multiple of 4, or foreign characters at either end.
    """
    if len(data) % 4 or not (_BASE64.issuperset(data[:8]) and _BASE64.issuperset(data[-8:])):
        return None
    return len(data) // 4 * 3 - data.endswith("=") - data.endswith("==")


def audio_ms_from_size(size: int, audio_format: str = "audio/pcm") -> int:
    """Whole milliseconds of `size` bytes of audio in a Realtime format."""
    return int(size // bytes_per_ms(audio_format))


def audio_ms_from_bytes(audio_b64: str, audio_format: str = "audio/pcm") -> int:
    """Duration in whole milliseconds of base64 audio in a Realtime format.

    >>> import base64
    >>> audio_ms_from_bytes(base64.b64encode(bytes(48 * 250)).decode())
    250

    Raises:
        InputFormatError: an unknown format, or text that is not base64.
    """
    size = base64_size(audio_b64)
    if size is None:
        raise InputFormatError("audio is not base64 (its length or characters)", field="audio")
    return audio_ms_from_size(size, audio_format)


# ------------------------------------------------------------------------- items


def item_to_wire(item: Item, *, status: str | None = None) -> dict[str, Any]:
    """The Realtime item object of `item` (``None`` fields left out).

    Audio messages carry their transcript, not their bytes (the item holds none). The result
    is a valid ``conversation.item.create`` item, except for assistant audio, which a client
    cannot create: send ``item.as_text()`` instead (DESIGN.md, "Sessions").
    """
    out: dict[str, Any] = {} if item.id is None else {"id": item.id}
    out["type"] = item.type
    if status is not None:
        out["status"] = status
    if isinstance(item, FunctionCall):
        out |= {"name": item.name, "call_id": item.call_id, "arguments": item.arguments}
        return out
    if isinstance(item, FunctionCallOutput):
        out |= {"call_id": item.call_id, "output": item.output}
        return out
    out["role"] = item.role
    out["content"] = _content(item)
    return out


def _content(item: Message) -> list[dict[str, Any]]:
    if item.role == "assistant":
        if item.audio_ms is not None:
            return [{"type": "output_audio", "transcript": item.text}]
        return [{"type": "output_text", "text": item.text}]
    parts: list[dict[str, Any]] = []
    if item.audio_ms is not None:
        parts.append({"type": "input_audio"} | ({"transcript": item.text} if item.text else {}))
    elif item.text or not item.images:
        parts.append({"type": "input_text", "text": item.text})
    for image in item.images:
        part = {"type": "input_image", "image_url": image.url}
        parts.append(part | ({"detail": image.detail} if image.detail else {}))
    return parts


def item_from_wire(
    obj: Mapping[str, Any],
    *,
    audio_ms: int | None = None,
    t: float | None = None,
    audio_format: str = "audio/pcm",
) -> Item:
    """Build an item from a Realtime item object (a dict, as it arrives on the socket).

    Args:
        obj: the server's item (``conversation.item.done``'s ``item``, say) or a create shape.
        audio_ms: the audio's duration, which the item object does not carry; when omitted it
            is measured from the item's audio bytes, if the object has them.
        t: seconds since the conversation began, if known.
        audio_format: the session's audio format, to measure bytes.

    Raises:
        InputFormatError: an item type this library does not model (MCP items), a missing
            field, or audio with neither bytes nor a given duration.
    """
    kind = obj.get("type")
    if kind == "function_call":
        name, call_id = obj.get("name"), obj.get("call_id")
        if not isinstance(name, str) or not isinstance(call_id, str):
            raise _bad("a function_call needs a name and a call_id", "call_id")
        arguments = _text(obj, "arguments")
        return FunctionCall(name=name, call_id=call_id, arguments=arguments, id=_id(obj), t=t)
    if kind == "function_call_output":
        call_id = obj.get("call_id")
        if not isinstance(call_id, str):
            raise _bad("a function_call_output needs a call_id", "call_id")
        return FunctionCallOutput(call_id=call_id, output=_text(obj, "output"), id=_id(obj), t=t)
    if kind != "message":
        raise _bad(f"item type {kind!r} is not modelled", "type")
    return _message(obj, audio_ms=audio_ms, t=t, audio_format=audio_format)


def _message(
    obj: Mapping[str, Any], *, audio_ms: int | None, t: float | None, audio_format: str
) -> Message:
    role = obj.get("role")
    if role not in ("system", "user", "assistant"):
        raise _bad(f"unknown role {role!r}", "role")
    texts: list[str] = []
    images: list[Image] = []
    has_audio = False
    measured = 0
    content = obj.get("content") or []
    if not isinstance(content, list):
        raise _bad("expected a list of content parts", "content")
    for part in content:
        if not isinstance(part, Mapping):
            raise _bad("expected a content part object", "content")
        ptype = part.get("type")
        if ptype in _TEXT_PARTS:
            texts.append(_text(part, "text"))
        elif ptype in _AUDIO_PARTS:
            has_audio = True
            texts.append(_text(part, "transcript"))
            data = part.get("audio")
            if data:
                measured += audio_ms_from_bytes(_text(part, "audio"), audio_format)
        elif ptype == "input_image":
            detail = part.get("detail")
            if detail not in (None, "auto", "low", "high"):
                raise _bad(f"unknown image detail {detail!r}", "detail")
            images.append(Image(url=_text(part, "image_url"), detail=detail))
    if has_audio and audio_ms is None:
        if not measured:
            raise _bad(
                "audio content carries no bytes; pass audio_ms (the duration the server"
                " reported in input_audio_buffer or output_audio events)",
                "audio_ms",
            )
        audio_ms = measured
    try:
        return Message(
            role=role,
            text="".join(texts),
            audio_ms=audio_ms if has_audio else None,
            images=tuple(images),
            id=_id(obj),
            t=t,
        )
    except ValueError as exc:  # a system message with audio, an assistant image
        raise _bad(str(exc), "content") from None


def _text(obj: Mapping[str, Any], key: str) -> str:
    """A text field of the wire (absent or null: empty)."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(f"expected a string, got {type(value).__name__}", key)
    return value


def _id(obj: Mapping[str, Any]) -> str | None:
    value = obj.get("id")
    if value is not None and not isinstance(value, str):
        raise _bad(f"expected a string id, got {type(value).__name__}", "id")
    return value


def _bad(message: str, field: str) -> InputFormatError:
    return InputFormatError(message, source="realtime item", field=field)


# ------------------------------------------------------------------------- events


def create_event(item: Item, previous_item_id: str | None = None) -> dict[str, Any]:
    """The ``conversation.item.create`` that adds `item` after `previous_item_id`.

    ``None`` appends it; ``"root"`` puts it first.
    """
    event: dict[str, Any] = {"type": "conversation.item.create", "item": item_to_wire(item)}
    if previous_item_id is not None:
        event["previous_item_id"] = previous_item_id
    return event


def delete_event(item_id: str) -> dict[str, Any]:
    """The ``conversation.item.delete`` of `item_id`."""
    return {"type": "conversation.item.delete", "item_id": item_id}


def as_event(
    event: Mapping[str, Any] | Any, *, source: str = "realtime event"
) -> Mapping[str, Any]:
    """An event as a mapping: a dict as it is, an ``openai`` SDK event model dumped to JSON.

    Raises:
        InputFormatError: neither a mapping nor a pydantic model.
    """
    if type(event) is dict or isinstance(event, Mapping):
        return event
    dump = getattr(event, "model_dump", None)
    if dump is None:
        raise InputFormatError(
            f"an event must be a dict or an openai SDK event, got {type(event).__name__}",
            source=source,
        )
    data: dict[str, Any] = dump(mode="json", by_alias=True, exclude_none=True)
    return data
