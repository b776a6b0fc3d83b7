"""Plots of simulations (matplotlib, drawn off-screen to PNG files).

matplotlib is imported when a plot is drawn, so the rest of the library does not need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .reference import SimulationResult

__all__ = ["plot_session", "plot_sweep"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - the [plot] extra is missing
        raise ConfigurationError(
            "plots need matplotlib: pip install 'context-manager[plot]'"
        ) from exc
    return plt


def plot_session(result: SimulationResult, path: str | Path, *, title: str | None = None) -> Path:
    """Draw one simulated call in three panels, as a PNG.

    Tokens in context over time (truncations and rollovers marked), cached against uncached
    input per response, and the cumulative cost.
    """
    plt = _pyplot()
    rows = result.per_response()
    t = [r["t"] / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True, constrained_layout=True)
    tokens = [r["input_tokens"] for r in rows]
    axes[0].plot(t, tokens, color="#1f77b4", lw=1.2, label="input tokens per response")
    cut = [(r["t"] / 60, r["input_tokens"]) for r in rows if r["dropped_items"]]
    if cut:
        axes[0].scatter(*zip(*cut, strict=True), color="#d62728", s=14, zorder=3,
                        label=f"truncation ({len(cut)})")  # fmt: skip
    for n, roll in enumerate(result.rollovers):
        axes[0].axvline(roll.t / 60, color="#9467bd", ls="--", lw=1,
                        label="rollover" if n == 0 else None)  # fmt: skip
    axes[0].set_ylabel("tokens in context")
    axes[0].legend(loc="upper left", fontsize=8)
    cached = [r["cached_tokens"] for r in rows]
    fresh = [r["input_tokens"] - r["cached_tokens"] for r in rows]
    axes[1].fill_between(t, 0, cached, step="post", color="#2ca02c", alpha=0.6, label="cached")
    axes[1].fill_between(t, cached, [c + f for c, f in zip(cached, fresh, strict=True)],
                         step="post", color="#ff7f0e", alpha=0.6, label="uncached")  # fmt: skip
    axes[1].set_ylabel("input tokens")
    axes[1].legend(loc="upper left", fontsize=8)
    running = 0.0
    cumulative = []
    for r in rows:
        running += r["cost_usd"]
        cumulative.append(running)
    axes[2].plot(t, cumulative, color="#8c564b")
    axes[2].set_ylabel("cumulative cost (USD)")
    axes[2].set_xlabel("minutes")
    totals = result.totals()
    default = (
        f"{totals['model']} on {totals['provider']}, {totals['truncation']}:"
        f" ${totals['cost_usd']:.2f}, cache hits {totals['cache_hit_ratio']:.1%}"
    )
    fig.suptitle(title or default)
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_sweep(
    rows: Sequence[Mapping[str, Any]], x: str, path: str | Path, *, series: str | None = None
) -> Path:
    """Draw cost per call against the swept value `x`, as a PNG.

    One line per value of `series`, with each mean's 95 % interval; the cheapest point is
    marked, or the points tied for cheapest.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row[series]) if series else "", []).append(row)
    for name, group in groups.items():
        means = [r["cost_usd_per_call"] for r in group]
        spans = [(m - r["cost_usd_per_call_ci95"][0], r["cost_usd_per_call_ci95"][1] - m)
                 for m, r in zip(means, group, strict=True)]  # fmt: skip
        ax.errorbar([str(r[x]) for r in group], means, yerr=np.array(spans).T, marker="o",
                    capsize=3, label=name or None)  # fmt: skip
    best = [r for r in rows if r["cheapest"]]
    tied = [r for r in rows if r["tied_with_cheapest"]]
    marked = best or tied
    label = (
        f"cheapest: {best[0][x]} (${best[0]['cost_usd_per_call']:.3f})"
        if best
        else f"tied for cheapest ({len(tied)}, within the 95 % interval)"
    )
    ax.scatter([str(r[x]) for r in marked], [r["cost_usd_per_call"] for r in marked], s=160,
               facecolors="none", edgecolors="#d62728", linewidths=2, zorder=3,
               label=label)  # fmt: skip
    ax.set_xlabel(x)
    ax.set_ylabel("cost per call (USD)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
