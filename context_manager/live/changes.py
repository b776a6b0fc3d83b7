"""What one server event changed, as `SessionMirror` reports it.

The live engine reacts to these changes and never reads an event itself. Also here: the
`Forecast` of the next response.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..items import Item
from .records import ResponseOutcome, TranscriptionBilled

__all__ = [
    "AudioCommitted",
    "TranscriptionBilled",
    "Change",
    "Forecast",
    "ItemAdded",
    "ItemDeleted",
    "RateLimits",
    "ResponseDone",
    "ServerError",
    "SessionBegan",
    "SessionChanged",
    "TranscriptArrived",
]


@dataclass(frozen=True, slots=True)
class SessionBegan:
    """A new server session (``session.created``), with its session object."""

    index: int
    session: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """The session's settings changed (``session.updated``): the changed fields."""

    session: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ItemAdded:
    """A new input item of the conversation, with its server id.

    `modelled` is false for an item the model cannot place (audio of unknown length): it is
    still the client's to remember, with ``audio_ms=0``.
    """

    item: Item
    modelled: bool = True


@dataclass(frozen=True, slots=True)
class TranscriptArrived:
    """An item's transcript arrived (``conversation.item.done`` or input transcription)."""

    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ItemDeleted:
    """The server deleted an item (``conversation.item.deleted``)."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """A ``response.done``: its outcome (in band or out of band)."""

    outcome: ResponseOutcome


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server's ``error`` event's error object."""

    error: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The server's ``rate_limits.updated``."""

    limits: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class AudioCommitted:
    """The input audio buffer was committed as the user item `item_id`.

    `start_ms`/`end_ms` are the voice activity marks on the session's input audio timeline
    (milliseconds since its first appended audio); ``None`` for a manual commit, which takes
    the whole buffer.
    """

    item_id: str
    start_ms: int | None
    end_ms: int | None


Change = (
    SessionBegan
    | SessionChanged
    | ItemAdded
    | TranscriptArrived
    | ItemDeleted
    | ResponseDone
    | ServerError
    | RateLimits
    | AudioCommitted
    | TranscriptionBilled
)
"""What one server event changed, as the mirror reports it."""


@dataclass(frozen=True, slots=True)
class Forecast:
    """What the next response would do to the context, as the model predicts it."""

    history_tokens: int
    history_limit: int
    drops: tuple[str, ...]
    """Server ids of the items truncation would drop."""
    overflow: bool
    """The response would fail (``disabled`` truncation, or one item larger than the limit)."""

    @property
    def fill(self) -> float:
        """History tokens as a fraction of the limit."""
        return self.history_tokens / self.history_limit if self.history_limit else math.inf
