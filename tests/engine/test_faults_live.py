"""Fault injection on the live path: the real `openai` client, the managed connection, the fake
server and a real store, with drops and expiries at the worst moments, failing store writes and
slow or failing summarizers (`context_manager.testing.faults`). Each run checks that nothing
was lost; `benchmarks/soak_live.py` runs the same faults at random moments, many times, and
measures the event loop's lag and the rollover stall.

Sessions last 4 minutes here (a provider profile of the test's own), so a short call rolls over
several times and every fault lands inside a switch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from context_manager import ContextEngine, ManualClock, RolloverPolicy, get_provider_profile
from context_manager.compaction import RollingSummary, Summarizer
from context_manager.items import Item
from context_manager.testing.faults import CallReport, Fault, run_call

pytestmark = pytest.mark.network_allowed

PROVIDER = get_provider_profile("azure").model_copy(
    update={"name": "short", "max_session_seconds": 240.0}
)


def engine(summarizer: Summarizer | None = None, clock: ManualClock | None = None) -> ContextEngine:
    compaction = (
        RollingSummary(trigger=0.02, keep=4, budget=200)
        if summarizer is None
        else RollingSummary(trigger=0.02, keep=4, budget=200, summarizer=summarizer)
    )
    return ContextEngine(
        "gpt-realtime", PROVIDER, compaction=compaction,
        rollover=RolloverPolicy(budget_tokens=1500, carry="summary", summary_tokens=300),
        rollover_margin_seconds=40, clock=clock or ManualClock(),
    )  # fmt: skip


def _check(report: CallReport) -> None:
    assert not report.lost
    assert report.turns_lost == 0
    assert report.duplicates == 0
    assert report.usage_rows == report.engine_responses >= report.responses
    # Loop lag and the rollover stall are measured, not asserted, here (benchmarks/soak_live.py
    # prints them): timings lie on a loaded machine. The tests assert that nothing slow runs
    # on the loop instead.


FAULTS = {
    "drop while seeding": [Fault(1, "conversation.item.create", 2, "drop")],
    "drop on the new session.update": [Fault(1, "session.update", 1, "drop")],
    "expiry while seeding": [Fault(1, "conversation.item.create", 1, "expire")],
    "drop mid-call, then again while recovering": [
        Fault(0, "conversation.item.create", 10, "drop"),
        Fault(1, "conversation.item.create", 1, "drop"),
    ],
    "drop on a response.create": [Fault(0, "response.create", 7, "drop")],
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_at_the_worst_moment_loses_nothing(name: str, tmp_path: Path) -> None:
    faults = [Fault(f.session, f.kind, f.nth, f.how) for f in FAULTS[name]]
    report = asyncio.run(run_call(engine(), f"sqlite:///{tmp_path / 'call.db'}", faults=faults))
    assert all(f.fired for f in faults), "the fault was injected"
    _check(report)
    assert len(report.rollovers) >= 2
    # A fault inside a switch costs that attempt, and the next one succeeds.
    assert report.switch_failures == (0 if name == "drop on a response.create" else 1)


def test_failing_store_writes_lose_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    with caplog.at_level(logging.DEBUG):
        report = asyncio.run(run_call(engine(), db, failing_writes=0.1, seed=3))
    assert report.write_failures > 5, "writes failed, and were retried"
    _check(report)
    # What the user said is in the store, never in a log line.
    assert "booking code" not in caplog.text
    assert "could not store" in caplog.text


class _SlowSummarizer:
    """A model that takes its time: past the 0.3 s deadline. Notes the threads it ran in."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        self.threads.add(threading.get_ident())
        time.sleep(1.0)
        return "Slow summary."


class _FailingSummarizer(_SlowSummarizer):
    """A model that is down."""

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        self.threads.add(threading.get_ident())
        raise RuntimeError("the summary model is down")


@pytest.mark.parametrize("make", [_SlowSummarizer, _FailingSummarizer], ids=["slow", "failing"])
def test_a_slow_or_failing_summarizer_never_runs_on_the_loop(make: Any, tmp_path: Path) -> None:
    summarizer = make()
    db = f"sqlite:///{tmp_path / 'call.db'}"
    report = asyncio.run(run_call(engine(summarizer), db, minutes=5.0))
    _check(report)
    assert summarizer.threads, "the summarizer was asked"
    assert threading.get_ident() not in summarizer.threads, "never on the event loop's thread"


def test_an_unreachable_server_is_a_typed_error() -> None:
    from openai import AsyncOpenAI

    from context_manager.errors import RolloverError
    from context_manager.realtime import connect

    async def call() -> None:
        client = AsyncOpenAI(api_key="test-key", base_url="http://127.0.0.1:9/v1")
        async with connect(client, model="gpt-realtime", engine=engine()):
            pass

    with pytest.raises(RolloverError, match=r"could not open a session \("):
        asyncio.run(call())


def test_a_server_in_its_own_process_sees_the_same_clock_and_faults(tmp_path: Path) -> None:
    from context_manager.testing.remote import SharedClock

    clock = SharedClock()
    call = engine(clock=clock)
    faults = [
        Fault(0, "conversation.item.create", 10, "drop"),
        Fault(1, "conversation.item.create", 1, "drop"),
    ]
    db = f"sqlite:///{tmp_path / 'call.db'}"
    report = asyncio.run(run_call(call, db, faults=faults, minutes=9.0, server_process=True))
    _check(report)
    # The drop mid-call (injected in the server's process), then the sessions' end at
    # 4 minutes of the shared clock: the server expired them as the engine planned.
    assert report.rollovers[0] == "disconnected"
    assert report.rollovers.count("rollover") >= 2
    assert report.switch_failures == 1
    assert clock.now >= 9 * 60


def test_a_server_in_its_own_process_needs_a_shared_clock(tmp_path: Path) -> None:
    from context_manager.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SharedClock"):
        asyncio.run(run_call(engine(), f"sqlite:///{tmp_path / 'c.db'}", server_process=True))
