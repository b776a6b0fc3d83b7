"""Conversation items: messages, function calls and their outputs.

Items are small frozen dataclasses: what a conversation holds, independent of the wire.
An audio message keeps its duration (``audio_ms``) and its transcript (``text``), which is
all the context model needs; the audio bytes themselves are never held.

Two edges convert items:

* the conversation JSONL file of DESIGN.md (`read_jsonl`, `write_jsonl`, `item_from_dict`,
  `item_to_dict`), validated with errors that give the line and the field;
* the ``openai`` SDK's realtime item types (`to_realtime_item`, `from_realtime_item`): the
  server's item objects and the ``conversation.item.create`` item shape. ``openai`` is
  imported only when these are called, so ``import context_manager`` does not need it.

The Realtime item objects carry no duration and no time: audio arrives as bytes, or not
at all (the server omits it from ``conversation.item.done``). `from_realtime_item` therefore
takes the duration and time from the caller, or measures the duration from the bytes.

>>> item_from_dict({"type": "message", "role": "user", "text": "hi", "audio_ms": 900})
Message(role='user', text='hi', audio_ms=900, images=(), id=None, t=None)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ._jsonl import json_objects
from .errors import InputFormatError

if TYPE_CHECKING:
    from openai.types.realtime import ConversationItem

__all__ = [
    "FunctionCall",
    "FunctionCallOutput",
    "Image",
    "ImageDetail",
    "Item",
    "Message",
    "Role",
    "audio_ms_from_bytes",
    "from_realtime_item",
    "item_from_dict",
    "item_to_dict",
    "iter_jsonl",
    "read_jsonl",
    "to_realtime_item",
    "turn_starts",
    "write_jsonl",
]

Role = Literal["system", "user", "assistant"]
ImageDetail = Literal["auto", "low", "high"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """An input image: a data URI (``data:image/png;base64,...``) or URL, and its detail level."""

    url: str
    detail: ImageDetail | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A system, user or assistant message.

    A text message has ``audio_ms=None``. An audio message has its duration in
    milliseconds, and ``text`` holds its transcript (``""`` when none is known).
    """

    role: Role
    text: str = ""
    """The text, or the transcript of the audio."""
    audio_ms: int | None = None
    """Duration of the audio in milliseconds; ``None`` for a text message."""
    images: tuple[Image, ...] = ()
    """Input images (user messages only)."""
    id: str | None = None
    """The item's id, when it has one (the server's, or one the client chose)."""
    t: float | None = None
    """Seconds since the conversation began, when known."""

    type: Literal["message"] = field(default="message", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.audio_ms is not None and self.audio_ms < 0:
            raise ValueError(f"audio_ms must be >= 0, got {self.audio_ms}")
        if self.audio_ms is not None and self.role == "system":
            raise ValueError("a system message cannot carry audio")
        if self.images and self.role != "user":
            raise ValueError(f"only user messages carry images, not {self.role} messages")

    @property
    def is_audio(self) -> bool:
        """Whether the message is audio (its ``text`` is then a transcript)."""
        return self.audio_ms is not None

    def as_text(self) -> Message:
        """The same message as text: an audio message becomes its transcript.

        This is how history is re-sent to a new session, since assistant audio cannot be
        re-created by ``conversation.item.create``.
        """
        return self if self.audio_ms is None else replace(self, audio_ms=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCall:
    """The model's call of a tool: its name, call id and JSON-encoded arguments."""

    name: str
    call_id: str
    arguments: str = "{}"
    id: str | None = None
    t: float | None = None

    type: Literal["function_call"] = field(default="function_call", init=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallOutput:
    """The application's answer to a function call, matched by ``call_id``."""

    call_id: str
    output: str
    id: str | None = None
    t: float | None = None

    type: Literal["function_call_output"] = field(
        default="function_call_output", init=False, repr=False
    )


Item: TypeAlias = Message | FunctionCall | FunctionCallOutput
"""Any conversation item."""


def turn_starts(items: Sequence[Item]) -> list[int]:
    """Indices where a turn begins: each user message that follows a non-user item (or starts)."""
    users = [isinstance(i, Message) and i.role == "user" for i in items]
    return [n for n, is_user in enumerate(users) if is_user and (n == 0 or not users[n - 1])]


# ------------------------------------------------------------------------- the JSONL format
# The file format is validated with pydantic at this edge only; inside, items are dataclasses.

_FORBID = ConfigDict(extra="forbid", strict=True)


class _ImageRecord(BaseModel):
    model_config = _FORBID
    url: str
    detail: ImageDetail | None = None


class _RecordBase(BaseModel):
    # What every line may carry besides its own fields.
    model_config = _FORBID
    id: str | None = None
    t: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class _MessageRecord(_RecordBase):
    type: Literal["message"]
    role: Role
    text: str = ""
    audio_ms: int | None = Field(default=None, ge=0)
    images: list[_ImageRecord] = Field(default_factory=list)


class _FunctionCallRecord(_RecordBase):
    type: Literal["function_call"]
    name: str
    call_id: str
    arguments: str = "{}"


class _FunctionCallOutputRecord(_RecordBase):
    type: Literal["function_call_output"]
    call_id: str
    output: str


_Record = Annotated[
    _MessageRecord | _FunctionCallRecord | _FunctionCallOutputRecord, Field(discriminator="type")
]
_RECORD = TypeAdapter[Any](_Record)


def _t(value: float | int | None) -> float | None:
    # JSON has one number type; `t` is a float whether the file wrote 12 or 12.0.
    return None if value is None else float(value)


def item_from_dict(
    data: Mapping[str, Any], *, source: str | None = None, line: int | None = None
) -> Item:
    """Validate one JSONL record and build its item.

    Raises:
        InputFormatError: naming the field at fault (and `source`/`line` when given).
    """
    try:
        record = _RECORD.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            raise InputFormatError(
                f"unknown item type {data.get('type')!r}; expected one of"
                " message, function_call, function_call_output",
                source=source,
                line=line,
                field="type",
            ) from exc
        loc = [str(p) for p in first["loc"]]
        # pydantic prefixes the union member's tag ("message.audio_ms"); drop it.
        if loc and loc[0] in {"message", "function_call", "function_call_output"}:
            loc = loc[1:]
        got = "" if first["type"] == "missing" else f" (got {first['input']!r})"
        raise InputFormatError(
            f"{first['msg']}{got}", source=source, line=line, field=".".join(loc) or None
        ) from exc
    if isinstance(record, _MessageRecord):
        images = tuple(Image(url=i.url, detail=i.detail) for i in record.images)
        try:
            return Message(
                role=record.role,
                text=record.text,
                audio_ms=record.audio_ms,
                images=images,
                id=record.id,
                t=_t(record.t),
            )
        except ValueError as exc:
            raise InputFormatError(str(exc), source=source, line=line) from exc
    if isinstance(record, _FunctionCallRecord):
        return FunctionCall(
            name=record.name,
            call_id=record.call_id,
            arguments=record.arguments,
            id=record.id,
            t=_t(record.t),
        )
    return FunctionCallOutput(
        call_id=record.call_id, output=record.output, id=record.id, t=_t(record.t)
    )


def item_to_dict(item: Item) -> dict[str, Any]:
    """The JSONL record of an item, leaving out fields at their defaults."""
    out: dict[str, Any] = {"type": item.type}
    if isinstance(item, Message):
        out["role"] = item.role
        if item.text:
            out["text"] = item.text
        if item.audio_ms is not None:
            out["audio_ms"] = item.audio_ms
        if item.images:
            out["images"] = [
                {"url": i.url} | ({"detail": i.detail} if i.detail else {}) for i in item.images
            ]
    elif isinstance(item, FunctionCall):
        out |= {"name": item.name, "call_id": item.call_id, "arguments": item.arguments}
    else:
        out |= {"call_id": item.call_id, "output": item.output}
    if item.id is not None:
        out["id"] = item.id
    if item.t is not None:
        out["t"] = item.t
    return out


def iter_jsonl(lines: Iterable[str], *, source: str | None = None) -> Iterator[Item]:
    r"""Parse conversation JSONL lines lazily; blank lines are skipped.

    Split a string on ``"\n"`` only, as `json_objects` explains.

    Raises:
        InputFormatError: with the 1-based line number and the field at fault.
    """
    for number, data in json_objects(lines, source=source):
        yield item_from_dict(data, source=source, line=number)


def read_jsonl(path: str | Path) -> list[Item]:
    """Read a conversation JSONL file (DESIGN.md, "Formats") into items."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as fh:
            return list(iter_jsonl(fh, source=str(p)))
    except OSError as exc:
        raise InputFormatError(f"cannot read: {exc.strerror}", source=str(p)) from exc
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"not UTF-8 text: {exc.reason}", source=str(p)) from exc


def write_jsonl(items: Iterable[Item], dest: str | Path | IO[str]) -> None:
    """Write items as conversation JSONL, one record a line."""
    if isinstance(dest, str | Path):
        with Path(dest).open("w", encoding="utf-8") as fh:
            write_jsonl(items, fh)
        return
    for item in items:
        dest.write(json.dumps(item_to_dict(item), ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------- openai realtime types

# Bytes per millisecond of each Realtime audio format (mono): PCM16 at 24 kHz, G.711 at 8 kHz.
_BYTES_PER_MS = {
    "audio/pcm": 48.0,
    "pcm16": 48.0,
    "audio/pcmu": 8.0,
    "g711_ulaw": 8.0,
    "audio/pcma": 8.0,
    "g711_alaw": 8.0,
}


def audio_ms_from_bytes(audio_b64: str, audio_format: str = "audio/pcm") -> int:
    """Duration in whole milliseconds of base64 audio in a Realtime format.

    >>> import base64
    >>> audio_ms_from_bytes(base64.b64encode(bytes(48 * 250)).decode())
    250
    """
    if audio_format not in _BYTES_PER_MS:
        raise InputFormatError(
            f"unknown audio format {audio_format!r}; known: {', '.join(sorted(_BYTES_PER_MS))}"
        )
    raw = len(audio_b64) * 3 // 4 - audio_b64[-2:].count("=")  # decoded size, without decoding
    return int(raw // _BYTES_PER_MS[audio_format])


def to_realtime_item(item: Item) -> ConversationItem:
    """The ``openai`` SDK's realtime item for `item` (the server's item object shape).

    ``.model_dump(exclude_none=True)`` of the result is a valid ``conversation.item.create``
    item, except for assistant audio, which the server does not let a client create: send
    ``item.as_text()`` instead (DESIGN.md, "Sessions").
    """
    from openai.types.realtime import (
        RealtimeConversationItemAssistantMessage as Assistant,
    )
    from openai.types.realtime import (
        RealtimeConversationItemFunctionCall as Call,
    )
    from openai.types.realtime import (
        RealtimeConversationItemFunctionCallOutput as CallOutput,
    )
    from openai.types.realtime import (
        RealtimeConversationItemSystemMessage as System,
    )
    from openai.types.realtime import (
        RealtimeConversationItemUserMessage as User,
    )

    if isinstance(item, FunctionCall):
        return Call(
            type="function_call",
            name=item.name,
            call_id=item.call_id,
            arguments=item.arguments,
            id=item.id,
        )
    if isinstance(item, FunctionCallOutput):
        return CallOutput(
            type="function_call_output", call_id=item.call_id, output=item.output, id=item.id
        )
    if item.role == "system":
        return System(
            type="message",
            role="system",
            id=item.id,
            content=[{"type": "input_text", "text": item.text}],
        )
    if item.role == "user":
        parts: list[dict[str, Any]] = []
        if item.audio_ms is not None:
            parts.append({"type": "input_audio", "transcript": item.text or None})
        elif item.text or not item.images:
            parts.append({"type": "input_text", "text": item.text})
        parts.extend(
            {"type": "input_image", "image_url": i.url, "detail": i.detail} for i in item.images
        )
        return User.model_validate(
            {"type": "message", "role": "user", "id": item.id, "content": parts}
        )
    part = (
        {"type": "output_audio", "transcript": item.text}
        if item.audio_ms is not None
        else {"type": "output_text", "text": item.text}
    )
    return Assistant.model_validate(
        {"type": "message", "role": "assistant", "id": item.id, "content": [part]}
    )


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def from_realtime_item(
    obj: ConversationItem | Mapping[str, Any],
    *,
    audio_ms: int | None = None,
    t: float | None = None,
    audio_format: str = "audio/pcm",
) -> Item:
    """Build an item from a Realtime item object (an ``openai`` model or its JSON dict).

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
    kind = _field(obj, "type")
    item_id = _field(obj, "id")
    if kind == "function_call":
        name, call_id = _field(obj, "name"), _field(obj, "call_id")
        if not isinstance(name, str) or not isinstance(call_id, str):
            raise InputFormatError(
                "a function_call needs a name and a call_id",
                source="realtime item",
                field="call_id",
            )
        return FunctionCall(
            name=name, call_id=call_id, arguments=_field(obj, "arguments") or "", id=item_id, t=t
        )
    if kind == "function_call_output":
        call_id = _field(obj, "call_id")
        if not isinstance(call_id, str):
            raise InputFormatError(
                "a function_call_output needs a call_id", source="realtime item", field="call_id"
            )
        return FunctionCallOutput(
            call_id=call_id, output=_field(obj, "output") or "", id=item_id, t=t
        )
    if kind != "message":
        raise InputFormatError(
            f"item type {kind!r} is not modelled", source="realtime item", field="type"
        )
    role = _field(obj, "role")
    if role not in ("system", "user", "assistant"):
        raise InputFormatError(f"unknown role {role!r}", source="realtime item", field="role")
    texts: list[str] = []
    images: list[Image] = []
    has_audio = False
    audio_bytes = 0
    for part in _field(obj, "content") or []:
        ptype = _field(part, "type")
        if ptype in ("input_text", "output_text", "text"):
            texts.append(_field(part, "text") or "")
        elif ptype in ("input_audio", "output_audio", "audio"):
            has_audio = True
            texts.append(_field(part, "transcript") or "")
            data = _field(part, "audio")
            if data:
                audio_bytes += audio_ms_from_bytes(data, audio_format)
        elif ptype == "input_image":
            images.append(Image(url=_field(part, "image_url") or "", detail=_field(part, "detail")))
    if has_audio and audio_ms is None:
        if not audio_bytes:
            raise InputFormatError(
                "audio content carries no bytes; pass audio_ms (the duration the server"
                " reported in input_audio_buffer or output_audio events)",
                source="realtime item",
                field="audio_ms",
            )
        audio_ms = audio_bytes
    return Message(
        role=role,
        text="".join(texts),
        audio_ms=audio_ms if has_audio else None,
        images=tuple(images),
        id=item_id,
        t=t,
    )
