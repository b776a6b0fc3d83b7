"""The ``bench`` command: the compaction benchmark over its datasets (`context_manager.bench`)."""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigurationError
from .options import (
    DaskSchedulerOption,
    JsonFlag,
    WorkersOption,
    _executor,
    _output,
    _seeds,
    _writing,
)
from .render import _console, _emit_json, _print_bench, _progress_bar

__all__ = ["bench"]


def bench(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="Comma-separated: voice-agent, support-call, tool-heavy (seeded synthetic"
            " calls), chitchat (real conversations). Default: all four, or none when"
            " --locomo or --longmemeval is given (that file alone).",
        ),
    ] = "",
    calls: Annotated[
        int, typer.Option("--calls", min=1, max=100_000, help="Calls per dataset and seed.")
    ] = 100,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds.")] = "0,1",
    minutes: Annotated[float, typer.Option("--minutes", help="Length of each call.")] = 50.0,
    locomo_path: Annotated[
        Path | None, typer.Option("--locomo", help="A LoCoMo JSON file of your own.")
    ] = None,
    longmemeval_path: Annotated[
        Path | None, typer.Option("--longmemeval", help="A LongMemEval JSON file of your own.")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategies", help="Comma-separated strategy names.")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="The model profile.")] = "gpt-realtime",
    quick: Annotated[
        bool, typer.Option("--quick", help="2 calls a dataset, the first seed only.")
    ] = False,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge", help="Also ask this OpenAI model if each fact is still there."),
    ] = None,
    summary_model: Annotated[
        str | None,
        typer.Option("--summarizer", help="Write the summaries with this OpenAI model."),
    ] = None,
    workers: WorkersOption = None,
    dask_scheduler: DaskSchedulerOption = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the rows as CSV.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Cost against facts kept, as PNG.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Benchmark compaction: what each strategy costs, and which planted facts it keeps."""
    from ..bench import load_datasets
    from ..bench.arrays import SECONDS_PER_RUN_MINUTE
    from ..bench.datasets import (
        DEFAULT_DATASETS,
        BenchConversation,
        Recipe,
        call_minutes,
        minutes_spread,
        recipes,
    )
    from ..bench.report import plot_pareto, verdict, write_rows
    from ..bench.run import CHUNK, STRATEGIES, pareto_front, run_bench

    judge = writer = None  # the model tiers first: a missing key stops before any work
    if judge_model is not None:
        from ..bench.judge import OpenAIJudge

        judge = OpenAIJudge(model=judge_model)
    if summary_model is not None:
        from ..bench.judge import openai_client
        from ..compaction.openai_summarizer import OpenAISummarizer

        client = openai_client("--summarizer")
        writer = partial(OpenAISummarizer, client=client, model=summary_model)
    _output(csv_path, "--csv")
    _output(plot, "--plot")
    seed_list = _seeds(seeds)  # checked even under --quick, which runs the first only
    if quick:
        seed_list = seed_list[:1]
    own_file = locomo_path is not None or longmemeval_path is not None
    names_given = dataset or ("" if own_file else DEFAULT_DATASETS)
    # Named datasets travel as recipes (each worker makes its calls); files are read here.
    files = load_datasets([], count=1, locomo_path=locomo_path, longmemeval_path=longmemeval_path)
    made = recipes(names_given.split(","), count=2 if quick else calls, minutes=minutes,
                   seeds=seed_list, size=2 if quick else CHUNK)  # fmt: skip
    convs: list[BenchConversation | Recipe] = [*made, *files]
    count = sum(r.stop - r.start for r in made) + len(files)
    names = [x.strip() for x in strategy.split(",") if x.strip()] if strategy is not None else []
    if strategy is not None and not names:
        raise ConfigurationError("--strategies is empty: give at least one strategy")
    names = names or list(STRATEGIES)
    with contextlib.ExitStack() as stack:
        runs = len(names) * count
        # The model tiers call the API from this process: no workers unless asked.
        local = judge is not None or writer is not None
        typical = minutes if made else call_minutes(files)["median"]
        seconds = 0.0 if local else runs * typical * SECONDS_PER_RUN_MINUTE
        executor = _executor(stack, workers, dask_scheduler, (len(convs), seconds))
        label = f"{len(names)} strategies x {count} calls"
        progress = stack.enter_context(_progress_bar(not as_json, label))
        reports = run_bench(convs, names, profile=model, progress=progress, judge=judge,
                            summarizer=writer, executor=executor)  # fmt: skip
    summaries = [r.summary() for r in reports]
    lengths = minutes_spread([row["minutes"] for row in reports[0].rows])
    span = (
        f"{lengths['min']:.0f} min"
        if round(lengths["min"]) == round(lengths["max"])
        else f"{lengths['min']:.0f} to {lengths['max']:.0f} min (median {lengths['median']:.0f})"
    )
    calls_said = f"{count} call{'s' if count != 1 else ''} of {span}"
    rows = [row for r in reports for row in r.rows]
    if csv_path is not None:
        with _writing(csv_path, "--csv"):
            write_rows(rows, csv_path)
    if plot is not None:
        with _writing(plot, "--plot"):
            plot_pareto(summaries, plot, title=f"{calls_said}, {model}")
    front, text = pareto_front(summaries), verdict(summaries)
    if as_json:
        _emit_json({"strategies": summaries, "pareto_front": front, "verdict": text,
                    "calls": {"count": count, "minutes": lengths}})  # fmt: skip
        return
    _print_bench(summaries, f"{calls_said} ({names_given or 'your files'}), {model}")
    _console().print(text)
    fallbacks = sum(s["summary_fallbacks"] for s in summaries)
    if fallbacks:
        _console().print(f"{fallbacks} summaries by {summary_model} fell back to the extractive"
                         " summarizer (the API failed; the log says why)")  # fmt: skip
