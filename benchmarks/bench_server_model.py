"""Speed of the reference server model: responses per second on a long conversation.

The conversation is the seeded voice call of ``examples/make_voice_call.py``, run for
``--minutes`` (default 240: four hours, so truncation runs all the time) against a provider with
no session limit. For each truncation setting it times `simulate_conversation` (the full model:
truncation, the segment trie of the prompt cache, usage and cost per response) and, as the
baseline in the same process, a loop that only sums the retained items' precomputed token counts
per response: the least any per-response model must do.

Run: ``python benchmarks/bench_server_model.py [--minutes 240] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

from context_manager import ProviderProfile, TokenCounter, get_model_profile
from context_manager.items import item_from_dict
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate import plan_turns, simulate_conversation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from make_voice_call import conversation

NO_LIMIT = ProviderProfile(name="no-limit", max_session_seconds=1e9)


def best_of(repeats: int, run) -> float:
    best = float("inf")
    gc.collect()
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=240.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    profile = get_model_profile("gpt-realtime")
    items = [item_from_dict(d) for d in conversation(args.minutes, args.seed)]
    turns = plan_turns(items)
    counter = TokenCounter(profile)
    counted = [counter.item(i).full.total for i in items]  # warm the memo, as a live loop would
    limit = 28_672

    def baseline() -> None:
        # Per response: sum the retained items' counts, drop the oldest while over the limit.
        retained: list[int] = []
        position = 0
        for turn in turns:
            for _ in turn.inputs:
                retained.append(counted[position])
                position += 1
            total = sum(retained)
            while total > limit and len(retained) > 1:
                total -= retained.pop(0)
            for _ in turn.output:
                retained.append(counted[position])
                position += 1

    base = best_of(args.repeats, baseline)
    responses = sum(1 for t in turns if t.output)
    print(f"conversation: {len(items):,} items, {responses:,} responses over {args.minutes:g} min")
    print(
        f"{'setting':<22}{'responses/s':>14}{'us/response':>14}{'x baseline':>12}{'peak MiB':>10}"
    )
    rate, per = responses / base, base / responses * 1e6
    print(f"{'baseline (sum only)':<22}{rate:>14,.0f}{per:>14.1f}{1.0:>12.2f}{'':>10}")
    for spec in ("auto", "retention_ratio:0.8"):
        config = SessionConfig(
            instructions="You are a travel concierge.", truncation=Truncation.parse(spec)
        )

        def run(config: SessionConfig = config) -> None:
            simulate_conversation(items, profile, NO_LIMIT, config=config)

        seconds = best_of(args.repeats, run)
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(
            f"{spec:<22}{responses / seconds:>14,.0f}{seconds / responses * 1e6:>14.1f}"
            f"{seconds / base:>12.2f}{peak:>10.1f}"
        )


if __name__ == "__main__":
    main()
