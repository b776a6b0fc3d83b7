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

from ..compaction.strategies import CompactionStrategy, parse_compaction
from ..errors import ConfigurationError
from ..profiles import ModelProfile, ProviderProfile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy
from ..server import SessionConfig, Truncation
from .runner import CHUNK_CALLS, RunResult, map_tasks, run_chunk
from .workloads import WorkloadSpec

__all__ = ["GridPoint", "ROW_KEYS", "sweep", "write_csv"]

ROW_KEYS = (
    "model", "provider", "truncation", "compaction", "calls", "cost_usd_per_call",
    "cache_hit_ratio", "truncations_per_call", "rollovers_per_call",
    "responses_per_call", "input_tokens_per_call", "cached_tokens_per_call",
    "rollover_cost_usd_per_call", "compactions_per_call", "fact_presence",
    "stale_values_per_call",
)  # fmt: skip
"""The columns of a sweep's rows, in order."""


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
    chunks = (calls + CHUNK_CALLS - 1) // CHUNK_CALLS
    seeds = np.random.SeedSequence(seed).spawn(chunks)
    tasks: list[tuple[Any, ...]] = []
    for point in points:
        config = SessionConfig(
            instructions=instructions, tools=tuple(tools), truncation=point.truncation
        )
        for n, child in enumerate(seeds):
            size = min(CHUNK_CALLS, calls - n * CHUNK_CALLS)
            tasks.append((spec, size, child, point.model, point.provider, config, rollover,
                          "vectorized", None, point.strategy))  # fmt: skip
    results = map_tasks(run_chunk, tasks, executor, progress)
    rows = []
    for i, point in enumerate(points):
        parts = results[i * chunks : (i + 1) * chunks]
        run = RunResult(
            point.model.name, point.provider.name, str(point.truncation), spec.name,
            {k: np.concatenate([p[k] for p in parts]) for k in parts[0]},
        )  # fmt: skip
        rows.append(_row(point, run))
    return rows


def _row(point: GridPoint, run: RunResult) -> dict[str, Any]:
    t = run.totals()
    per = t["per_call"]
    n = max(t["calls"], 1)
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
    }


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Write sweep rows as CSV with the `ROW_KEYS` columns."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROW_KEYS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in ROW_KEYS})
