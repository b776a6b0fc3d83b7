"""What a ``response.create`` asks for: the response's own parameters, and how its request is built.

Every response's request is built by one rule (`ServerModel.create_response` with
`ResponseParams`; docs/server-model.md, "The request of a response", gives each rule's source):

* ``instructions`` and ``tools`` of the response replace the session's for this request only
  (documented); they lead the request, so a response with its own instructions starts a new
  cached prefix there (follows from the cache rule; no recording has one).
* ``conversation: "none"`` (out of band): nothing the response outputs joins the conversation
  (documented). Its request is priced against the session's prompt cache like any other.
* ``input``: the request holds these items, in this order, instead of the conversation
  (documented). An item reference stands for the conversation's item as it is (its cache key
  too, so references in the conversation's order from its start share its cached prefix: a
  guess); an inline item is new. With no ``input``, the request holds the whole conversation
  (documented for out-of-band responses).
* Truncation applies to a custom request's items as to the conversation's, and drops nothing
  from the conversation (a guess: no recording reached the limit with ``input``).
* ``tool_choice``, ``output_modalities`` and ``max_output_tokens`` shape the output, not the
  input: the model keeps them, and counts no tokens for them (a guess).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import InputFormatError, ServerModelError
from ..items import Item
from ..wire import audio_ms_from_size, base64_size, item_from_wire
from .pricing import Cost
from .usage import Usage

if TYPE_CHECKING:
    from .model import ServerModel

__all__ = ["ItemRef", "ResponseParams", "ResponseResult", "custom_response", "request_model"]

_REQUESTS = itertools.count()


@dataclass(frozen=True, slots=True)
class ItemRef:
    """An ``item_reference`` in a response's ``input``: the conversation's item `id`."""

    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseParams:
    """A ``response.create``'s own parameters (``None``: the session's)."""

    in_band: bool = True
    """``conversation: "auto"``: the output joins the conversation (``False``: ``"none"``)."""
    instructions: str | None = None
    tools: tuple[Mapping[str, Any], ...] | None = None
    tool_choice: Any = None
    output_modalities: tuple[str, ...] | None = None
    max_output_tokens: int | str | None = None
    """The response's cap as given (an int or ``"inf"``)."""
    input: tuple[Item | ItemRef, ...] | None = None
    """The request's items instead of the conversation (``None``: the conversation)."""
    metadata: Mapping[str, str] | None = None

    @property
    def plain(self) -> bool:
        """Whether the request is the conversation's under the session's settings."""
        return (
            self.in_band and self.instructions is None and self.tools is None and self.input is None
        )

    @classmethod
    def from_wire(
        cls, params: Mapping[str, Any], *, audio_format: str = "audio/pcm"
    ) -> tuple[ResponseParams, list[str]]:
        """Read a ``response.create``'s ``response`` leniently (a log or a live call).

        What cannot be read is left to the session's setting and named in the notes (no
        content of the call in them): the server, not this reader, judges the request.
        """
        notes: list[str] = []
        instructions = params.get("instructions")
        tools = params.get("tools")
        if tools is not None and not (
            isinstance(tools, list) and all(isinstance(t, Mapping) for t in tools)
        ):
            notes.append("response.create: tools unreadable, the session's used")
            tools = None
        modalities = params.get("output_modalities")
        metadata = params.get("metadata")
        source = params.get("input")
        entries: list[Item | ItemRef] | None = None
        if isinstance(source, list):
            entries = []
            for n, raw in enumerate(source):
                entry = _entry(raw, audio_format)
                if entry is None:
                    notes.append(f"response.create: input[{n}] unreadable, left out")
                else:
                    entries.append(entry)
        elif source is not None:
            notes.append("response.create: input unreadable, the conversation used")
        limit = params.get("max_output_tokens")
        return (
            cls(
                in_band=params.get("conversation", "auto") != "none",
                instructions=instructions if isinstance(instructions, str) else None,
                tools=None if tools is None else tuple(dict(t) for t in tools),
                tool_choice=params.get("tool_choice"),
                output_modalities=tuple(modalities)
                if isinstance(modalities, list) and all(isinstance(m, str) for m in modalities)
                else None,
                max_output_tokens=limit if isinstance(limit, int | str) else None,
                input=None if entries is None else tuple(entries),
                metadata={str(k): str(v) for k, v in metadata.items()}
                if isinstance(metadata, Mapping)
                else None,
            ),
            notes,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseResult:
    """What one ``response.create`` did."""

    index: int
    """0-based response number in the session (-1: out of band, not the conversation's)."""
    t: float
    """Clock time of the response."""
    usage: Usage
    """The ``response.done`` usage (all zero for a failed response)."""
    cost: Cost
    """Its cost in US dollars."""
    retained_items: int
    """Conversation items in the response's input."""
    dropped_items: tuple[str, ...] = ()
    """Ids of the items truncation dropped at this response."""
    output_item_ids: tuple[str, ...] = ()
    """Ids given to the output items."""
    error: dict[str, Any] | None = None
    """The server's ``error`` event when the response failed (overflow), else ``None``."""

    @property
    def ok(self) -> bool:
        """Whether the response was produced."""
        return self.error is None


def request_model(model: ServerModel, params: ResponseParams) -> ServerModel:
    """`ServerModel.request_model`: the copy holding the request of `params`."""
    model._check_open()
    twin = copy.copy(model)
    twin._retained = model._retained.copy()
    twin._dropped = set(model._dropped)
    twin._head = list(model._head)
    twin._tag = f"request-{next(_REQUESTS)}"
    if params.instructions is not None or params.tools is not None:
        twin.update_session(instructions=params.instructions, tools=params.tools)
    if params.input is None:
        return twin
    held = {e.item.id: e for e in model._retained.entries}
    entries = []
    for n, entry in enumerate(params.input):
        if isinstance(entry, ItemRef):
            found = held.get(entry.id)
            if found is None:
                raise ServerModelError(
                    f"Item with item_id '{entry.id}' not found.",
                    code="item_not_found",
                    param=f"response.input[{n}].id",
                )
            entries.append(found)  # as it stands, its cache key too
        else:
            item = entry if entry.id else replace(entry, id=f"item_{next(model._ids):06d}")
            entries.append(model._entry(item))
    twin._retained.reset(entries)
    twin._stable = min(twin._stable, len(twin._head))
    return twin


def custom_response(
    model: ServerModel, output: Sequence[Item], params: ResponseParams
) -> ResponseResult:
    """`ServerModel.create_response` of a request that is not the plain conversation's."""
    result = model.request_model(params).create_response(output)
    if not params.in_band:
        return replace(result, index=-1)
    index = model._responses
    model._responses += 1
    if not result.ok:
        return replace(result, index=index)
    if params.input is None and result.dropped_items:  # the conversation's own request
        model._retained.drop(len(result.dropped_items))
        model._dropped.update(result.dropped_items)
    for item, item_id in zip(output, result.output_item_ids, strict=True):
        model.create_item(replace(item, id=item_id))
    model._stable = 0  # the cached path begins with the response's own head
    return replace(result, index=index)


def _entry(raw: object, audio_format: str) -> Item | ItemRef | None:
    if not isinstance(raw, Mapping):
        return None
    if raw.get("type") == "item_reference":
        item_id = raw.get("id")
        return ItemRef(item_id) if isinstance(item_id, str) else None
    size = 0
    for part in raw.get("content") or []:
        audio = part.get("audio") if isinstance(part, Mapping) else None
        if isinstance(audio, str):
            size += base64_size(audio) or 0
    try:
        return item_from_wire(raw, audio_ms=audio_ms_from_size(size, audio_format))
    except InputFormatError:
        return None
