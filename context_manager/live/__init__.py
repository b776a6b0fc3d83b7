"""The live path: the one reader of server events, and the engine that reacts to it.

`SessionMirror` reads a Realtime session's server events and reports typed changes;
`ContextEngine` reacts to them (history, calibration, compaction, rollover) and asks for
records to be persisted. Neither does I/O: the ``openai`` adapter is `context_manager.realtime`.
"""

from __future__ import annotations

from .calibration import Calibration
from .changes import (
    Change,
    Forecast,
    ItemAdded,
    ItemDeleted,
    RateLimits,
    ResponseDone,
    ServerError,
    SessionBegan,
    SessionChanged,
    TranscriptArrived,
)
from .engine import ContextEngine
from .history import CallHistory, Entry
from .mirror import SessionMirror
from .records import (
    Compacted,
    ItemChanged,
    ItemStored,
    ItemsTruncated,
    Record,
    ResponseOutcome,
    SeedLinked,
    SessionEnded,
    SessionStarted,
)

__all__ = [
    "Calibration",
    "CallHistory",
    "Change",
    "Compacted",
    "ContextEngine",
    "Entry",
    "Forecast",
    "ItemAdded",
    "ItemChanged",
    "ItemDeleted",
    "ItemStored",
    "ItemsTruncated",
    "RateLimits",
    "Record",
    "ResponseDone",
    "ResponseOutcome",
    "SeedLinked",
    "ServerError",
    "SessionBegan",
    "SessionChanged",
    "SessionEnded",
    "SessionMirror",
    "SessionStarted",
    "TranscriptArrived",
]
