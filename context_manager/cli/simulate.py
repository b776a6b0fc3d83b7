"""Commands that run the simulator: ``simulate`` (one file, or many seeded calls) and ``sweep``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..compaction import parse_compaction
from ..errors import ConfigurationError
from ..profiles import get_model_profile
from ..rollover import RolloverPolicy
from ..server import SessionConfig, Truncation
from ..simulate import simulate_call
from ..simulate.given import resample_files
from ..simulate.plots import plot_session, plot_sweep
from ..simulate.runner import chunk_tasks, estimated_seconds, reference_bound, run_calls
from ..simulate.sweep import sweep as run_sweep
from ..simulate.sweep import write_csv
from ..simulate.workloads import DEFAULT_FACTS
from .options import (
    CompactionOption,
    DaskSchedulerOption,
    FactsFlag,
    InstructionsOption,
    JsonFlag,
    ModelOption,
    ProfileOption,
    ProviderOption,
    RolloverOption,
    ToolsOption,
    TruncationOption,
    WorkersOption,
    _conversation,
    _executor,
    _output,
    _path,
    _profile,
    _provider,
    _session_files,
    _workload,
    _writing,
)
from .render import _emit_json, _print_run, _print_simulation, _print_sweep, _progress_bar

__all__ = ["MOST_CALLS", "simulate", "sweep"]

MOST_CALLS = 10_000_000
"""The most calls a run may ask for: their per-call figures alone then take about 2.4 GB."""


def simulate(
    conversation: Annotated[
        Path | None, typer.Option("--conversation", help="A conversation JSONL file to run.")
    ] = None,
    workload_name: Annotated[
        str | None,
        typer.Option(
            "--workload",
            help="voice-agent, support-call, tool-heavy, or files:A.jsonl[,B.jsonl] (resampled).",
        ),
    ] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Length of each call.")] = None,
    calls: Annotated[
        int,
        typer.Option(
            "--calls", "--sessions", min=1, max=MOST_CALLS, help="How many calls to simulate."
        ),
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulated calls.")] = 0,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A workload parameter, KEY=VALUE (repeatable)."),
    ] = None,
    model: ModelOption = None,
    profile: ProfileOption = None,
    provider: ProviderOption = "openai",
    instructions: InstructionsOption = None,
    tools: ToolsOption = None,
    truncation: TruncationOption = "auto",
    rollover: RolloverOption = "recent:4096",
    compaction: CompactionOption = "none",
    facts: FactsFlag = False,
    path: Annotated[
        str, typer.Option("--path", help="vectorized (default) or reference.")
    ] = "vectorized",
    per_response: Annotated[
        bool, typer.Option("--per-response", help="Also list every response (of the first call).")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Draw the (first) call to this PNG file.")
    ] = None,
    workers: WorkersOption = None,
    dask_scheduler: DaskSchedulerOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Simulate calls against the server model: tokens, cache hits, truncation, rollover, cost."""
    if (conversation is None) == (workload_name is None):
        raise ConfigurationError("give --conversation FILE or --workload NAME (one of them)")
    _output(plot, "--plot")
    run_path = _path(path)  # checked whatever the input, so a typo is never ignored
    prof = _profile(model, profile)
    prov = _provider(provider)
    text, tool_list = _session_files(instructions, tools)
    config = SessionConfig(
        instructions=text, tools=tuple(tool_list), truncation=Truncation.parse(truncation)
    )
    policy = RolloverPolicy.parse(rollover)
    strategy = parse_compaction(compaction)
    if conversation is not None:
        result = simulate_call(
            _conversation(conversation), prof, prov, config=config, rollover=policy,
            compaction=strategy,
        )  # fmt: skip
        if plot is not None:
            with _writing(plot, "--plot"):
                plot_session(result, plot)
        if as_json:
            _emit_json(result.to_dict(per_response=per_response))
        else:
            _print_simulation(result, per_response)
        return
    assert workload_name is not None
    spec, files = _workload(workload_name, minutes, param or [])
    if facts:
        spec = spec.with_(facts=DEFAULT_FACTS)
    batch = (
        resample_files(files, calls, spec.minutes, np.random.default_rng(seed)) if files else None
    )
    slow = reference_bound(run_path, policy, strategy, bool(spec.facts))
    tasks = 1 if batch is not None else len(chunk_tasks(spec, calls, seed, slow))
    with contextlib.ExitStack() as stack:
        work = (tasks, estimated_seconds(spec, calls, slow))
        executor = _executor(stack, workers, dask_scheduler, work)
        progress = stack.enter_context(_progress_bar(not as_json, f"simulating {calls:,} calls"))
        run = run_calls(
            spec, calls, profile=prof, provider=prov, config=config, rollover=policy,
            seed=seed, path=run_path, progress=progress, batch=batch,
            keep_first=per_response or plot is not None, compaction=strategy,
            executor=executor,
        )  # fmt: skip
    out = run.totals()
    out["compaction"] = compaction.strip()
    if run.first is not None and plot is not None:
        with _writing(plot, "--plot"):
            plot_session(run.first, plot)
    if as_json:
        if per_response and run.first is not None:
            out["per_response"] = run.first.per_response()
        _emit_json(out)
        return
    if per_response and run.first is not None:
        _print_simulation(run.first, True)
    _print_run(out)


