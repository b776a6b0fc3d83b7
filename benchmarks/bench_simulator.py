"""Simulator speed: the reference path against the vectorized path, and 10,000 calls.

1. Responses per second on the reference path (`simulate_call`, one `ServerModel` response at a
   time) and on the vectorized path (`simulate_batch`, a chunk of calls at once), on the same
   seeded 60-minute voice-agent calls, and their ratio. Workload generation is excluded here.
2. Compaction: responses per second per core of each built-in strategy on sixty-minute
   tool-heavy Azure calls, on the vectorized path (a chunk at once) and on the reference path
   (a few calls), beside the same calls with no compaction, and the ratios; then 10,000 such
   calls with `rolling-summary` end to end on two processes (target: under 60 s).
3. Wall time and peak memory of 10,000 sixty-minute voice-agent calls end to end
   (`run_calls`: generation and simulation), in one process, on a two-process pool, and on a
   two-worker Dask ``LocalCluster`` (with the workers' CPU seconds and page faults: a Dask
   nanny's ``MALLOC_TRIM_THRESHOLD_`` made them fault in every large array, `tune_allocator`).
4. Peak memory of 10,000 calls of 240 minutes in one process (a child process's max RSS).

Targets (DESIGN.md): >= 1,000,000 responses/s per core on the vectorized path; 10,000 calls
in under 10 s on this 2-core machine; 10,000 calls of 240 minutes under 500 MB.

Run: ``python benchmarks/bench_simulator.py [--calls 10000] [--reference-calls 20]
[--compaction-calls 4] [--target-calls 10000] [--no-dask] [--no-long]``
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from context_manager import get_model_profile
from context_manager.compaction import parse_compaction
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate import simulate_call
from context_manager.simulate.compacting import vector_rule
from context_manager.simulate.runner import CHUNK_CALLS, run_calls
from context_manager.simulate.vectorized import simulate_batch
from context_manager.simulate.workloads import generate, workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--reference-calls", type=int, default=20)
    parser.add_argument("--provider", default="openai")
    parser.add_argument("--truncation", default="retention_ratio:0.8")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compaction-calls", type=int, default=4)
    parser.add_argument(
        "--target-calls",
        type=int,
        default=10_000,
        help="calls of the rolling-summary run on every core (0: skip it)",
    )
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--no-long", action="store_true")
    args = parser.parse_args()

    profile = get_model_profile("gpt-realtime")
    spec = workload("voice-agent")
    instructions = "You are the voice concierge of a travel agency. " * 20
    config = SessionConfig(instructions=instructions, truncation=Truncation.parse(args.truncation))

    # 1. Both paths on the same calls.
    batch = generate(spec, CHUNK_CALLS, np.random.default_rng(1))
    calls = [batch.items(c) for c in range(args.reference_calls)]
    gc.collect()
    start = time.perf_counter()
    ref_responses = sum(
        len(simulate_call(items, profile, args.provider, config=config).responses)
        for items in calls
    )
    ref_seconds = time.perf_counter() - start
    best = float("inf")
    for _ in range(args.repeats):
        gc.collect()
        start = time.perf_counter()
        result = simulate_batch(batch, profile, args.provider, config=config)
        best = min(best, time.perf_counter() - start)
    vec_responses = int(result.totals["responses"].sum())
    ref_rate, vec_rate = ref_responses / ref_seconds, vec_responses / best
    print(f"workload voice-agent, 60 min, {args.provider}, {args.truncation}")
    print(f"{'path':<12}{'calls':>8}{'responses':>12}{'seconds':>10}{'responses/s':>14}")
    print(
        f"{'reference':<12}{len(calls):>8}{ref_responses:>12,}{ref_seconds:>10.2f}{ref_rate:>14,.0f}"
    )
    print(f"{'vectorized':<12}{len(batch):>8}{vec_responses:>12,}{best:>10.2f}{vec_rate:>14,.0f}")
    print(
        f"vectorized / reference = {vec_rate / ref_rate:,.0f}x"
        f"; target >= 1,000,000 responses/s per core: {'met' if vec_rate >= 1e6 else 'MISSED'}"
    )

    # 2. Compaction, per strategy, on the path each takes.
    tool_spec = workload("tool-heavy", minutes=60)
    tools = generate(tool_spec, CHUNK_CALLS, np.random.default_rng(2))
    auto = SessionConfig(instructions=instructions, truncation=Truncation.parse("auto"))
    gc.collect()
    start = time.process_time()
    base = simulate_batch(tools, profile, "azure", config=auto)
    base_seconds = max(time.process_time() - start, 1e-9)
    base_rate = int(base.totals["responses"].sum()) / base_seconds
    print(f"\ntool-heavy, 60 min, azure, auto: {len(tools)} calls on the vectorized path,"
          f" {args.compaction_calls} on the reference path (CPU time)")  # fmt: skip
    print(f"{'compaction':<28}{'vectorized':>14}{'x none':>8}{'reference':>12}{'x none':>8}")
    print(f"{'none':<28}{base_rate:>14,.0f}{1.0:>8.1f}")
    items = [tools.items(c) for c in range(args.compaction_calls)]  # texts made untimed
    for name in ("drop-oldest", "drop-oldest:cold=0.8", "audio-to-text", "rolling-summary",
                 "rolling-summary:cold=0.5", "hierarchical", "ledger",
                 "ledger:summary_budget=384"):  # fmt: skip
        strategy = parse_compaction(name)
        vec = "-"
        if vector_rule(strategy, 1) is not None:  # the arrays run it: the same calls at once
            tools.derived.clear()  # no summary another strategy made: each pays for its own
            gc.collect()
            start = time.process_time()
            done = simulate_batch(tools, profile, "azure", config=auto, compaction=strategy)
            rate = int(done.totals["responses"].sum()) / (time.process_time() - start)
            vec = f"{rate:>14,.0f}{base_rate / rate:>8.1f}"
        gc.collect()
        start = time.process_time()
        responses = sum(
            len(simulate_call(call, profile, "azure", config=auto, compaction=strategy).responses)
            for call in items
        )
        ref = responses / (time.process_time() - start)
        print(f"{name:<28}{vec:>22}{ref:>12,.0f}{base_rate / ref:>8.0f}")
    if args.target_calls:
        # The cost analysts' question at full size: summaries over 10,000 calls, every core.
        gc.collect()
        start = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            summed = run_calls(tool_spec, args.target_calls, profile=profile, provider="azure",
                               config=auto, seed=7, executor=pool,
                               compaction=parse_compaction("rolling-summary"))  # fmt: skip
        wall = time.perf_counter() - start
        summary = summed.totals()
        print(f"{args.target_calls:,} tool-heavy calls with rolling-summary, 2 processes:"
              f" {wall:.1f} s wall, {summary['compactions'] / args.target_calls:.2f}"
              f" compactions and ${summary['per_call']['cost_usd']:.4f} per call;"
              f" target < 60 s:"
              f" {'met' if wall < 60 else 'MISSED'}")  # fmt: skip

    # 3. 10,000 calls end to end.
    print(f"\n{args.calls:,} sixty-minute calls, generation included:")
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    run = run_calls(
        spec, args.calls, profile=profile, provider=args.provider, config=config, seed=7
    )
    one = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    totals = run.totals()
    print(
        f"  1 process : {one:6.2f} s, peak traced memory {peak:,.0f} MiB,"
        f" {totals['responses']:,} responses, ${totals['per_call']['cost_usd']:.4f} per session"
    )
    with ProcessPoolExecutor(2) as pool:
        run_calls(spec, 10, profile=profile, config=config, seed=0, executor=pool)  # warm workers
        start = time.perf_counter()
        spread = run_calls(spec, args.calls, profile=profile, provider=args.provider,
                              config=config, seed=7, executor=pool)  # fmt: skip
        two = time.perf_counter() - start
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    same = spread.totals()["cost_usd"] == totals["cost_usd"]
    print(
        f"  2 processes: {two:6.2f} s, peak worker RSS {child_rss:,.0f} MiB, same figures: {same}"
    )
    print(f"target < 10 s: {'met' if min(one, two) < 10 else 'MISSED'}")
    if not args.no_dask:
        _dask_rows(spec, args, profile, config, totals["cost_usd"])
    if not args.no_long:
        # 4. Long calls: memory must not grow with their length (a fresh process, so its max
        # RSS is this run's alone).
        code = (
            "import resource; from context_manager import get_model_profile;"
            "from context_manager.simulate.runner import run_calls;"
            "from context_manager.simulate.workloads import workload;"
            f"run_calls(workload('voice-agent', minutes=240), {args.calls},"
            " profile=get_model_profile('gpt-realtime'), seed=7);"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        rss = int(out.stdout.split()[-1]) / 1024 if out.returncode == 0 else float("nan")
        met = "met" if rss * 2**20 < 500e6 else "MISSED"
        print(f"\n{args.calls:,} calls of 240 minutes, one process: {seconds:.1f} s,"
              f" peak RSS {rss:,.0f} MiB; target < 500 MB: {met}")  # fmt: skip


def _cpu() -> tuple[float, int]:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime, use.ru_minflt


def _dask_rows(spec: object, args: argparse.Namespace, profile: object, config: object,
               expected: float) -> None:  # fmt: skip
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("  Dask: not installed (pip install 'context-manager[dask]')")
        return
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        executor = client.get_executor()
        run_calls(spec, 10, profile=profile, config=config, seed=0, executor=executor)  # type: ignore[arg-type]
        before = client.run(_cpu)
        start = time.perf_counter()
        run = run_calls(spec, args.calls, profile=profile, provider=args.provider,  # type: ignore[arg-type]
                        config=config, seed=7, executor=executor)  # type: ignore[arg-type]  # fmt: skip
        seconds = time.perf_counter() - start
        after = client.run(_cpu)
    cpu = sum(after[w][0] - before[w][0] for w in after)
    faults = sum(after[w][1] - before[w][1] for w in after)
    same = run.totals()["cost_usd"] == expected
    print(f"  Dask, 2 workers: {seconds:6.2f} s, workers' CPU {cpu:.2f} s,"
          f" {faults:,} page faults, same figures: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
