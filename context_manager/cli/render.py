"""What the commands print: strict JSON with ``--json``, rich tables otherwise."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from ..budget import BudgetBreakdown
from ..replay import ReplayReport, iter_rows
from ..simulate import SimulationResult
from ..simulate.workloads import WorkloadSpec

# Nothing public: the helpers are for the commands of this package only.
__all__: list[str] = []


def _emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(_finite(data), allow_nan=False) + "\n")  # one line


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as ``null``: strict JSON, readable by any parser."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _console() -> Console:
    """Rich's console; off a terminal, tables keep every column (not cut to 80 characters)."""
    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return Console()
    return Console(width=200)


def _progress_bar(enabled: bool, description: str) -> Any:
    """A rich progress bar on a terminal (as a callback), or nothing."""
    if not enabled or not sys.stdout.isatty():
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar() -> Iterator[Callable[[int, int], None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            yield update

    return bar()


def _print_budget(b: BudgetBreakdown) -> None:
    table = Table(title=f"Context budget: {b.model}", title_justify="left")
    table.add_column("part")
    table.add_column("tokens", justify="right")
    table.add_column("share", justify="right")

    def row(name: str, value: int) -> None:
        table.add_row(name, f"{value:,}", f"{value / b.context_window:.1%}")

    row("response reserve (max output)", b.max_output_tokens)
    row("instructions", b.instructions_tokens)
    row("tools", b.tools_tokens)
    limit_name = "post_instructions" if b.post_instructions is not None else "input limit"
    row(f"history limit (from {limit_name})", b.history_limit)
    if b.slack_tokens:
        row("unused by the limits", b.slack_tokens)
    table.add_section()
    row("context window", b.context_window)
    console = _console()
    console.print(table)
    used = b.instructions_tokens + b.tools_tokens
    console.print(
        f"instructions + tools: {used:,} of {b.instructions_tools_limit:,}"
        f" ({used / b.instructions_tools_limit:.1%}); input limit {b.input_limit:,}"
    )


def _print_run(totals: dict[str, Any]) -> None:
    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
        title=f"{totals['calls']:,} x {totals['workload']} on {totals['model']} /"
        f" {totals['provider']}, truncation {totals['truncation']}",
    )  # fmt: skip
    table.add_column("measure")
    table.add_column("total", justify="right")
    table.add_column("per call", justify="right")
    per = totals["per_call"]
    table.add_row("responses", f"{totals['responses']:,}", f"{per['responses']:,.1f}")
    table.add_row("input tokens", f"{totals['input_tokens']:,}", f"{per['input_tokens']:,.0f}")
    table.add_row("cached tokens", f"{totals['cached_tokens']:,}", f"{per['cached_tokens']:,.0f}")
    table.add_row("cache-hit ratio", f"{totals['cache_hit_ratio']:.1%}", "")
    table.add_row("truncations", f"{totals['truncations']:,}", f"{per['truncations']:.2f}")
    table.add_row("rollovers", f"{totals['rollovers']:,}", f"{per['rollovers']:.2f}")
    table.add_row("rollover re-send cost", f"${totals['rollover_cost_usd']:,.2f}", "")
    table.add_row("cost", f"${totals['cost_usd']:,.2f}", f"${per['cost_usd']:.4f}")
    if totals.get("compaction", "none") != "none" or totals.get("compactions"):
        per_call = totals["compactions"] / max(totals["calls"], 1)
        table.add_row(f"compactions ({totals.get('compaction', '?')})",
                      f"{totals['compactions']:,}", f"{per_call:.2f}")  # fmt: skip
    if "fact_presence" in totals:
        table.add_row("planted facts present", f"{totals['fact_presence']:.1%}", "")
        table.add_row("stale values present", f"{totals['stale_values']:,}", "")
    _console().print(table)


def _print_simulation(result: SimulationResult, per_response: bool) -> None:
    console = _console()
    totals = result.totals()
    if per_response:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Responses", title_justify="left")
        for col in ("#", "t (s)", "input", "cached", "output", "items", "dropped", "USD"):
            table.add_column(col, justify="right")
        for row in result.per_response():
            table.add_row(
                str(row["response"]),
                f"{row['t']:.1f}",
                f"{row['input_tokens']:,}",
                f"{row['cached_tokens']:,}",
                f"{row['output_tokens']:,}",
                str(row["retained_items"]),
                "overflow" if row["overflow"] else str(row["dropped_items"] or ""),
                f"{row['cost_usd']:.5f}",
            )
        console.print(table)
    summary = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"{totals['model']} on {totals['provider']}, truncation {totals['truncation']}",
        title_justify="left",
    )
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    summary.add_row("responses", f"{totals['responses']:,}")
    summary.add_row("input tokens", f"{totals['input_tokens']:,}")
    summary.add_row("cached tokens", f"{totals['cached_tokens']:,}")
    summary.add_row("cache-hit ratio", f"{totals['cache_hit_ratio']:.1%}")
    summary.add_row("output tokens", f"{totals['output_tokens']:,}")
    summary.add_row(
        "truncations (items dropped)", f"{totals['truncations']} ({totals['dropped_items']})"
    )
    summary.add_row("overflows", str(totals["overflows"]))
    summary.add_row("cost", f"${totals['cost_usd']:.4f}")
    console.print(summary)
    if result.session_expired:
        console.print(
            f"[yellow]the session reached the {result.provider} maximum at"
            f" {result.expired_at:.0f} s; later turns were not run[/yellow]"
        )


