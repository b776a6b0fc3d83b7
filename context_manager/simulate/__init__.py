"""Simulations: calls run against the server model, one by one or many at once."""

from __future__ import annotations

from .reference import (
    GAP_SECONDS,
    Rollover,
    SimulationResult,
    Turn,
    plan_turns,
    simulate_call,
    simulate_conversation,
)

__all__ = [
    "GAP_SECONDS",
    "Rollover",
    "SimulationResult",
    "Turn",
    "plan_turns",
    "simulate_call",
    "simulate_conversation",
]
