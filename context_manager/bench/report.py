"""Benchmark reports: the comparison with retention 0.8, CSV rows, the cost/facts plot."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..simulate.plots import _pyplot
from .run import missing, pareto_groups

__all__ = [
    "BASELINE",
    "COST_LIMIT",
    "beats_baseline",
    "format_table",
    "presence_table",
    "print_report",
    "plot_pareto",
    "summary_table",
    "verdict",
    "write_rows",
]

BASELINE = "retention-0.8"
"""The strategy every other is compared with."""

COST_LIMIT = 1.2
"""How much more than `BASELINE` a strategy may cost and still count as beating it."""


def beats_baseline(
    rows: Sequence[dict[str, Any]],
    base: dict[str, Any],
    *,
    cost: str = "cost_usd",
    facts: str = "fact_presence",
) -> list[dict[str, Any]]:
    """The rows that keep more facts than `base` at no more than `COST_LIMIT` times its cost.

    `cost` and `facts` name the columns (bench summaries and simulator sweep rows differ);
    unpriced rows (the full-context oracle) never count.

    >>> base = {"cost_usd": 1.0, "fact_presence": 0.5}
    >>> rows = [{"cost_usd": 1.2, "fact_presence": 0.6}, {"cost_usd": 1.3, "fact_presence": 0.9},
    ...         {"cost_usd": 0.9, "fact_presence": 0.5}, {"cost_usd": float("nan"),
    ...                                                   "fact_presence": 1.0}]
    >>> beats_baseline(rows, base)
    [{'cost_usd': 1.2, 'fact_presence': 0.6}]
    """
    return [
        row
        for row in rows
        if row is not base
        and not missing(row[cost])
        and row[cost] <= COST_LIMIT * base[cost]
        and row[facts] > base[facts]
    ]


def verdict(summaries: Sequence[dict[str, Any]]) -> str:
    """Which strategies keep more facts than `BASELINE` at no more than `COST_LIMIT` x its cost."""
    base = next((s for s in summaries if s["strategy"] == BASELINE), None)
    if base is None:
        return f"{BASELINE} was not run: no comparison."
    winners = beats_baseline(summaries, base)
    if not winners:
        return (
            f"No strategy keeps more facts than {BASELINE} ({base['fact_presence']:.1%}) at no"
            f" more than {COST_LIMIT}x its cost (${base['cost_usd']:.4f} a call)."
        )
    # Never name a dominated strategy: of the winners, those on the front (identical ones as
    # one point); the best keeps the most facts, the cheaper of equals.
    on_front = {name for group in pareto_groups(summaries) for name in group}
    named = [s for s in winners if s["strategy"] in on_front]
    dominated = len(winners) - len(named)
    best = max(named, key=lambda s: (s["fact_presence"], -s["cost_usd"]))
    same = [s["strategy"] for s in named if _same(s, best)]
    names = ", ".join(" = ".join(g) for g in _groups(named))
    return (
        f"{len(named)} {'strategy keeps' if len(named) == 1 else 'strategies keep'} more"
        f" facts than {BASELINE} ({base['fact_presence']:.1%}) at no more than {COST_LIMIT}x its"
        f" cost, none beaten on both: {names}"
        + (f" ({dominated} more also do, but another costs no more and keeps at least as many)"
           if dominated else "")
        + f". Best: {' = '.join(same)}, {best['fact_presence']:.1%} of the facts at"
        f" {best['cost_usd'] / base['cost_usd']:.2f}x the cost."
    )  # fmt: skip


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two strategies are one point: the same cost and the same facts kept."""
    keys = ("cost_usd", "fact_presence")
    return all(round(float(a[k]), 9) == round(float(b[k]), 9) for k in keys)


