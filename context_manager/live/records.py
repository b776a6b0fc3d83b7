"""What the live engine asks to be persisted, in order: one record type per fact of the call.

Every record has a ``kind`` (its discriminator: ``session_started``, ``item_stored``, ...), so
a recorder can dispatch on it, and a store can keep them as rows. `ResponseOutcome` is both
the mirror's figures of one ``response.done`` (predicted beside observed, each priced once)
and the record of that response's usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputFormatError
from ..items import Item
from ..profiles import Prices
from ..server import Cost, Usage, price
from ..tokens import ModalityTokens

__all__ = [
    "Compacted",
    "ItemChanged",
    "ItemStored",
    "ItemsTruncated",
    "Record",
    "ResponseOutcome",
    "SeedLinked",
    "SessionEnded",
    "SessionStarted",
    "TranscriptionBilled",
    "TranscriptionUsage",
    "TurnInProgress",
    "TurnsNotCarried",
]


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """One ``response.done``: the model's prediction beside the server's report, priced.

    In band or out of band (``conversation: "none"``), every response the server reports
    costs money and has an outcome.
    """

    session: int
    """0-based index of the session (``session.created`` count) the response belongs to."""
    response: int
    """0-based response number in its session (-1 out of band: no response of the
    conversation)."""
    response_id: str | None
    status: str
    predicted: Usage
    observed: Usage
    predicted_cost: Cost
    """The predicted usage at the profile's prices."""
    observed_cost: Cost
    """The observed usage at the profile's prices: what the response cost."""
    compared: bool
    """Whether it counts in a comparison: completed, in the conversation, with input tokens."""
    outputs: tuple[Item, ...] = ()
    """The response's output items, with the server's ids."""
    dropped: tuple[str, ...] = ()
    """Ids of the items the model predicts truncation dropped at this response."""
    items: int = 0
    """Conversation items in the response's input (as the model has it)."""
    in_band: bool = True
    """Whether the response belongs to the conversation (``False``: ``conversation: "none"``)."""
    modelled: bool = False
    """Whether `predicted` is the model's prediction (``False``: it could not follow; zero)."""
    metadata: Mapping[str, str] | None = None
    """The response's ``metadata`` (what the application tagged it with), when it had one."""
    kind: Literal["response"] = field(default="response", init=False, repr=False)

    @property
    def input_error(self) -> int:
        """Observed minus predicted input tokens (positive: the model under-counted)."""
        return self.observed.input_tokens - self.predicted.input_tokens


_ZERO = Usage(input=ModalityTokens(), cached=ModalityTokens(), output=ModalityTokens())
"""No tokens (`Usage.from_dict` of an empty usage): immutable, so made once."""


def read_usage(response: Mapping[str, Any]) -> tuple[Usage, bool]:
    """A ``response.done``'s reported usage, and whether it read (unreadable: zero)."""
    try:
        return Usage.from_dict(response.get("usage") or {}), True
    except InputFormatError:
        return _ZERO, False


def reported_status(response: Mapping[str, Any]) -> str:
    """A ``response.done``'s status (``completed`` when it gives none)."""
    return str(response.get("status") or "completed")


def outcome_of(
    response: Mapping[str, Any], /, *, session: int, prices: Prices, observed: Usage, **figures: Any
) -> ResponseOutcome:
    """The outcome of a ``response.done``'s response whose usage read as `observed`.

    `figures` are the model's (`ResponseOutcome` fields); without them it is unpredicted:
    response -1, out of band, zero predicted. Built once, with every field, as the mirror
    records one per response.
    """
    response_id = response.get("id")
    tags = response.get("metadata")
    if "predicted_cost" not in figures:
        figures["predicted_cost"] = price(figures.get("predicted", _ZERO), prices)
    return ResponseOutcome(
        **{
            "session": session,
            "response": -1,
            "response_id": response_id if isinstance(response_id, str) else None,
            "status": reported_status(response),
            "predicted": _ZERO,
            "observed": observed,
            "observed_cost": price(observed, prices),
            "compared": False,
            "in_band": False,
            "metadata": {str(k): str(v) for k, v in tags.items()}
            if isinstance(tags, Mapping)
            else None,
            **figures,
        }
    )


def unpredicted(
    response: Mapping[str, Any], *, session: int, prices: Prices
) -> tuple[ResponseOutcome, bool]:
    """A ``response.done``'s response as the server reported it, and whether its usage read.

    Unpredicted: response -1 and out of band until the caller says otherwise.
    """
    observed, readable = read_usage(response)
    return outcome_of(response, session=session, prices=prices, observed=observed), readable


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """A server session began (``session.created``)."""

    session: int
    server_session_id: str | None
    model: str | None
    kind: Literal["session_started"] = field(default="session_started", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """A session ended: ``rollover`` (planned), ``expired`` or ``disconnected``."""

    session: int
    reason: str
    kind: Literal["session_ended"] = field(default="session_ended", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class ItemStored:
    """A new item of the call: `item.id` is its server id in `session`."""

    key: str
    item: Item
    session: int
    kind: Literal["item_stored"] = field(default="item_stored", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class ItemChanged:
    """An item's content completed (a transcript arrived): replace what was stored."""

    key: str
    item: Item
    kind: Literal["item_changed"] = field(default="item_changed", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class ItemsTruncated:
    """The server's truncation dropped these items (predicted by the mirror)."""

    keys: tuple[str, ...]
    kind: Literal["items_truncated"] = field(default="items_truncated", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Compacted:
    """A compaction the server confirmed: `keys` left the context, `summary` replaces them."""

    keys: tuple[str, ...]
    summary: str | None
    strategy: str
    session: int
    tokens_before: int
    tokens_after: int
    kind: Literal["compacted"] = field(default="compacted", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class SeedLinked:
    """Stored items were re-sent into `session` under these server ids (``{key: id}``)."""

    session: int
    server_ids: Mapping[str, str]
    kind: Literal["seed_linked"] = field(default="seed_linked", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class TurnsNotCarried:
    """User turns with no transcript (their keys) that the seed of `session` could not carry.

    Their audio was not kept (or no longer is), or a text summary covered them.
    """

    session: int
    keys: tuple[str, ...]
    kind: Literal["turns_not_carried"] = field(default="turns_not_carried", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class TranscriptionBilled:
    """Input transcription of the user item `item_id` finished, and costs money.

    Billed apart from responses, by the transcription `model`, for `seconds` of audio (the
    server's ``usage`` when it reports a duration, else the item's own length).
    """

    item_id: str
    model: str
    seconds: float
    cost_usd: float


@dataclass(frozen=True, slots=True)
class TranscriptionUsage:
    """Input transcription billed in `session` (apart from responses)."""

    session: int
    billed: TranscriptionBilled
    kind: Literal["transcription"] = field(default="transcription", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class TurnInProgress:
    """The user is speaking a turn in `session`: `audio_ms` appended so far.

    ``None``: the turn is stored as an item now, or was cleared. Noted so that a crash in the
    middle of a turn is known.
    """

    session: int
    audio_ms: int | None
    kind: Literal["turn_in_progress"] = field(default="turn_in_progress", init=False, repr=False)


Record = (
    SessionStarted
    | SessionEnded
    | ItemStored
    | ItemChanged
    | ItemsTruncated
    | Compacted
    | ResponseOutcome
    | SeedLinked
    | TurnsNotCarried
    | TranscriptionUsage
    | TurnInProgress
)
"""What the engine asks to be persisted, in order."""
