"""What the adapter tells the application, beside the server's own events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ConnectionLostEvent", "RolloverEvent"]


@dataclass(frozen=True, slots=True)
class RolloverEvent:
    """The call moved to a new session."""

    reason: str
    """``rollover`` (planned), ``expired``, ``disconnected`` or ``resume`` (a stored call)."""
    session: int
    """0-based index of the new session in the call."""
    seed_items: int
    seed_tokens: int
    attempts: int = 1
    """Sessions opened to get there (more than one when a drop hit the switch itself)."""
    lost_turn_ms: int = 0
    """On ``resume``: audio of a user turn the caller was speaking when the call's last
    process died, never stored, so lost (its session in the store keeps the figure). An
    application can ask the caller to say it again."""
    type: Literal["context_manager.rollover"] = "context_manager.rollover"


@dataclass(frozen=True, slots=True)
class ConnectionLostEvent:
    """The adapter gave up: no new session could be opened and seeded.

    It is the last event of the connection: `recv` raises `RolloverError` after it, and
    ``async for`` ends. Everything the application sent is in the store (when it has one), so
    a later `connect` with the same ``conversation_id`` resumes the call.
    """

    reason: str
    """What the adapter was recovering from (``rollover``, ``expired``, ``disconnected``)."""
    attempts: int
    """Sessions it tried to open and seed."""
    error: str
    """The last failure, by type and code (no conversation text)."""
    type: Literal["context_manager.connection_lost"] = "context_manager.connection_lost"