def _groups(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    out: list[list[dict[str, Any]]] = []
    for row in rows:
        for group in out:
            if _same(group[0], row):
                group.append(row)
                break
        else:
            out.append([row])
    return [[r["strategy"] for r in g] for g in out]


def _cell(value: Any, fmt: str) -> str:
    return "-" if missing(value) else format(value, fmt)


def summary_table(
    summaries: Sequence[dict[str, Any]], *, timings: bool = True
) -> tuple[list[str], list[list[str]]]:
    """The benchmark table as text cells: column names, then one row per strategy.

    The columns: cost per call and its ratio to `BASELINE`, the share of input tokens served from
    the cache, the peak input tokens of a response, compactions and rollovers per call, facts
    kept (normalized and exact), facts whose answer BM25 retrieves in the top 3 retained items,
    the model's verdict (``judged``, when a judge ran), stale values per call, summary
    compression, and planning time per call (``plan ms``, when measured: on the reference path
    only; ``timings=False`` leaves it out: it varies by machine). Strategies on the Pareto front
    are marked ``*``.
    """
    timings = timings and any(s["compactions"] and not missing(s["compaction_ms"])
                              for s in summaries)  # fmt: skip
    front = {name for group in pareto_groups(summaries) for name in group}
    base = next((s for s in summaries if s["strategy"] == BASELINE), None)
    judged = any(s.get("judged") is not None for s in summaries)
    columns = ["strategy", "USD/call", "x r0.8", "hits", "peak", "compact",
               "rollovers", "facts", "exact",
               "BM25", *(["judged"] if judged else []), "stale", "compress",
               *(["plan ms"] if timings else [])]  # fmt: skip
    rows = []
    for s in summaries:
        priced = base is not None and not missing(s["cost_usd"])
        ratio = s["cost_usd"] / base["cost_usd"] if priced and base else None
        rows.append([
            s["strategy"] + (" *" if s["strategy"] in front else ""),
            _cell(s["cost_usd"], ".4f"), _cell(ratio, ".2f"), _cell(s["cache_hit"], ".1%"),
            _cell(s["peak_tokens"], ",.0f"), _cell(s["compactions"], ".1f"),
            _cell(s.get("rollovers"), ".1f"),
            _cell(s["fact_presence"], ".1%"), _cell(s["fact_presence_exact"], ".1%"),
            _cell(s["answerable"], ".1%"), *([_cell(s.get("judged"), ".1%")] if judged else []),
            _cell(s["stale"], ".2f"), _cell(s["compression"], ".1f"),
            *([_cell(s["compaction_ms"], ".0f")] if timings else []),
        ])  # fmt: skip
    return columns, rows


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Text cells as an aligned plain-text table: labels left, figures right.

    `columns` and `rows` are what `summary_table` and `presence_table` give.
    """
    widths = [max(len(str(c)), *(len(str(r[n])) for r in rows)) for n, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if n == 0 else str(c).rjust(w)
            for n, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, rows)])


def print_report(summaries: Sequence[dict[str, Any]], file: TextIO | None = None) -> None:
    """Print the benchmark's tables and verdict as plain text (what ``bench`` shows).

    The summary (``*`` on the Pareto front), facts kept by type, facts kept by dataset, then
    the verdict; `file` is standard output by default.
    """
    out = file if file is not None else sys.stdout
    for title, (columns, rows) in (
        ("strategies", summary_table(summaries)),
        ("facts kept by type: normalized (exact, where it differs)", presence_table(summaries)),
        ("facts kept by dataset", presence_table(summaries, "dataset")),
    ):
        out.write(f"{title}\n{format_table(columns, rows)}\n\n")
    out.write("* on the Pareto front of cost and facts kept\n" + verdict(summaries) + "\n")


def presence_table(
    summaries: Sequence[dict[str, Any]], by: str = "kind"
) -> tuple[list[str], list[list[str]]]:
    """Facts kept per fact type (`by` ``"kind"``) or per dataset (``"dataset"``), as text cells.

    Each cell is the normalized presence, followed by the exact one in brackets where it differs.
    """
    loose_key, exact_key = f"by_{by}", f"by_{by}_exact"
    keys: list[str] = []
    for s in summaries:
        keys += [k for k in s[loose_key] if k not in keys]
    if by == "kind":
        keys.sort()
    rows = []
    for s in summaries:
        cells = [s["strategy"]]
        for key in keys:
            loose, exact = s[loose_key].get(key), s.get(exact_key, {}).get(key)
            text = _cell(loose, ".0%")
            if exact is not None and loose is not None and round(100 * exact) != round(100 * loose):
                text += f" ({exact:.0%})"
            cells.append(text)
        rows.append(cells)
    return ["strategy", *(k.replace("_", " ") for k in keys)], rows


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Per strategy and conversation, the metrics as CSV (fact presence by type flattened)."""
    out = Path(path)
    flat = []
    for row in rows:
        record = {k: v for k, v in row.items() if k != "by_kind"}
        for kind, counts in sorted(row["by_kind"].items()):
            record[f"facts_{kind}"] = counts["facts"]
            record[f"present_{kind}"] = counts["present_normalized"]
            record[f"present_exact_{kind}"] = counts["present"]
        flat.append(record)
    names: list[str] = []
    for record in flat:
        names += [k for k in record if k not in names]
        for key, value in record.items():  # not measured (NaN): an empty cell, as None gives
            if isinstance(value, float) and value != value:
                record[key] = None
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(flat)
    return out


def plot_pareto(summaries: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Cost per call against fact presence, one point per strategy, the Pareto front joined.

    The region where a strategy beats `BASELINE` (more facts, at most `COST_LIMIT` x its cost)
    is shaded. Strategies at the same point share one label, and labels are moved apart (with
    a leader line) where they would overlap.
    """
    plt = _pyplot()
    priced = [s for s in summaries if not missing(s["cost_usd"])]
    front = {name for group in pareto_groups(priced) for name in group}
    fig, ax = plt.subplots(figsize=(9, 5.5))
    costs = [s["cost_usd"] for s in priced]
    low, high = (min(costs), max(costs)) if costs else (0.0, 1.0)
    span = (high - low) or 1.0
    ax.set_xlim(low - 0.05 * span, high + 0.45 * span)  # room on the right for labels
    ax.set_ylim(0, 1.05)
    base = next((s for s in priced if s["strategy"] == BASELINE), None)
    if base is not None:
        ax.fill_between([ax.get_xlim()[0], COST_LIMIT * base["cost_usd"]], base["fact_presence"],
                        1.05, color="C2", alpha=0.08, lw=0,
                        label=f"beats {BASELINE} (≤ {COST_LIMIT}x its cost)")  # fmt: skip
    for on in (False, True):  # the front last, so it is never hidden under a neighbour
        points = [s for s in priced if (s["strategy"] in front) == on]
        ax.scatter([s["cost_usd"] for s in points], [s["fact_presence"] for s in points],
                   color="C1" if on else "C0", zorder=4 if on else 3, s=28)  # fmt: skip
    line = sorted((s for s in priced if s["strategy"] in front), key=lambda s: s["cost_usd"])
    ax.plot([s["cost_usd"] for s in line], [s["fact_presence"] for s in line], color="C1",
            label="Pareto front", zorder=2)  # fmt: skip
    _label_points(ax, priced, front)
    oracle = next((s for s in summaries if missing(s["cost_usd"])), None)
    if oracle is not None:
        ax.axhline(oracle["fact_presence"], color="grey", linestyle=":", label="full context")
    ax.set_xlabel("USD per call")
    ax.set_ylabel("facts present at the end (normalized)")
    ax.set_title(title or "Compaction: cost against facts kept")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(path)  # its directory must exist: the command line checks it before any work
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


Box = tuple[float, float, float, float]


def _label_points(ax: Any, priced: Sequence[dict[str, Any]], front: set[str]) -> None:
    """One label per point (strategies at the same point share it), placed without overlaps."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    points = [
        ((s["cost_usd"] - x0) / (x1 - x0), (s["fact_presence"] - y0) / (y1 - y0),
         s["strategy"] + (" *" if s["strategy"] in front else ""))
        for s in priced
    ]  # fmt: skip
    leader = {"arrowstyle": "-", "color": "grey", "lw": 0.6}
    for names, (fx, fy), box, moved in label_layout(points):
        ax.annotate("\n".join(names), xy=(fx, fy), xycoords="axes fraction", fontsize=8,
                    xytext=(box[0], box[1]), textcoords="axes fraction", va="bottom",
                    arrowprops=leader if moved else None)  # fmt: skip


def label_layout(
    points: Sequence[tuple[float, float, str]],
) -> list[tuple[list[str], tuple[float, float], Box, bool]]:
    """Where the labels of `points` (x, y in axes fractions, name) go on the plot.

    Points within 1% of each other share one label, one name a line. Each label goes just
    above and to the right of its point, or as near above or below as it fits without covering
    another label (``moved``: it then gets a leader line). Returns, per label: its names, its
    point, its box (x0, y0, x1, y1) and whether it moved.
    """
    groups: list[tuple[tuple[float, float], list[str]]] = []
    for fx, fy, name in sorted(points, key=lambda p: (-p[1], p[0])):
        near = next((g for g in groups if abs(g[0][0] - fx) < 0.01 and abs(g[0][1] - fy) < 0.01),
                    None)  # fmt: skip
        if near is None:
            groups.append(((fx, fy), [name]))
        else:
            near[1].append(name)
    # Sizes in axes fractions for 8-point text on this figure: ~0.009 a character, ~0.035 a line.
    out: list[tuple[list[str], tuple[float, float], Box, bool]] = []
    placed: list[Box] = []
    for (fx, fy), names in groups:
        width, height = 0.009 * max(len(n) for n in names) + 0.01, 0.035 * len(names)
        box: Box = (fx + 0.012, fy + 0.02, fx + 0.012 + width, fy + 0.02 + height)
        for step in range(60):  # 0, then alternately further below and above
            dy = 0.02 + (step + 1) // 2 * 0.04 * (-1 if step % 2 else 1)
            box = (fx + 0.012, fy + dy, fx + 0.012 + width, fy + dy + height)
            if box[1] >= 0 and box[3] <= 1 and not any(_overlap(box, b) for b in placed):
                break
        placed.append(box)
        out.append((names, (fx, fy), box, abs(box[1] - (fy + 0.02)) > 1e-9))
    return out


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
