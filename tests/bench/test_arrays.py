"""The benchmark on the arrays gives `run_one`'s rows, figure for figure."""

from __future__ import annotations

import math

import pytest

from context_manager.bench import load_datasets
from context_manager.bench.arrays import on_arrays, run_chunk
from context_manager.bench.run import STRATEGIES, resolve_strategy, run_bench, run_one
from context_manager.profiles import get_model_profile
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate.given import batch_from_items
from context_manager.simulate.vectorized import simulate_batch

GPT = get_model_profile("gpt-realtime")


def _same(reference: dict, arrays: dict) -> list[str]:
    """The keys where two rows differ (floats to 1e-9: sums in another order)."""
    out = []
    for key, want in reference.items():
        got = arrays[key]
        if key == "compaction_ms":
            continue  # not measured on the arrays
        both = isinstance(want, float) and isinstance(got, float)
        if both and (
            (math.isnan(want) and math.isnan(got)) or math.isclose(want, got, rel_tol=1e-9)
        ):
            continue
        if want != got:
            out.append(key)
    return out


@pytest.mark.parametrize("minutes", [50.0, 70.0])
def test_every_strategy_gives_run_one_s_rows(minutes: float) -> None:
    convs = load_datasets(
        ["voice-agent", "support-call", "tool-heavy", "chitchat"], count=1, minutes=minutes,
        seeds=[3],
    )  # fmt: skip
    strategies = [resolve_strategy(name) for name in STRATEGIES]
    assert all(on_arrays(s) for s in strategies)  # every built-in one runs on the arrays
    batch = batch_from_items([c.items for c in convs])
    for strategy in strategies[:-1]:  # all on the arrays, none handed back (not the oracle)
        made = strategy.compaction() if strategy.compaction is not None else None
        config = SessionConfig(truncation=Truncation.parse(strategy.truncation))
        result = simulate_batch(batch, GPT, strategy.provider, config=config,
                                rollover=strategy.rollover, compaction=made)  # fmt: skip
        # Past the hour a ledger's seed repeats the ledger the session before began its
        # path with, under gpt-realtime's organization-wide cache: the reference runs those.
        if minutes < 60 or not strategy.name.startswith("ledger"):
            assert result.fallback == [], strategy.name
    rows = run_chunk(convs, strategies, GPT, "Be brief.")
    for strategy, per_call in zip(strategies, rows, strict=True):
        for conversation, row in zip(convs, per_call, strict=True):
            want = run_one(conversation, strategy, GPT, "Be brief.")
            assert _same(want, row) == [], (strategy.name, conversation.name)


def test_a_plug_in_strategy_runs_on_the_reference_and_chunks_change_nothing() -> None:
    convs = load_datasets(["support-call"], count=3, minutes=40.0, seeds=[1])
    plug = resolve_strategy("context_manager.compaction.strategies:DropOldest")
    assert not on_arrays(plug)
    reports = run_bench(
        convs, ["retention-0.8", "context_manager.compaction.strategies:DropOldest"]
    )
    assert [len(r.rows) for r in reports] == [3, 3]
    assert all(r["compaction_ms"] >= 0 for r in reports[1].rows)  # measured: the reference ran
    # One chunk or one conversation a chunk: the same rows.
    apart = [run_chunk([c], [resolve_strategy("retention-0.8")], GPT)[0][0] for c in convs]
    assert [_same(a, b) for a, b in zip(apart, reports[0].rows, strict=True)] == [[], [], []]
