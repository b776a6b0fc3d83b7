"""Regenerate the figures in docs/ from the tool itself.

Each generated block sits between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` in a docs
page and is rewritten from the command line's own output; the plots go to ``docs/img/``:

    python docs/generate.py           # rewrite the blocks and the plots
    python docs/generate.py --check   # write nothing; exit 1, one line a stale page (CI runs this)

The tests run every block at a tiny size instead (`generate(size=TINY)`): the same code on a few
short calls, to check its shape against the docs in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "data" / "realtime-logs"

# Set for one run by `_settings` (from `generate`): whether the blocks also draw their plots
# (--check compares the text only and leaves the images alone), and the size to run them at.
WRITE_PLOTS = True
SIZE: Mapping[str, Mapping[str, str]] = {}

# The tests' size, by command: each option is lowered to this value where the command line has a
# larger one, and added where it has none (it then runs on the default, the full size). Calls of
# 32 minutes still roll over once on Azure's 30-minute sessions; in 20, the benchmark's calls still
# truncate and compact. `simulate` and `replay` run at full size: a second at most all told.
TINY: Mapping[str, Mapping[str, str]] = {
    "sweep": {"--calls": "1", "--minutes": "32", "--workers": "1"},
    "bench": {"--calls": "1", "--seeds": "0", "--minutes": "20", "--workers": "1"},
}

# The plot each block draws (docs-relative, as the page references it).
PLOTS = {
    "providers-90": "img/providers-90min.png",
    "ratios-60": "img/ratios-60min.png",
    "one-call": "img/call-90min-azure.png",
    "bench-results": "img/bench-pareto.png",
}


def sized(args: tuple[str, ...]) -> list[str]:
    """The command line at the current `SIZE`."""
    out = list(args)
    for option, value in SIZE.get(out[0], {}).items():
        if option in out:
            i = out.index(option) + 1
            with contextlib.suppress(ValueError):  # a count or a length: lowered, never raised
                value = min(value, out[i], key=float)
            out[i] = value
        else:
            out += [option, value]
    return out


def cli_json(*args: str) -> dict:
    """Run the command line in-process (at the current `SIZE`) and parse its --json output."""
    from context_manager.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.chdir(ROOT):
        main([*sized(args), "--json"])
    return json.loads(out.getvalue())


def plot(block: str) -> tuple[str, ...]:
    """The ``--plot`` option drawing `block`'s figure, when this run writes the plots."""
    return ("--plot", f"docs/{PLOTS[block]}") if WRITE_PLOTS else ()


def worked_example() -> str:
    common = (
        "simulate", "--conversation", "examples/voice-call-60min.jsonl",
        "--instructions", "examples/instructions.md", "--tools", "examples/tools.json",
    )  # fmt: skip
    runs = {t: cli_json(*common, "--truncation", t) for t in ("auto", "retention_ratio:0.8")}
    auto, ratio = runs["auto"], runs["retention_ratio:0.8"]
    rows = [
        ("responses", "responses", "{:,}"),
        ("truncation events", "truncations", "{:,}"),
        ("items dropped", "dropped_items", "{:,}"),
        ("input tokens", "input_tokens", "{:,}"),
        ("cached tokens", "cached_tokens", "{:,}"),
        ("cache-hit ratio", "cache_hit_ratio", "{:.1%}"),
        ("output tokens", "output_tokens", "{:,}"),
        ("cost (USD)", "cost_usd", "${:.2f}"),
    ]
    lines = ["| | `auto` | `retention_ratio:0.8` |", "|---|---:|---:|"]
    for label, key, fmt in rows:
        lines.append(f"| {label} | {fmt.format(auto[key])} | {fmt.format(ratio[key])} |")
    lines.append("")
    lines.append(
        f"`auto` costs **{auto['cost_usd'] / ratio['cost_usd']:.2f}×** what `retention_ratio:0.8`"
        f" does on this call: {auto['truncations']} truncation events against"
        f" {ratio['truncations']}, each one a cache miss from the first dropped item on."
    )
    return "\n".join(lines)


