"""A ``response.create``'s parameters, checked, and the request an out-of-band response makes.

`parse_request` checks the ``response`` object as strictly as the real server (unknown keys,
modalities, ``max_output_tokens``, ``metadata`` limits) and gives a `ResponseRequest`.
`out_of_band_model` builds the request of a ``conversation: "none"`` response: a copy of the
session's `ServerModel` (same cache and clock, so the request is cached and priced like any
other) holding only the response's ``input`` (item references and inline items) under its
own instructions and tools; nothing in it joins the conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import BudgetExceededError, ConfigurationError
from ..items import Item
from ..server.model import ServerModel
from .conversation import parse_item
from .errors import _Reject, invalid, missing
from .speech import hear

__all__ = [
    "RESPONSE_KEYS",
    "ResponseRequest",
    "apply_overrides",
    "out_of_band_model",
    "parse_request",
]

RESPONSE_KEYS = frozenset(
    {
        "audio",
        "conversation",
        "input",
        "instructions",
        "max_output_tokens",
        "metadata",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
    }
)
"""The keys of a ``response.create``'s ``response``; any other is an unknown parameter."""

_METADATA_PAIRS, _METADATA_KEY, _METADATA_VALUE = 16, 64, 512


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    """A ``response.create``'s parameters, as `parse_request` checked them."""

    in_band: bool
    """``conversation: "auto"``: the output joins the conversation."""
    modalities: list[str]
    """``["audio"]`` or ``["text"]``."""
    instructions: str | None = None
    """The response's own instructions (``None``: the session's)."""
    tools: list[dict[str, Any]] | None = None
    """The response's own tools (``None``: the session's)."""
    input: list[Any] | None = None
    """The raw ``input`` (``None``: the whole conversation)."""
    max_output_tokens: int | str | None = None
    """The response's cap, as given (``None``: the session's)."""
    metadata: dict[str, str] | None = None
    """Echoed in the response object."""


def parse_request(params: object, session: Mapping[str, Any], cap: int) -> ResponseRequest:
    """Check a ``response.create``'s ``response`` (`session` is the session object).

    Raises:
        _Reject: an unknown key or a value the real server refuses; a custom ``input`` for a
            response in the conversation (``unsupported_by_fake``).
    """
    if not isinstance(params, Mapping):
        raise invalid("response", params, "expected an object")
    for key in params:
        if key not in RESPONSE_KEYS:
            raise _Reject(
                "unknown_parameter", f"Unknown parameter: 'response.{key}'.", f"response.{key}"
            )
    conversation = params.get("conversation", "auto")
    if conversation not in ("auto", "none"):
        raise invalid("response.conversation", conversation, "expected 'auto' or 'none'")
    modalities = params.get("output_modalities", session["output_modalities"])
    if modalities not in (["audio"], ["text"]):
        raise invalid("response.output_modalities", modalities, "expected ['audio'] or ['text']")
    instructions = params.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("response.instructions", instructions, "expected a string")
    tools = params.get("tools")
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools)
    ):
        raise invalid("response.tools", tools, "expected a list of tool objects")
    source = params.get("input")
    if source is not None and not isinstance(source, list):
        raise invalid("response.input", source, "expected a list of items")
    if source is not None and conversation == "auto":
        raise _Reject(
            "unsupported_by_fake",
            "The fake server models a custom input for out-of-band responses only"
            " (conversation: 'none').",
            "response.input",
        )
    limit = params.get("max_output_tokens")
    if limit is not None and limit != "inf" and not (type(limit) is int and 1 <= limit <= cap):
        raise invalid("response.max_output_tokens", limit, f"expected 1 to {cap} or 'inf'")
    return ResponseRequest(
        in_band=conversation == "auto",
        modalities=list(modalities),
        instructions=instructions,
        tools=None if tools is None else [dict(t) for t in tools],
        input=source,
        max_output_tokens=limit,
        metadata=_metadata(params.get("metadata")),
    )


