"""Replay recorded Realtime event logs through the server model: predicted vs observed.

`read_event_log` reads a log (three shapes; imperfect lines become notes), `replay` rebuilds
the session from both directions and compares every response, in tokens and dollars
(`ReplayReport`), and `fit_profile` searches the uncertain profile switches for the setting
that matches the logs best. docs/server-model.md shows the figures on the recordings in
``tests/data/realtime-logs``.
"""

from __future__ import annotations

from .fit import fit_profile, reported_reasoning_tokens
from .log import CLIENT_TYPES, EventLog, LogEvent, parse_line, read_event_log
from .report import ReplayReport, iter_rows
from .run import profile_for_model, replay

__all__ = [
    "CLIENT_TYPES",
    "EventLog",
    "LogEvent",
    "ReplayReport",
    "fit_profile",
    "iter_rows",
    "parse_line",
    "profile_for_model",
    "read_event_log",
    "replay",
    "reported_reasoning_tokens",
]