def gpt_realtime_logs() -> list[Path]:
    from context_manager.replay import read_event_log, replay

    return [
        p
        for p in sorted(LOGS.glob("*.jsonl"))
        if replay(read_event_log(p)).profile.name == "gpt-realtime"
    ]


def replay_table() -> str:
    logs = sorted(LOGS.glob("*.jsonl"))
    data = cli_json("replay", *(str(p.relative_to(ROOT)) for p in logs))
    lines = [
        "| recording | model | # | input | text | audio | cached | cost (µ$) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = ("compared", "input_audio_exact", "input_text_within_5pct", "cached_exact")
    totals = dict.fromkeys(keys, 0)
    usd = {"predicted": 0.0, "observed": 0.0}
    for log in data["logs"]:
        name = Path(log["file"]).stem.replace("test_", "").replace("__", " ")
        model = log["model"]
        for row in log["rows"]:
            p, o = row["predicted"], row["observed"]
            cells = [
                f"{p[k]:,} / {o[k]:,}"
                for k in ("input_tokens", "text_tokens", "audio_tokens", "cached_tokens")
            ]
            cost = row["cost_usd"]
            cells.append(f"{cost['predicted'] * 1e6:,.0f} / {cost['observed'] * 1e6:,.0f}")
            lines.append(f"| {name} | {model} | {row['response']} | " + " | ".join(cells) + " |")
        for key in totals:
            totals[key] += log[key]
        for key in usd:
            usd[key] += log["cost_usd"][key]
    lines.append("")
    lines.append(
        f"{len(logs)} recordings, {totals['compared']} responses: input audio exact on"
        f" {totals['input_audio_exact']}, input text within 5 % on {totals['input_text_within_5pct']},"
        f" cached tokens exact on {totals['cached_exact']}. Cost: ${usd['predicted']:.5f}"
        f" predicted against ${usd['observed']:.5f} observed"
        f" ({100 * (usd['predicted'] - usd['observed']) / usd['observed']:+.1f} %)."
    )
    return "\n".join(lines)


def _unfitted_reasoning_profile(path: Path) -> Path:
    """gpt-realtime-2.1 as it was before the fit: no preamble, no reasoning, overhead 4."""
    profile = cli_json("profiles")["models"]
    base = next(m for m in profile if m["name"] == "gpt-realtime-2.1")
    base |= {"item_overhead_tokens": 4, "request_preamble_tokens": 0,
             "tools_preamble_tokens": 0, "reasoning_output_tokens": 0}  # fmt: skip
    path.write_text(json.dumps(base))
    return path


def fit_table() -> str:
    logs = gpt_realtime_logs()
    groups = {
        "OpenAI recordings": [p for p in logs if "azure" not in p.name],
        "Azure recordings": [p for p in logs if "azure" in p.name],
        "all gpt-realtime recordings": logs,
    }
    lines = ["| logs | error before | after | what changed |", "|---|---:|---:|---|"]
    base = cli_json("profiles")["models"]
    builtin = next(m for m in base if m["name"] == "gpt-realtime")
    for label, paths in groups.items():
        fit = cli_json("replay", *(str(p.relative_to(ROOT)) for p in paths), "--fit")["fit"]
        changed = {k: v for k, v in fit["profile"].items() if builtin.get(k) != v}
        for key in ("cache",):
            if key in changed:
                inner = {k: v for k, v in changed.pop(key).items() if builtin[key].get(k) != v}
                changed |= {f"{key}.{k}": v for k, v in inner.items()}
        what = (
            ", ".join(f"`{k}` {builtin.get(k, '?')} → {v}" for k, v in changed.items()) or "nothing"
        )
        lines.append(
            f"| {label} ({len(paths)}) | {fit['baseline_error']} | {fit['error']} | {what} |"
        )
    reasoning = [p for p in sorted(LOGS.glob("*.jsonl")) if p not in logs]
    with tempfile.TemporaryDirectory() as tmp:
        before = _unfitted_reasoning_profile(Path(tmp) / "before.json")
        start = json.loads(before.read_text())
        fit = cli_json(
            "replay", *(str(p.relative_to(ROOT)) for p in reasoning), "--profile", str(before),
            "--fit",
        )["fit"]  # fmt: skip
    changed = {k: v for k, v in fit["profile"].items() if start.get(k) != v}
    what = ", ".join(f"`{k}` {start.get(k, '?')} → {v}" for k, v in changed.items()) or "nothing"
    lines.append(
        f"| gpt-realtime-2.1 recordings ({len(reasoning)}), from no preamble |"
        f" {fit['baseline_error']} | {fit['error']} | {what} |"
    )
    return "\n".join(lines)


def _sweep_table(rows: list[dict], columns: list[str]) -> str:
    head = [*columns, "USD per call (95% CI)", "p95 per call", "USD, all calls", "cache hits",
            "truncations per call", "rollovers per call"]  # fmt: skip
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(columns) + "---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " **(cheapest)**" if r["cheapest"] else " (tied)" if r["tied_with_cheapest"] else ""
        cells = [f"`{r[c]}`" for c in columns]
        cells[-1] += mark
        low, high = r["cost_usd_per_call_ci95"]
        lines.append(
            "| " + " | ".join(cells) + f" | ${r['cost_usd_per_call']:.3f} ±{(high - low) / 2:.3f}"
            f" | ${r['cost_usd_per_call_percentiles']['p95']:.3f} | ${r['cost_usd_total']:,.0f}"
            f" | {r['cache_hit_ratio']:.1%}"
            f" | {r['truncations_per_call']:.2f} | {r['rollovers_per_call']:.2f} |"
        )
    if any(r["tied_with_cheapest"] for r in rows):
        lines.append("")
        lines.append(
            "(tied): cheapest within the 95 % interval of the paired per-call difference; the"
            " figures do not tell them apart."
        )
    return "\n".join(lines)


PROVIDERS_90 = (
    "sweep",
    "--workload",
    "voice-agent",
    "--minutes",
    "90",
    "--calls",
    "1000",
    "--seed",
    "11",
    "--provider",
    "openai,azure",
    "--truncation",
    "auto,retention_ratio:0.8",
    "--instructions",
    "examples/instructions.md",
    "--tools",
    "examples/tools.json",
)
RATIOS_60 = (
    "sweep",
    "--workload",
    "voice-agent",
    "--minutes",
    "60",
    "--calls",
    "1000",
    "--seed",
    "11",
    "--provider",
    "openai",
    "--truncation",
    "auto,retention_ratio:0.9,retention_ratio:0.8,retention_ratio:0.7,"
    "retention_ratio:0.6,retention_ratio:0.5",
    "--instructions",
    "examples/instructions.md",
    "--tools",
    "examples/tools.json",
)


def providers_90() -> str:
    rows = cli_json(*PROVIDERS_90, *plot("providers-90"))["rows"]
    by = {(r["provider"], r["truncation"]): r for r in rows}
    openai, azure = by[("openai", "retention_ratio:0.8")], by[("azure", "retention_ratio:0.8")]
    return _sweep_table(rows, ["provider", "truncation"]) + (
        f"\n\nWith `retention_ratio:0.8`, a 90-minute call costs ${openai['cost_usd_per_call']:.3f}"
        f" on OpenAI and ${azure['cost_usd_per_call']:.3f} on Azure"
        f" ({azure['cost_usd_per_call'] / openai['cost_usd_per_call']:.2f}x)."
    )


FLEET_10K = ("sweep", "--workload", "support-call", "--minutes", "60", "--calls", "10000",
             "--provider", "openai,azure",
             "--truncation", "auto,retention_ratio:0.8,retention_ratio:0.5")  # fmt: skip


def fleet_10k() -> str:
    rows = cli_json(*FLEET_10K)["rows"]
    lines = [
        "| provider | truncation | USD per call (95% CI) | p50 | p95 | p99 | USD, all calls"
        " | uncached audio in | cached in | output |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " **(cheapest)**" if r["cheapest"] else " (tied)" if r["tied_with_cheapest"] else ""
        low, high = r["cost_usd_per_call_ci95"]
        p, split = r["cost_usd_per_call_percentiles"], r["cost_split_usd_per_call"]
        cached = split["text_cached"] + split["audio_cached"]
        output = split["text_output"] + split["audio_output"]
        lines.append(
            f"| `{r['provider']}` | `{r['truncation']}`{mark}"
            f" | ${r['cost_usd_per_call']:.3f} ±{(high - low) / 2:.3f}"
            f" | ${p['p50']:.3f} | ${p['p95']:.3f} | ${p['p99']:.3f} | ${r['cost_usd_total']:,.0f}"
            f" | ${split['audio_input']:.3f} | ${cached:.3f} | ${output:.3f} |"
        )
    calls = rows[0]["calls"]
    return (
        "\n".join(lines)
        + f"\n\n{calls:,} calls a row; the split columns are per call."
        + (_margin(rows))
    )


FLEET_COMPACTION = ("sweep", "--workload", "tool-heavy", "--minutes", "60", "--calls", "10000",
                    "--provider", "openai,azure", "--truncation", "auto,retention_ratio:0.8",
                    "--compaction", "none", "--compaction", "drop-oldest",
                    "--compaction", "drop-oldest:trigger=0.8,target=0.5",
                    "--compaction", "audio-to-text", "--compaction", "rolling-summary")  # fmt: skip


def fleet_compaction() -> str:
    rows = cli_json(*FLEET_COMPACTION)["rows"]
    lines = [
        "| provider | truncation | compaction | USD per call (95% CI) | USD, all calls"
        " | cache hits | compactions per call | truncations per call |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " **(cheapest)**" if r["cheapest"] else " (tied)" if r["tied_with_cheapest"] else ""
        low, high = r["cost_usd_per_call_ci95"]
        lines.append(
            f"| `{r['provider']}` | `{r['truncation']}` | `{r['compaction']}`{mark}"
            f" | ${r['cost_usd_per_call']:.3f} ±{(high - low) / 2:.3f}"
            f" | ${r['cost_usd_total']:,.0f} | {r['cache_hit_ratio']:.1%}"
            f" | {r['compactions_per_call']:.1f} | {r['truncations_per_call']:.1f} |"
        )
    said = []
    for provider in dict.fromkeys(r["provider"] for r in rows):
        mine = {(r["truncation"], r["compaction"]): r for r in rows if r["provider"] == provider}
        base = mine.get(("retention_ratio:0.8", "none"))
        best = min(
            (r for (t, c), r in mine.items() if c != "none"), key=lambda r: r["cost_usd_per_call"]
        )
        if base is None:
            continue
        saved = base["cost_usd_per_call"] - best["cost_usd_per_call"]
        said.append(
            f"on `{provider}`, `{best['compaction']}` under `{best['truncation']}` costs"
            f" ${abs(saved):.3f} per call {'less' if saved > 0 else 'more'} than"
            f" `retention_ratio:0.8` alone (${abs(saved) * base['calls']:,.0f} over the"
            f" {base['calls']:,} calls)"
        )
    calls = rows[0]["calls"]
    return (
        "\n".join(lines)
        + f"\n\n{calls:,} calls a row, the same calls at every row. The best compaction: "
        + "; ".join(said)
        + "."
    )


def _margin(rows: list[dict]) -> str:
    """How far the next row is from the cheapest one (the paired difference)."""
    best = [r for r in rows if r["cheapest"]]
    others = [r for r in rows if not r["cheapest"]]
    if not best or not others:
        return ""
    near = min(others, key=lambda r: r["vs_cheapest_usd_per_call"]["mean"])
    d = near["vs_cheapest_usd_per_call"]
    small = d["mean"] < 0.01 * best[0]["cost_usd_per_call"]
    return (
        f" The nearest row, `{near['provider']}` `{near['truncation']}`, costs ${d['mean']:.4f}"
        f" more per call (95 % interval ${d['low']:.4f} to ${d['high']:.4f})"
        + (": a real difference, under 1 % of the cost." if small else ".")
        + " The calls are the same at every row, so the difference is measured call by call."
    )


def ratios_60() -> str:
    rows = cli_json(*RATIOS_60, *plot("ratios-60"))["rows"]
    return _sweep_table(rows, ["truncation"])


def one_call() -> str:
    args = (
        "simulate",
        "--workload",
        "voice-agent",
        "--minutes",
        "90",
        "--calls",
        "1",
        "--seed",
        "11",
        "--provider",
        "azure",
        "--truncation",
        "retention_ratio:0.8",
        "--instructions",
        "examples/instructions.md",
        "--tools",
        "examples/tools.json",
    )
    data = cli_json(*args, *plot("one-call"))
    return (
        f"One such call: {data['responses']} responses, {data['rollovers']} rollovers,"
        f" cache hits {data['cache_hit_ratio']:.1%}, ${data['cost_usd']:.2f}."
    )


COMPACTION = ("sweep", "--workload", "voice-agent", "--minutes", "60", "--calls", "12",
              "--seed", "5", "--facts", "--truncation", "auto", "--workers", "2",
              "--instructions", "examples/instructions.md", "--tools", "examples/tools.json",
              *(x for c in ("none", "drop-oldest", "audio-to-text", "rolling-summary",
                            "hierarchical", "ledger", "ledger:summary_budget=256")
                for x in ("--compaction", c)))  # fmt: skip
RATIO_WITH_FACTS = (
    "sweep",
    "--workload",
    "voice-agent",
    "--minutes",
    "60",
    "--calls",
    "12",
    "--seed",
    "5",
    "--facts",
    "--truncation",
    "retention_ratio:0.8",
    "--instructions",
    "examples/instructions.md",
    "--tools",
    "examples/tools.json",
)


def compaction_table() -> str:
    from context_manager.bench.report import beats_baseline

    rows = cli_json(*RATIO_WITH_FACTS)["rows"] + cli_json(*COMPACTION)["rows"]
    base = rows[0]
    lines = [
        "| server truncation | client compaction | USD per call | x 0.8 | cache hits | facts present | stale values | compactions per call |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['truncation']}` | `{r['compaction']}` | ${r['cost_usd_per_call']:.3f}"
            f" | {r['cost_usd_per_call'] / base['cost_usd_per_call']:.2f}"
            f" | {r['cache_hit_ratio']:.1%} | {r['fact_presence']:.1%}"
            f" | {r['stale_values_per_call']:.2f} | {r['compactions_per_call']:.1f} |"
        )
    better = beats_baseline(rows, base, cost="cost_usd_per_call")
    best = min(better, key=lambda r: r["cost_usd_per_call"]) if better else None
    if best:
        lines.append(
            f"\n`{best['compaction']}` keeps {best['fact_presence']:.1%} of the planted facts against"
            f" {base['fact_presence']:.1%} for `retention_ratio:0.8`, at"
            f" {best['cost_usd_per_call'] / base['cost_usd_per_call']:.2f}x its cost."
        )
    return "\n".join(lines)


def rollover_carry() -> str:
    lines = ["| rollover seed | USD per call | cache hits | rollovers per call | facts present |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for seed in ("recent:4096", "summary:4096:512", "ledger:4096:512"):
        (row,) = cli_json("sweep", "--workload", "voice-agent", "--minutes", "90", "--calls", "10",
                          "--seed", "5", "--provider", "azure", "--facts", "--truncation", "auto",
                          "--rollover", seed, "--instructions", "examples/instructions.md",
                          "--tools", "examples/tools.json")["rows"]  # fmt: skip
        lines.append(f"| `{seed}` | ${row['cost_usd_per_call']:.3f} | {row['cache_hit_ratio']:.1%}"
                     f" | {row['rollovers_per_call']:.2f} | {row['fact_presence']:.1%} |")  # fmt: skip
    return "\n".join(lines)


def cold_timing() -> str:
    lines = ["| holds | client compaction | USD per call | cache hits | compactions per call | facts present |",
             "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for hold in ("0", "0.05"):
        rows = cli_json(
            "sweep", "--workload", "support-call", "--minutes", "60", "--calls", "12",
            "--seed", "5", "--facts", "--truncation", "auto", "--param", f"hold_rate={hold}",
            "--workers", "2", "--instructions", "examples/instructions.md",
            "--tools", "examples/tools.json", "--compaction", "rolling-summary",
            "--compaction", "rolling-summary:cold=0.4",
        )["rows"]  # fmt: skip
        for r in rows:
            share = "none" if hold == "0" else f"{float(hold):.0%} of turns, 6 min"
            lines.append(f"| {share} | `{r['compaction']}` | ${r['cost_usd_per_call']:.3f}"
                         f" | {r['cache_hit_ratio']:.1%} | {r['compactions_per_call']:.1f}"
                         f" | {r['fact_presence']:.1%} |")  # fmt: skip
    return "\n".join(lines)


def compact_now_or_later() -> str:
    import numpy as np

    from context_manager import ServerModel, get_model_profile
    from context_manager.compaction import CompactionContext, RollingSummary, price_compaction
    from context_manager.server import ManualClock, SessionConfig
    from context_manager.simulate.reference import plan_turns
    from context_manager.simulate.workloads import generate, workload

    # A session 45 minutes into a seeded voice-agent call, its history at about 70 % of the limit.
    items = generate(workload("voice-agent", minutes=45), 1, np.random.default_rng(2)).items(0)
    clock = ManualClock()
    instructions = (ROOT / "examples" / "instructions.md").read_text()
    server = ServerModel(get_model_profile("gpt-realtime"), clock=clock,
                         config=SessionConfig(instructions=instructions))  # fmt: skip
    for turn in plan_turns(items):
        for t, item in turn.inputs:
            clock.set(max(t, clock.now))
            server.create_item(item)
        if turn.output:
            clock.set(max(turn.t, clock.now))
            server.create_response(turn.output)
    history, limit = server.retained_tokens().total, server.budget.history_limit
    context = CompactionContext(server.items, server.counter, limit)
    plan = RollingSummary(trigger=0.1, keep=6).plan(context)
    assert plan is not None
    lines = [f"History: {history:,} of {limit:,} tokens. Plan: `rolling-summary` (keep 6 turns).", "",
             "| responses ahead | next turn after | compact now (USD) | let it be (USD) | cheaper |",
             "|---:|---|---:|---:|---|"]  # fmt: skip
    for gap, label in ((10.0, "10 s"), (400.0, "400 s (cache expired)")):
        for ahead in (1, 3, 10, 40):
            price = price_compaction(server, plan, responses=ahead, seconds_between=gap)
            if price.responses < ahead:
                continue
            lines.append(f"| {ahead} | {label} | ${price.now_usd:.4f} | ${price.later_usd:.4f}"
                         f" | {'compact now' if price.compact_now else 'let it be'} |")  # fmt: skip
    return "\n".join(lines)


def voice_carry() -> str:
    """A 95-minute Azure voice call with transcription off, per carry mode (the tests run it too)."""
    import asyncio
    import tempfile

    from context_manager.testing.voicecall import CARRY_MODES, carry_table, run_voice_call

    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in CARRY_MODES:
            url = f"sqlite:///{tmp}/{mode}.db"
            reports.append(asyncio.run(run_voice_call(mode, url, drop_at_minute=90)))
    return carry_table(reports)


def example_module(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module (the examples are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def agents_default() -> str:
    """The same scripted 95-minute Azure call through the Agents SDK, its model as shipped
    and managed (`examples/openai_agents_call.py`; a test runs it too)."""
    import asyncio

    example = example_module("openai_agents_call")
    outcomes = [asyncio.run(example.scripted_call(managed)) for managed in (False, True)]
    return str(example.comparison_table(outcomes))


def livekit_default() -> str:
    """The same scripted 95-minute Azure call through LiveKit's AgentSession, its model as
    shipped and managed (`examples/livekit_agents_call.py`; a test runs it too)."""
    import asyncio

    example = example_module("livekit_agents_call")
    outcomes = [asyncio.run(example.scripted_call(managed)) for managed in (False, True)]
    return str(example.comparison_table(outcomes))


def pipecat_default() -> str:
    """The same scripted 95-minute Azure voice call through a Pipecat pipeline, its service as
    shipped and managed (`examples/pipecat_call.py`; a test runs it too)."""
    import asyncio

    example = example_module("pipecat_call")
    example.quiet()
    outcomes = [asyncio.run(example.scripted_call(managed)) for managed in (False, True)]
    return str(example.comparison_table(outcomes))


def _markdown(columns: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1),
            *("| " + " | ".join(row) + " |" for row in rows)]  # fmt: skip


def bench_results() -> str:
    """The full compaction benchmark, as the CLI prints it (timings left out: they vary)."""
    from context_manager.bench.report import presence_table, summary_table

    data = cli_json("bench", "--workers", "2", *plot("bench-results"))
    summaries = data["strategies"]
    lines = _markdown(*summary_table(summaries, timings=False))
    lines += [
        "",
        data["verdict"],
        "",
        "Facts kept by type, normalized (exact where it differs):",
        "",
    ]
    lines += _markdown(*presence_table(summaries))
    lines += ["", "Facts kept by dataset:", "", *_markdown(*presence_table(summaries, "dataset"))]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[str, Callable[[], str]]] = {
    "now-or-later": ("compaction.md", compact_now_or_later),
    "cold-timing": ("compaction.md", cold_timing),
    "compaction-table": ("compaction.md", compaction_table),
    "rollover-carry": ("compaction.md", rollover_carry),
    "providers-90": ("cost-analysts.md", providers_90),
    "ratios-60": ("cost-analysts.md", ratios_60),
    "one-call": ("cost-analysts.md", one_call),
    "worked-example": ("server-model.md", worked_example),
    "fleet-10k": ("cost-analysts.md", fleet_10k),
    "fleet-compaction": ("cost-analysts.md", fleet_compaction),
    "replay-table": ("server-model.md", replay_table),
    "fit-table": ("server-model.md", fit_table),
    "bench-results": ("researchers.md", bench_results),
    "voice-carry": ("agent-builders.md", voice_carry),
    "agents-default": ("openai-agents.md", agents_default),
    "livekit-default": ("livekit-agents.md", livekit_default),
    "pipecat-default": ("pipecat.md", pipecat_default),
}


# Blocks a test of the suite runs at full size and compares with the docs row for row: `--check`
# leaves them to those tests rather than running them twice.
ROW_TESTED: dict[str, str] = {
    "voice-carry": "tests/engine/test_voice_call.py",
    "agents-default": "tests/integrations/test_agents_example.py",
    "livekit-default": "tests/integrations/test_livekit_example.py",
    "pipecat-default": "tests/integrations/test_pipecat_example.py",
}


def render(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"docs: no block {name!r}")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


@contextlib.contextmanager
def _settings(*, plots: bool, size: Mapping[str, Mapping[str, str]]) -> Iterator[None]:
    global WRITE_PLOTS, SIZE
    saved = WRITE_PLOTS, SIZE
    WRITE_PLOTS, SIZE = plots, size
    try:
        yield
    finally:
        WRITE_PLOTS, SIZE = saved


def generate(
    names: list[str] | None = None,
    *,
    plots: bool = False,
    size: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    """Each block's new body (all blocks by default), at the docs' size or `size` (`TINY`)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    with _settings(plots=plots, size=size or {}):
        return {name: BLOCKS[name][1]() for name in names or BLOCKS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1, naming each stale page and block, if any block is stale",
    )
    args = parser.parse_args(argv)
    names = [n for n in BLOCKS if not (args.check and n in ROW_TESTED)]
    bodies = generate(names, plots=not args.check)
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    stale: dict[str, list[str]] = {}
    for name in names:
        page = BLOCKS[name][0]
        old.setdefault(page, (ROOT / "docs" / page).read_text())
        text = new.get(page, old[page])
        new[page] = render(text, name, bodies[name])
        if new[page] != text:
            stale.setdefault(page, []).append(name)
    if args.check:
        hint = "(run python docs/generate.py)"
        problems = [
            f"docs/{page}: stale: {', '.join(names)} {hint}" for page, names in stale.items()
        ]
        problems += [
            f"docs/{path}: missing {hint}"
            for path in PLOTS.values()
            if not (ROOT / "docs" / path).is_file()
        ]
        for line in problems:
            print(line)
        if problems:
            return 1
        print(f"docs: the {len(names)} generated blocks in {len(old)} pages are current"
              f" ({len(ROW_TESTED)} more are compared row for row by their tests)")  # fmt: skip
        return 0
    for page, text in new.items():
        if text != old[page]:
            (ROOT / "docs" / page).write_text(text)
    names = [name for names in stale.values() for name in names]
    print("updated: " + (", ".join(names) if names else "nothing"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
