"""What every framework's end-to-end test shares: the cost checks, the new process."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from context_manager.live import ContextEngine
from context_manager.profiles import get_model_profile
from context_manager.server.pricing import price
from context_manager.server.usage import Usage
from context_manager.store import Store


def served_usd(sessions: Sequence[Any]) -> float:
    """What the fake server said it served (every ``response.done``), at gpt-realtime's prices."""
    prices = get_model_profile("gpt-realtime").prices_per_million
    return sum(
        price(Usage.from_dict(e["response"]["usage"] or {}), prices).total
        for s in sessions for e in s.sent if e["type"] == "response.done"
    )  # fmt: skip


def assert_the_cost_is_the_servers(db_url: str, cid: str, engine: ContextEngine,
                                   served: float) -> None:  # fmt: skip
    """The usage of every response stored, and the engine's and the store's totals the
    server's own usage priced by the profile."""
    store = Store(db_url)
    try:
        usage = store.usage(cid)
    finally:
        store.close()
    assert len(usage) == engine.responses
    assert engine.total_cost_usd == pytest.approx(served, rel=1e-12)
    assert sum(u["cost_usd"] for u in usage) == pytest.approx(served, rel=1e-12)


async def in_a_new_process(script: str, *args: str) -> str:
    """Run `script` in a new Python process (this one's path); what it printed.

    The test fails, with the end of the child's stderr, if it does not exit cleanly in 120 s.
    """
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()[-2000:]
    return out.decode()
