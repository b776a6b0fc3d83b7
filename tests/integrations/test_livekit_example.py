"""The LiveKit example: LiveKit's model as shipped against the managed one, on the same call.

Each run is deterministic (a virtual clock, a scripted caller, the fake server), so the table it
prints is the one docs/livekit-agents.md shows (the "livekit-default" block), row for row.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.test_docs import GENERATOR, documented

pytestmark = pytest.mark.network_allowed


def test_livekit_s_own_model_replays_the_call_and_the_managed_one_seeds_it() -> None:
    example = GENERATOR.example_module("livekit_agents_call")
    plain = asyncio.run(example.scripted_call(False))
    managed = asyncio.run(example.scripted_call(True))
    # LiveKit's model: a reconnect at each of Azure's cuts, each a replay of the whole call.
    assert plain.sessions == managed.sessions == 4
    assert plain.answered == managed.answered == plain.turns
    assert plain.resent_tokens > 3 * managed.resent_tokens > 0
    assert managed.cost_usd < plain.cost_usd
    assert managed.reports >= managed.answered
    assert 0 < managed.codes_held < plain.codes_held == plain.codes_given
    assert example.comparison_table([plain, managed]) == documented("livekit-default")
