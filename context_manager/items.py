"""Conversation items: messages, function calls and their outputs.

Items are small frozen dataclasses: what a conversation holds, independent of the wire.
An audio message keeps its duration (``audio_ms``) and its transcript (``text``), which is
all the context model needs; the audio bytes themselves are never held.

The conversation JSONL file of DESIGN.md (`read_jsonl`, `write_jsonl`, `item_from_dict`,
`item_to_dict`) is read and written by one discriminated pydantic `TypeAdapter` over these
dataclasses themselves, with errors that give the line and the field. The Realtime wire shape
is `context_manager.wire`'s; the ``openai`` SDK's types are `context_manager.sdk`'s.

>>> item_from_dict({"type": "message", "role": "user", "text": "hi", "audio_ms": 900})
Message(role='user', text='hi', audio_ms=900, images=(), id=None, t=None)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Annotated, Any, Literal, TypeAlias

from pydantic import ConfigDict, Field, Strict, TypeAdapter, ValidationError

from ._jsonl import json_objects
from .errors import InputFormatError

__all__ = [
    "FunctionCall",
    "FunctionCallOutput",
    "Image",
    "ImageDetail",
    "Item",
    "Message",
    "Role",
    "item_from_dict",
    "item_to_dict",
    "iter_jsonl",
    "read_jsonl",
    "turn_starts",
    "write_jsonl",
]

Role = Literal["system", "user", "assistant"]
ImageDetail = Literal["auto", "low", "high"]

# What the JSONL file may hold, checked by pydantic on the dataclasses below (and never on
# construction in Python): strict scalars (no "900" for 900), no unknown keys.
_S = Strict()
_Text = Annotated[str, _S]
# One item's audio is at most a day, a conversation's clock at most a year: past these a value
# is a typo, and the figures built on it would overflow.
MOST_AUDIO_MS = 24 * 3600 * 1000
_Millis = Annotated[int, _S, Field(ge=0, le=MOST_AUDIO_MS)]
_Seconds = Annotated[float, _S, Field(ge=0, le=366 * 24 * 3600, allow_inf_nan=False)]
_FILE = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """An input image: a data URI (``data:image/png;base64,...``) or URL, and its detail level."""

    __pydantic_config__ = _FILE

    url: _Text
    detail: ImageDetail | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A system, user or assistant message.

    A text message has ``audio_ms=None``. An audio message has its duration in
    milliseconds, and ``text`` holds its transcript (``""`` when none is known).
    """

    __pydantic_config__ = _FILE

    role: Role
    text: _Text = ""
    """The text, or the transcript of the audio."""
    audio_ms: _Millis | None = None
    """Duration of the audio in milliseconds; ``None`` for a text message."""
    images: tuple[Image, ...] = ()
    """Input images (user messages only)."""
    id: _Text | None = None
    """The item's id, when it has one (the server's, or one the client chose)."""
    t: _Seconds | None = None
    """Seconds since the conversation began, when known."""

    type: Literal["message"] = field(default="message", repr=False)
    """The discriminator (the wire's and the file's ``type``); never set by hand."""

    def __post_init__(self) -> None:
        # A float (NaN, say) or a bool is no length; numpy's integers are.
        if self.audio_ms is not None and (
            isinstance(self.audio_ms, bool | float) or not 0 <= self.audio_ms <= MOST_AUDIO_MS
        ):
            raise ValueError(
                f"audio_ms must be a whole number from 0 to {MOST_AUDIO_MS:,}, got"
                f" {self.audio_ms!r}"
            )
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

    __pydantic_config__ = _FILE

    name: _Text
    call_id: _Text
    arguments: _Text = "{}"
    id: _Text | None = None
    t: _Seconds | None = None

    type: Literal["function_call"] = field(default="function_call", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallOutput:
    """The application's answer to a function call, matched by ``call_id``."""

    __pydantic_config__ = _FILE

    call_id: _Text
    output: _Text
    id: _Text | None = None
    t: _Seconds | None = None

    type: Literal["function_call_output"] = field(default="function_call_output", repr=False)


Item: TypeAlias = Message | FunctionCall | FunctionCallOutput
"""Any conversation item."""


def turn_starts(items: Sequence[Item]) -> list[int]:
    """Indices where a turn begins: each user message that follows a non-user item (or starts)."""
    users = [isinstance(i, Message) and i.role == "user" for i in items]
    return [n for n, is_user in enumerate(users) if is_user and (n == 0 or not users[n - 1])]


# ------------------------------------------------------------------------- the JSONL format

_ITEM = TypeAdapter[Item](Annotated[Item, Field(discriminator="type")])
_TAGS = ("message", "function_call", "function_call_output")


def item_from_dict(
    data: Mapping[str, Any], *, source: str | None = None, line: int | None = None
) -> Item:
    """Validate one JSONL record and build its item.

    Raises:
        InputFormatError: naming the field at fault (and `source`/`line` when given).
    """
    try:
        return _ITEM.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            raise InputFormatError(
                f"unknown item type {data.get('type')!r}; expected one of {', '.join(_TAGS)}",
                source=source,
                line=line,
                field="type",
            ) from exc
        if first["type"] == "value_error":  # the dataclass's own check (__post_init__)
            message = str(first["ctx"]["error"])
            raise InputFormatError(message, source=source, line=line) from exc
        # pydantic prefixes the union member's tag ("message.audio_ms"); drop it.
        loc = [str(p) for p in first["loc"]][1:]
        what = first["msg"]
        if first["type"] == "unexpected_keyword_argument":
            what = "Extra inputs are not permitted"
        got = "" if first["type"] == "missing" else f" (got {first['input']!r})"
        raise InputFormatError(
            f"{what}{got}", source=source, line=line, field=".".join(loc) or None
        ) from exc


def item_to_dict(item: Item) -> dict[str, Any]:
    """The JSONL record of an item, leaving out fields at their defaults."""
    fields: dict[str, Any] = _ITEM.dump_python(item, mode="json", exclude_defaults=True)
    return {"type": item.type, **fields}


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
