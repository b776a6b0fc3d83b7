"""Simulations: conversations run against the server model, response by response."""

from __future__ import annotations

from .conversation import GAP_SECONDS, SimulationResult, Turn, plan_turns, simulate_conversation

__all__ = ["GAP_SECONDS", "SimulationResult", "Turn", "plan_turns", "simulate_conversation"]
