"""The Agents SDK example: the SDK's model as shipped against the managed one, on the same call.

Each run is deterministic (a virtual clock, a scripted caller, the fake server), so the table it
prints is the one docs/openai-agents.md shows (the "agents-default" block), row for row.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_docs import documented

pytestmark = pytest.mark.network_allowed

ROOT = Path(__file__).resolve().parents[2]


def _example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "openai_agents_call", ROOT / "examples" / "openai_agents_call.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_sdk_s_own_model_loses_the_call_at_the_cut_and_the_managed_one_keeps_it() -> None:
    example = _example()
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
