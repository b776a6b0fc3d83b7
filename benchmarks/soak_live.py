"""Soak: the live path through faults at random moments, many seeded runs, and what was lost.

Each run is an 11-minute call on 4-minute sessions (so it rolls over twice) through the real
`openai` client, the managed connection, the fake server (in a process of its own, as the
real server is: `testing.remote`) and a SQLite store, with one fault kind at a seeded random
moment (`context_manager.testing.faults`):

* ``drop while seeding`` / ``expiry while seeding``: at a random seed item of the second session;
* ``drop on the new session.update``;
* ``second drop while recovering``: a drop mid-call, then another while the new session is seeded;
* ``drop mid-call``: at a random item of the first session;
* ``failing store writes``: 10 % of writes fail (each is retried);
* ``slow summarizer`` / ``failing summarizer``: 1 s per summary (deadline 0.3 s) / always raises.

It prints, per fault: runs, turns lost, duplicated turns, responses without a usage row, runs
that gave up, the event loop's worst lag during the turns, and the longest ``recv`` that
the application waited (a switch to a new session, mostly: the fake server answers at once). Run:
``python benchmarks/soak_live.py [--runs 5] [--minutes 11] [--faults "slow summarizer,..."]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from context_manager import ContextEngine, ManualClock, RolloverPolicy, get_provider_profile
from context_manager.compaction import RollingSummary
from context_manager.items import Item
from context_manager.testing.faults import CallReport, Fault, run_call
from context_manager.testing.remote import SharedClock

PROVIDER = get_provider_profile("azure").model_copy(
    update={"name": "short", "max_session_seconds": 240.0}
)


class Slow:
    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        time.sleep(1.0)
        return "Slow summary."


class Failing:
    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        raise RuntimeError("down")


def engine(summarizer: Any = None, clock: ManualClock | None = None) -> ContextEngine:
    kwargs = {} if summarizer is None else {"summarizer": summarizer}
    return ContextEngine(
        "gpt-realtime",
        PROVIDER,
        compaction=RollingSummary(trigger=0.02, keep=4, budget=200, **kwargs),
        rollover=RolloverPolicy(budget_tokens=1500, carry="summary", summary_tokens=300),
        rollover_margin_seconds=40,
        clock=clock if clock is not None else ManualClock(),
    )


def scenario(name: str, rng: np.random.Generator) -> tuple[list[Fault], dict[str, Any]]:
    seed_item = int(rng.integers(1, 6))
    if name == "drop while seeding":
        return [Fault(1, "conversation.item.create", seed_item, "drop")], {}
    if name == "expiry while seeding":
        return [Fault(1, "conversation.item.create", seed_item, "expire")], {}
    if name == "drop on the new session.update":
        return [Fault(1, "session.update", 1, "drop")], {}
    if name == "second drop while recovering":
        mid = int(rng.integers(3, 30))
        return [
            Fault(0, "conversation.item.create", mid, "drop"),
            Fault(1, "conversation.item.create", seed_item, "drop"),
        ], {}
    if name == "drop mid-call":
        return [Fault(0, "conversation.item.create", int(rng.integers(3, 30)), "drop")], {}
    if name == "failing store writes":
        return [], {"failing_writes": 0.1}
    if name == "slow summarizer":
        return [], {"summarizer": Slow()}
    return [], {"summarizer": Failing()}


NAMES = [
    "drop while seeding",
    "expiry while seeding",
    "drop on the new session.update",
    "second drop while recovering",
    "drop mid-call",
    "failing store writes",
    "slow summarizer",
    "failing summarizer",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=11.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default="", help="comma-separated fault names (default: all)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.faults.split(",") if n.strip()] or NAMES
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(NAMES)}")
    rng = np.random.default_rng(args.seed)
    # As docs/agent-builders.md recommends for an agent's process: after start-up, freeze the
    # heap, so a full garbage collection (about 80 ms here) does not land in a call.
    import openai.resources.realtime.realtime  # noqa: F401 - loaded before the freeze
    import websockets.asyncio.client  # noqa: F401

    gc.collect()
    gc.freeze()
    print(f"{args.runs} runs per fault, {args.minutes:g}-minute calls on 4-minute sessions")
    print(
        f"{'fault':<32}{'runs':>5}{'lost':>6}{'dups':>6}{'no usage':>10}{'gave up':>9}"
        f"{'step ms':>9}{'p99 lag ms':>12}{'max lag ms':>12}{'max recv ms':>13}"
    )
    for name in names:
        reports: list[CallReport] = []
        for run in range(args.runs):
            faults, extra = scenario(name, rng)
            summarizer = extra.pop("summarizer", None)
            # The previous run's garbage (its store's start-up and the checks after it) is
            # not this call's: an agent's process serving one call does not carry it.
            gc.collect()
            with tempfile.TemporaryDirectory() as tmp:
                db = f"sqlite:///{Path(tmp) / 'call.db'}"
                reports.append(
                    asyncio.run(
                        run_call(
                            engine(summarizer, SharedClock()),
                            db,
                            faults=faults,
                            minutes=args.minutes,
                            seed=run,
                            measure_steps=True,
                            server_process=True,
                            **extra,
                        )
                    )
                )
        lost = sum(r.turns_lost for r in reports)
        dups = sum(r.duplicates for r in reports)
        no_usage = sum(max(r.engine_responses - r.usage_rows, 0) for r in reports)
        gave_up = sum(r.lost for r in reports)
        lag = max(r.worst_lag for r in reports) * 1000
        p99 = max(r.p99_lag for r in reports) * 1000
        step = max(r.longest_step for r in reports) * 1000
        switch = max(r.longest_recv for r in reports) * 1000
        print(
            f"{name:<32}{len(reports):>5}{lost:>6}{dups:>6}{no_usage:>10}{gave_up:>9}"
            f"{step:>9.1f}{p99:>12.1f}{lag:>12.1f}{switch:>13.1f}"
        )


if __name__ == "__main__":
    main()
