"""Sweeps: one workload under a grid of settings, compared on the same simulated calls.

Every grid point runs the same seeded calls (common random numbers), so differences between
rows come from the settings, not from sampling. The (grid point x chunk) tasks go to any
``concurrent.futures.Executor`` at once, so local processes or a Dask cluster stay busy.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..compaction.parsing import parse_compaction
from ..compaction.strategies import CompactionStrategy
from ..errors import ConfigurationError
from ..profiles import ModelProfile, ProviderProfile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy
from ..server import SessionConfig, Truncation
from .runner import RunResult, chunk_tasks, map_tasks, reference_bound, run_chunk
from .stats import mean_interval, paired_difference, percentiles
from .workloads import WorkloadSpec

__all__ = ["GridPoint", "ROW_KEYS", "SPLIT_KEYS", "flat_row", "sweep", "write_csv"]

SPLIT_KEYS = (
    "text_input", "text_cached", "text_output", "audio_input", "audio_cached", "audio_output",
)  # fmt: skip
"""The cost split's parts: uncached input, cached input and output, by modality."""

ROW_KEYS = (
    "model", "provider", "truncation", "compaction", "calls", "cost_usd_per_call",
    "cache_hit_ratio", "truncations_per_call", "rollovers_per_call",
    "responses_per_call", "input_tokens_per_call", "cached_tokens_per_call",
    "rollover_cost_usd_per_call", "compactions_per_call", "fact_presence",
    "stale_values_per_call", "cost_usd_total", "cost_usd_per_call_low",
    "cost_usd_per_call_high", "cost_usd_per_call_p50", "cost_usd_per_call_p95",
    "cost_usd_per_call_p99", *(f"cost_usd_per_call_{k}" for k in SPLIT_KEYS),
    "cheapest", "tied_with_cheapest",
)  # fmt: skip
"""The columns of a sweep's CSV, in order (the JSON rows nest some of them)."""


@dataclass(frozen=True, slots=True)
class GridPoint:
    """One combination of the swept settings."""

    model: ModelProfile
    provider: ProviderProfile
    truncation: Truncation
    compaction: str = "none"
    strategy: CompactionStrategy | None = None


