"""The Pipecat example: Pipecat's service as shipped against the managed one, on the same call.

Each run is deterministic (a virtual clock, a scripted caller, the fake server), so the table it
prints is the one docs/pipecat.md shows (the "pipecat-default" block), row for row.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.test_docs import GENERATOR, documented

pytestmark = pytest.mark.network_allowed


def test_pipecat_s_own_service_goes_deaf_at_the_cut_and_the_managed_one_keeps_the_call() -> None:
    example = GENERATOR.example_module("pipecat_call")
    example.quiet()
    plain = asyncio.run(example.scripted_call(False))
    managed = asyncio.run(example.scripted_call(True))
    # Pipecat's service: one session; nothing answered after Azure's 30-minute cut.
    assert plain.sessions == 1 and plain.resent_tokens == 0
    assert 0 < plain.answered == plain.held < plain.turns
    # Managed: every turn answered across four sessions, and the last one holds them all.
    assert managed.answered == managed.turns == managed.held == plain.turns
    assert managed.sessions == 4 and managed.resent_tokens > 0
    assert example.comparison_table([plain, managed]) == documented("pipecat-default")
