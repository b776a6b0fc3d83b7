"""A ``response.create``'s parameters, checked, and the request an out-of-band response makes.

`parse_request` checks the ``response`` object as strictly as the real server (unknown keys,
modalities, ``max_output_tokens``, ``metadata`` limits) and gives a `ResponseRequest`;
`request_params` parses its ``input`` items and gives the `ResponseParams` from which the
`ServerModel` builds the response's request, by the one rule the live engine and ``replay``
predict with (`context_manager.server.request`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..items import Item
from ..server.request import ItemRef, ResponseParams
from .conversation import parse_item
from .errors import _Reject, invalid, missing
from .speech import hear

__all__ = ["RESPONSE_KEYS", "ResponseRequest", "parse_request", "request_params"]

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
    """The raw ``input`` (``None``: the whole conversation; ``[]``: no items)."""
    max_output_tokens: int | str | None = None
    """The response's cap, as given (``None``: the session's)."""
    metadata: dict[str, str] | None = None
    """Echoed in the response object."""


def parse_request(params: object, session: Mapping[str, Any], cap: int) -> ResponseRequest:
    """Check a ``response.create``'s ``response`` (`session` is the session object).

    Raises:
        _Reject: an unknown key or a value the real server refuses.
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


def request_params(
    request: ResponseRequest,
    new_id: Callable[[], str],
    input_format: str,
    heard: dict[str, str],
) -> ResponseParams:
    """The `ResponseParams` of a checked request (`ServerModel.request_model` builds on them).

    Its ``input`` items are parsed as strictly as the real server parses them.

    `heard` (item id -> the words said in its audio) learns the words of inline audio items.

    Raises:
        _Reject: an inline item the real server refuses.
    """
    entries: list[Item | ItemRef] | None = None
    if request.input is not None:
        entries = []
        for n, raw in enumerate(request.input):
            if isinstance(raw, Mapping) and raw.get("type") == "item_reference":
                item_id = raw.get("id")
                if not isinstance(item_id, str):
                    raise missing(f"response.input[{n}].id")
                entries.append(ItemRef(item_id))
                continue
            try:
                parsed = parse_item(raw, new_id, input_format)
            except _Reject as exc:
                param = (exc.param or "item").replace("item", f"response.input[{n}]", 1)
                raise _Reject(exc.code, exc.message, param) from None
            if parsed.audio is not None and parsed.item.id is not None:
                heard[parsed.item.id] = hear(parsed.audio, input_format)
            entries.append(parsed.item)
    return ResponseParams(
        in_band=request.in_band,
        instructions=request.instructions,
        tools=None if request.tools is None else tuple(request.tools),
        output_modalities=tuple(request.modalities),
        max_output_tokens=request.max_output_tokens,
        input=None if entries is None else tuple(entries),
        metadata=request.metadata,
    )
