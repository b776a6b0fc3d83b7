"""Simulator speed: the reference path against the vectorized path, and 10,000 calls.

1. Responses per second on the reference path (`simulate_call`, one `ServerModel` response at a
   time) and on the vectorized path (`simulate_batch`, a chunk of calls at once), on the same
   seeded 60-minute voice-agent calls, and their ratio. Workload generation is excluded here.
2. Wall time and peak memory of 10,000 sixty-minute voice-agent calls end to end
   (`run_calls`: generation and simulation), in one process and on a two-process pool.

Targets (DESIGN.md): >= 1,000,000 responses/s per core on the vectorized path; 10,000 calls
in under 10 s on this 2-core machine.

Run: ``python benchmarks/bench_simulator.py [--calls 10000] [--reference-calls 20]``
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from context_manager import get_model_profile
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate import simulate_call
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

    # 2. 10,000 calls end to end.
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


if __name__ == "__main__":
    main()