_DEFAULT_SWEEP = ",".join(
    ["auto", *(f"retention_ratio:{r}" for r in ("0.9", "0.8", "0.7", "0.6", "0.5"))]
)


def sweep(
    workload_name: Annotated[
        str, typer.Option("--workload", help="voice-agent, support-call, tool-heavy, files:...")
    ] = "voice-agent",
    minutes: Annotated[float | None, typer.Option("--minutes", help="Length of each call.")] = None,
    calls: Annotated[
        int,
        typer.Option("--calls", "--sessions", min=1, max=MOST_CALLS, help="Calls per grid point."),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulated calls.")] = 0,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A workload parameter, KEY=VALUE.")
    ] = None,
    truncation: Annotated[
        str, typer.Option("--truncation", help="Comma-separated truncation settings.")
    ] = _DEFAULT_SWEEP,
    provider: Annotated[
        str, typer.Option("--provider", help="Comma-separated providers.")
    ] = "openai",
    model: Annotated[str, typer.Option("--model", help="Comma-separated models.")] = "gpt-realtime",
    instructions: InstructionsOption = None,
    tools: ToolsOption = None,
    rollover: RolloverOption = "recent:4096",
    compaction: Annotated[
        list[str] | None,
        typer.Option(
            "--compaction",
            help="A compaction strategy to compare (repeatable; none, drop-oldest, ...).",
        ),
    ] = None,
    facts: FactsFlag = False,
    workers: WorkersOption = None,
    dask_scheduler: DaskSchedulerOption = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the rows as CSV.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Cost per call, as PNG.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare settings on the same simulated calls: cost, cache hits, truncations, rollovers."""
    if workload_name.startswith("files:"):
        raise ConfigurationError("sweep runs generated workloads; use files: with simulate")
    _output(csv_path, "--csv")
    _output(plot, "--plot")
    spec, _ = _workload(workload_name, minutes, param or [])
    if facts:
        spec = spec.with_(facts=DEFAULT_FACTS)
    strategies = compaction or ["none"]
    for spec_text in strategies:
        parse_compaction(spec_text)  # a bad one fails before any work
    text, tool_list = _session_files(instructions, tools)
    models = [get_model_profile(m.strip()) for m in model.split(",") if m.strip()]
    providers = [_provider(p.strip()) for p in provider.split(",") if p.strip()]
    truncations = [Truncation.parse(t) for t in truncation.split(",") if t.strip()]
    policy = RolloverPolicy.parse(rollover)
    points = len(models) * len(providers) * len(truncations)
    work = [(len(chunk_tasks(spec, calls, seed, slow)), estimated_seconds(spec, calls, slow))
            for c in strategies
            for slow in [reference_bound("vectorized", policy, parse_compaction(c),
                                         bool(spec.facts))]]  # fmt: skip
    tasks = points * sum(n for n, _ in work)
    seconds = points * sum(s for _, s in work)
    with contextlib.ExitStack() as stack:
        executor = _executor(stack, workers, dask_scheduler, (tasks, seconds))
        progress = stack.enter_context(_progress_bar(not as_json, "sweeping"))
        rows = run_sweep(
            spec, calls, models=models, providers=providers, truncations=truncations,
            compactions=strategies, instructions=text, tools=tool_list,
            rollover=policy, seed=seed, executor=executor, progress=progress,
        )  # fmt: skip
    if csv_path is not None:
        with _writing(csv_path, "--csv"):
            write_csv(rows, csv_path)
    if plot is not None:
        series = "provider" if len(providers) > 1 else ("model" if len(models) > 1 else None)
        with _writing(plot, "--plot"):
            plot_sweep(rows, "truncation", plot, series=series)
    if as_json:
        _emit_json({"rows": rows})
        return
    _print_sweep(rows, spec, calls, seed, facts, {"model": models, "provider": providers,
                 "compaction": strategies})  # fmt: skip