def _metadata(value: object) -> dict[str, str] | None:
    """``metadata``: at most 16 pairs, keys up to 64 characters, string values up to 512."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or len(value) > _METADATA_PAIRS:
        raise invalid("response.metadata", value, "expected an object of at most 16 pairs")
    for key, text in value.items():
        if not isinstance(key, str) or len(key) > _METADATA_KEY:
            raise invalid("response.metadata", key, "expected keys of at most 64 characters")
        if not isinstance(text, str) or len(text) > _METADATA_VALUE:
            raise invalid(
                f"response.metadata.{key}", text, "expected a string of at most 512 characters"
            )
    return dict(value)


def apply_overrides(model: ServerModel, request: ResponseRequest) -> None:
    """Give `model` the response's own instructions and tools, if it has any."""
    if request.instructions is None and request.tools is None:
        return
    try:
        model.update_session(instructions=request.instructions, tools=request.tools)
    except (BudgetExceededError, ConfigurationError) as exc:
        raise _Reject("invalid_value", str(exc), "response.instructions") from None


def out_of_band_model(
    model: ServerModel,
    request: ResponseRequest,
    new_id: Callable[[], str],
    input_format: str,
    heard: dict[str, str],
) -> ServerModel:
    """The request of an out-of-band response: `model`'s copy holding the response's input.

    The copy shares `model`'s prompt cache. Referenced items keep their place (and so their
    cached prefix) when they are in the conversation's order before any inline item;
    otherwise every input item is a new one, in the input's order. `heard` (item id -> the
    words said in its audio) learns the words of inline and copied user audio items.

    Raises:
        _Reject: an unknown item reference or an inline item the real server refuses.
    """
    twin = model.fork()
    twin.cache = model.cache  # cached like any other request
    apply_overrides(twin, request)
    if request.input is None:
        return twin
    held = {item.id: item for item in twin.items}
    entries: list[tuple[bool, Item]] = []  # (referenced?, item)
    for n, raw in enumerate(request.input):
        if isinstance(raw, Mapping) and raw.get("type") == "item_reference":
            item_id = raw.get("id")
            if not isinstance(item_id, str):
                raise missing(f"response.input[{n}].id")
            if item_id not in held:
                raise _Reject(
                    "item_not_found",
                    f"Item with item_id '{item_id}' not found.",
                    f"response.input[{n}].id",
                )
            entries.append((True, held[item_id]))
        else:
            try:
                parsed = parse_item(raw, new_id, input_format)
            except _Reject as exc:
                param = (exc.param or "item").replace("item", f"response.input[{n}]", 1)
                raise _Reject(exc.code, exc.message, param) from None
            if parsed.audio is not None and parsed.item.id is not None:
                heard[parsed.item.id] = hear(parsed.audio, input_format)
            entries.append((False, parsed.item))
    _keep_only(twin, entries, new_id, heard)
    return twin


def _keep_only(
    twin: ServerModel,
    entries: Sequence[tuple[bool, Item]],
    new_id: Callable[[], str],
    heard: dict[str, str],
) -> None:
    """Leave `twin` holding the input `entries`, in order (see `out_of_band_model`)."""
    order = [item.id for item in twin.items]
    refs = [item.id for referenced, item in entries if referenced]
    positions = [order.index(i) for i in refs]
    kinds = [referenced for referenced, _ in entries]
    # In place: the references first, in the conversation's order, each once.
    in_place = kinds == sorted(kinds, reverse=True) and positions == sorted(set(positions))
    keep = set(refs) if in_place else set()
    for item_id in order:
        if item_id not in keep and item_id is not None:
            twin.delete_item(item_id)
    for referenced, item in entries:
        if referenced and in_place:
            continue
        if referenced:
            copy_id = new_id()
            if item.id in heard:
                heard[copy_id] = heard[item.id]
            item = replace(item, id=copy_id)
        twin.create_item(item)
