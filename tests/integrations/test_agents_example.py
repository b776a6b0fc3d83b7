"""The Agents SDK example: the SDK's model as shipped against the managed one, on the same call.

Each run is deterministic (a virtual clock, a scripted caller, the fake server), so the table it
prints is the one docs/openai-agents.md shows (the "agents-default" block), row for row.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.test_docs import GENERATOR, documented

pytestmark = pytest.mark.network_allowed


def test_the_sdk_s_own_model_loses_the_call_at_the_cut_and_the_managed_one_keeps_it() -> None:
    example = GENERATOR.example_module("openai_agents_call")
    plain = asyncio.run(example.scripted_call(False))
    managed = asyncio.run(example.scripted_call(True))
    # The SDK's model: one session, nothing after Azure's 30-minute cut; nothing re-sent.
    assert plain.sessions == 1 and plain.resent_tokens == 0
    assert 0 < plain.answered < plain.turns
    # Managed: every turn answered across four sessions, three seeds re-sent.
    assert managed.answered == managed.turns == plain.turns
    assert managed.sessions == 4 and managed.resent_tokens > 0
    assert managed.reports >= managed.answered
    assert example.comparison_table([plain, managed]) == documented("agents-default")
