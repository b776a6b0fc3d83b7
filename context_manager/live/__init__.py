"""The live path: the one reader of server events, and the engine that reacts to it.

`SessionMirror` reads a Realtime session's server events and reports typed changes;
`ContextEngine` reacts to them (history, the user's audio in `AudioKeeper`, calibration,
compaction, rollover) and asks for
records to be persisted. Neither does I/O: the ``openai`` adapter is `context_manager.realtime`.
"""

from __future__ import annotations

from .audio import AudioKeeper, KeptAudio
from .calibration import Calibration
from .changes import (
    AudioCommitted,
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
    TranscriptionBilled,
    TranscriptionUsage,
    TurnsNotCarried,
)

__all__ = [
    "AudioCommitted",
    "AudioKeeper",
    "Calibration",
    "CallHistory",
    "Change",
    "Compacted",
    "ContextEngine",
    "Entry",
    "Forecast",
    "KeptAudio",
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
    "TranscriptionBilled",
    "TranscriptionUsage",
    "TurnsNotCarried",
]