def _print_replay(console: Console, name: str, report: ReplayReport) -> None:
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"{name} ({report.profile.name})",
        title_justify="left",
    )
    for col in ("s", "#", "status", "input", "text", "audio", "cached", "err", "USD"):
        table.add_column(col, justify="right")
    for row in iter_rows(report):
        table.add_row(
            str(row["session"]),
            str(row["response"]),
            row["status"],
            *(
                f"{p:,} / {'-' if o is None else format(o, ',')}"
                for p, o in (row["input"], row["text"], row["audio"], row["cached"])
            ),
            "-" if row["error_pct"] is None else f"{row['error_pct']:+.1f}%",
            f"{row['usd'][0]:.5f} / " + ("-" if row["usd"][1] is None else f"{row['usd'][1]:.5f}"),
        )
    console.print(table)
    summary = report.to_dict()
    cost = summary["cost_usd"]
    oob = f" ({summary['out_of_band']} out of band)" if summary["out_of_band"] else ""
    console.print(
        f"predicted / observed; {summary['compared']} compared{oob}: input audio exact"
        f" {summary['input_audio_exact']}, input text within 5%"
        f" {summary['input_text_within_5pct']}, cached exact {summary['cached_exact']};"
        f" ${cost['predicted']:.5f} / ${cost['observed']:.5f}"
        f" ({cost['difference']:+.5f})"
    )
    for note in summary["notes"]:
        console.print(f"note: {note}", markup=False, highlight=False)


def _print_sweep(
    rows: list[dict[str, Any]],
    spec: WorkloadSpec,
    calls: int,
    seed: int,
    facts: bool,
    grid: dict[str, list[Any]],
) -> None:
    # Columns for what varies; what is the same everywhere goes in the title.
    varying = [k for k, v in grid.items() if len(v) > 1]
    fixed = (
        [f"{k} {rows[0][k]}" for k in ("model", "provider", "compaction") if k not in varying]
        if rows
        else []
    )
    title = f"{calls:,} x {spec.name} ({spec.minutes:g} min), seed {seed}; " + ", ".join(fixed)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left", title=title)
    # On a narrow terminal a cell wraps rather than losing its digits to an ellipsis.
    names = (*varying, "truncation")
    measured = bool(facts and rows)
    rolled = any(r["rollovers_per_call"] for r in rows)
    compacted = any(r["compactions_per_call"] for r in rows)
    numbers = ["USD/call (95% CI)", "p95", "total USD", "hits", "trunc",
               *(["compactions"] if compacted else []), *(["rollovers"] if rolled else []),
               *(["facts"] if measured else [])]  # fmt: skip
    body: list[list[str]] = []
    for row in rows:
        mark = "*" if row["cheapest"] else ("=" if row["tied_with_cheapest"] else "")
        low, high = row["cost_usd_per_call_ci95"]
        cells = [
            f"{row['cost_usd_per_call']:.4f} ±{(high - low) / 2:.4f}",
            f"{row['cost_usd_per_call_percentiles']['p95']:.4f}",
            f"{row['cost_usd_total']:,.2f}",
            f"{row['cache_hit_ratio']:.1%}",
            f"{row['truncations_per_call']:.2f}",
        ]
        if compacted:
            cells.append(f"{row['compactions_per_call']:.2f}")
        if rolled:
            cells.append(f"{row['rollovers_per_call']:.2f}")
        if measured:
            cells.append(f"{row['fact_presence']:.1%}")
        body.append([*(row[k] for k in varying), row["truncation"], mark, *cells])
    # On a terminal too narrow for the table a cell wraps rather than losing its digits.
    for col in names:
        table.add_column(col, overflow="fold")
    table.add_column("", no_wrap=True)  # the cheapest (*) and tied (=) marks
    for col in numbers:
        table.add_column(col, justify="right", overflow="fold")
    for cells_row in body:
        table.add_row(*cells_row)
    _console().print(table)
    name = " / ".join
    best = [r for r in rows if r["cheapest"]]
    tied = [r for r in rows if r["tied_with_cheapest"]]
    if best:
        (b,) = best
        _console().print(
            f"* cheapest: {name((b['model'], b['provider'], b['truncation'], b['compaction']))}"
        )
    elif tied:
        exact = all(r["vs_cheapest_usd_per_call"]["high"] == 0.0 for r in tied)
        _console().print(
            f"= tied for cheapest, {len(tied)} rows: "
            + ("the same cost on every call" if exact else "the differences are within their"
               " 95 % interval (more calls may separate them)")
        )  # fmt: skip


def _print_bench(summaries: list[dict[str, Any]], title: str) -> None:
    from ..bench.report import presence_table, summary_table

    for (columns, rows), caption in (
        (summary_table(summaries), title),
        (presence_table(summaries), "facts kept by type: normalized (exact, where it differs)"),
        (presence_table(summaries, "dataset"), "facts kept by dataset"),
    ):
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left", title=caption,
                      min_width=len(caption))  # fmt: skip
        for n, col in enumerate(columns):
            table.add_column(col, justify="left" if n == 0 else "right", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        _console().print(table)
    _console().print("* on the Pareto front of cost and facts kept")
