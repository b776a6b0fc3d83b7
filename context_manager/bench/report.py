"""Benchmark reports: the comparison with retention 0.8, CSV rows, the cost/facts plot."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..simulate.plots import _pyplot
from .run import pareto_front

__all__ = ["BASELINE", "plot_pareto", "verdict", "write_rows"]

BASELINE = "retention-0.8"
"""The strategy every other is compared with."""

_COST_LIMIT = 1.2


def verdict(summaries: Sequence[dict[str, Any]]) -> str:
    """Which strategies keep more facts than `BASELINE` at no more than 1.2x its cost."""
    base = next((s for s in summaries if s["strategy"] == BASELINE), None)
    if base is None:
        return f"{BASELINE} was not run: no comparison."
    winners = [
        s
        for s in summaries
        if s["strategy"] != BASELINE
        and not math.isnan(s["cost_usd"])
        and s["cost_usd"] <= _COST_LIMIT * base["cost_usd"]
        and s["fact_presence"] > base["fact_presence"]
    ]
    if not winners:
        return (
            f"No strategy keeps more facts than {BASELINE} ({base['fact_presence']:.1%}) at no"
            f" more than {_COST_LIMIT}x its cost (${base['cost_usd']:.4f} a call)."
        )
    best = max(winners, key=lambda s: s["fact_presence"])
    names = ", ".join(s["strategy"] for s in winners)
    return (
        f"{len(winners)} strategies keep more facts than {BASELINE} ({base['fact_presence']:.1%})"
        f" at no more than {_COST_LIMIT}x its cost: {names}. Best: {best['strategy']},"
        f" {best['fact_presence']:.1%} of the facts at"
        f" {best['cost_usd'] / base['cost_usd']:.2f}x the cost."
    )


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Per strategy and conversation, the metrics as CSV (fact presence by type flattened)."""
    out = Path(path)
    flat = []
    for row in rows:
        record = {k: v for k, v in row.items() if k != "by_kind"}
        for kind, counts in sorted(row["by_kind"].items()):
            record[f"facts_{kind}"] = counts["facts"]
            record[f"present_{kind}"] = counts["present_normalized"]
        flat.append(record)
    names: list[str] = []
    for record in flat:
        names += [k for k in record if k not in names]
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(flat)
    return out


def plot_pareto(summaries: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Cost per call against fact presence, one point per strategy, the Pareto front joined."""
    plt = _pyplot()
    priced = [s for s in summaries if not math.isnan(s["cost_usd"])]
    front = set(pareto_front(priced))
    fig, ax = plt.subplots(figsize=(8, 5))
    for s in priced:
        on = s["strategy"] in front
        ax.scatter(s["cost_usd"], s["fact_presence"], color="C1" if on else "C0", zorder=3)
        ax.annotate(s["strategy"], (s["cost_usd"], s["fact_presence"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    line = sorted((s for s in priced if s["strategy"] in front), key=lambda s: s["cost_usd"])
    ax.plot([s["cost_usd"] for s in line], [s["fact_presence"] for s in line], color="C1",
            label="Pareto front")  # fmt: skip
    oracle = next((s for s in summaries if math.isnan(s["cost_usd"])), None)
    if oracle is not None:
        ax.axhline(oracle["fact_presence"], color="grey", linestyle=":", label="full context")
    ax.set_xlabel("USD per call")
    ax.set_ylabel("facts present at the end (normalized)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title or "Compaction: cost against facts kept")
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