def sweep(
    spec: WorkloadSpec,
    calls: int,
    *,
    models: Sequence[ModelProfile],
    providers: Sequence[ProviderProfile],
    truncations: Sequence[Truncation],
    compactions: Sequence[str] = ("none",),
    instructions: str = "",
    tools: Sequence[Mapping[str, Any]] = (),
    rollover: RolloverPolicy | None = DEFAULT_ROLLOVER,
    seed: int = 0,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Simulate `calls` calls of `spec` at every grid point; one row per point.

    The grid is every combination of `models`, `providers`, `truncations` and `compactions`
    (strategy specs, ``none`` for no client compaction); every point runs the same calls.

    Raises:
        ConfigurationError: fewer than one session, or an axis of the grid with no value.
    """
    if calls < 1:
        raise ConfigurationError(f"a sweep needs at least 1 call, got {calls}")
    for axis, values in (("models", models), ("providers", providers),
                         ("truncations", truncations), ("compactions", compactions)):  # fmt: skip
        if not values:
            raise ConfigurationError(f"the sweep's {axis} are empty: give at least one")
    points = [
        GridPoint(m, p, t, c, parse_compaction(c))
        for m, p, t, c in itertools.product(models, providers, truncations, compactions)
    ]
    tasks: list[tuple[Any, ...]] = []
    counts: list[int] = []
    for point in points:
        config = SessionConfig(
            instructions=instructions, tools=tuple(tools), truncation=point.truncation
        )
        split = executor is not None and reference_bound(
            "vectorized", rollover, point.strategy, bool(spec.facts)
        )
        parts = chunk_tasks(spec, calls, seed, split)
        counts.append(len(parts))
        for size, child, part in parts:
            tasks.append((spec, size, child, point.model, point.provider, config, rollover,
                          "vectorized", None, point.strategy, part))  # fmt: skip
    results = map_tasks(run_chunk, tasks, executor, progress)
    rows, costs = [], []
    first = 0
    for point, count in zip(points, counts, strict=True):
        done = results[first : first + count]
        first += count
        run = RunResult(
            point.model.name, point.provider.name, str(point.truncation), spec.name,
            {k: np.concatenate([p[k] for p in done]) for k in done[0]},
        )  # fmt: skip
        rows.append(_row(point, run))
        costs.append(run.columns["cost_usd"])
    _mark_cheapest(rows, costs)
    return rows


def _mark_cheapest(rows: list[dict[str, Any]], costs: list[np.ndarray]) -> None:
    """Name the cheapest row only where it is cheaper beyond the 95 % interval.

    Each row is compared with the lowest mean call by call (the same calls at every point):
    a row whose paired difference's interval reaches 0 is tied with it.
    """
    best = min(range(len(rows)), key=lambda i: rows[i]["cost_usd_per_call"])
    tied = set()
    for i, row in enumerate(rows):
        mean, low, high = paired_difference(costs[i], costs[best])
        row["vs_cheapest_usd_per_call"] = {"mean": mean, "low": low, "high": high}
        if i != best and low <= 0.0:
            tied.add(i)
    for i, row in enumerate(rows):
        row["cheapest"] = i == best and not tied
        row["tied_with_cheapest"] = bool(tied) and (i == best or i in tied)


def _row(point: GridPoint, run: RunResult) -> dict[str, Any]:
    t = run.totals()
    per = t["per_call"]
    n = max(t["calls"], 1)
    c = run.columns
    mean, low, high = mean_interval(c["cost_usd"])
    prices = point.model.prices_per_million
    tokens = t["tokens_by_modality"]
    split = {}
    for m in ("text", "audio"):
        uncached = tokens[f"input_{m}"] - tokens[f"cached_{m}"]
        split[f"{m}_input"] = uncached * getattr(prices, f"{m}_input") / 1e6 / n
        split[f"{m}_cached"] = tokens[f"cached_{m}"] * getattr(prices, f"{m}_cached") / 1e6 / n
        split[f"{m}_output"] = tokens[f"output_{m}"] * getattr(prices, f"{m}_output") / 1e6 / n
    intervals = {
        f"{name}_per_call": list(mean_interval(c[name])[1:])
        for name in ("responses", "input_tokens", "cached_tokens", "truncations", "rollovers")
    }
    extra = {
        "cost_usd_total": t["cost_usd"],
        "cost_usd_per_call_ci95": [low, high],
        "cost_usd_per_call_percentiles": percentiles(c["cost_usd"]),
        "cost_split_usd_per_call": split,
        "intervals_95": intervals,
        "totals": {
            k: t[k]
            for k in (
                "responses",
                "input_tokens",
                "cached_tokens",
                "output_tokens",
                "truncations",
                "rollovers",
            )
        },  # fmt: skip
    }
    return {
        "model": point.model.name,
        "provider": point.provider.name,
        "truncation": str(point.truncation),
        "compaction": point.compaction,
        "calls": t["calls"],
        "cost_usd_per_call": per["cost_usd"],
        "cache_hit_ratio": t["cache_hit_ratio"],
        "truncations_per_call": per["truncations"],
        "rollovers_per_call": per["rollovers"],
        "responses_per_call": per["responses"],
        "input_tokens_per_call": per["input_tokens"],
        "cached_tokens_per_call": per["cached_tokens"],
        "rollover_cost_usd_per_call": t["rollover_cost_usd"] / n,
        "compactions_per_call": t["compactions"] / n,
        "fact_presence": t.get("fact_presence"),
        "stale_values_per_call": t["stale_values"] / n,
    } | extra


def flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep row with its nested figures flattened to the `ROW_KEYS` columns."""
    flat = dict(row)
    flat["cost_usd_per_call_low"], flat["cost_usd_per_call_high"] = row["cost_usd_per_call_ci95"]
    for k, v in row["cost_usd_per_call_percentiles"].items():
        flat[f"cost_usd_per_call_{k}"] = v
    for k, v in row["cost_split_usd_per_call"].items():
        flat[f"cost_usd_per_call_{k}"] = v
    return {k: flat[k] for k in ROW_KEYS}


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Write sweep rows as CSV with the `ROW_KEYS` columns."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROW_KEYS))
        writer.writeheader()
        for row in rows:
            writer.writerow(flat_row(row))
