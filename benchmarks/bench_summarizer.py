"""Compaction speed: the extractive summarizer by input size, and planning time per event.

1. `ExtractiveSummarizer` on 10k, 60k and 240k characters of a seeded voice call (best of 5),
   with the time per character, which must stay flat (linear time).
2. The time to plan one compaction (counting the history, choosing what to fold, summarizing)
   for each strategy, at about 28,000 tokens of history (best of 5). Target: under 5 ms.

Run: ``python benchmarks/bench_summarizer.py``
"""

from __future__ import annotations

import time

import numpy as np

from context_manager import TokenCounter, get_model_profile
from context_manager.compaction import (
    AudioToText,
    CompactionContext,
    DropOldest,
    ExtractiveSummarizer,
    Hierarchical,
    Ledger,
    RollingSummary,
)
from context_manager.items import Message
from context_manager.simulate.workloads import DEFAULT_FACTS, generate, workload


def best_of(n: int, run) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    batch = generate(
        workload("support-call", minutes=240, facts=DEFAULT_FACTS), 1, np.random.default_rng(3)
    )
    items = batch.items(0)
    summarizer = ExtractiveSummarizer()
    print(f"{'characters':>11}{'items':>7}{'ms':>9}{'ns/char':>9}")
    for target in (10_000, 60_000, 240_000):
        chars, n = 0, 0
        while n < len(items) and chars < target:
            chars += len(getattr(items[n], "text", "") or getattr(items[n], "output", ""))
            n += 1
        part = items[:n]
        seconds = best_of(5, lambda part=part: summarizer.summarize(part, budget_tokens=512))
        print(f"{chars:>11,}{n:>7}{seconds * 1e3:>9.1f}{seconds / chars * 1e9:>9.0f}")

    # 2. Planning at ~28k tokens of history (ids assigned as a server would).
    profile = get_model_profile("gpt-realtime")
    counter = TokenCounter(profile)
    history = []
    for n, item in enumerate(items):
        history.append(item.__class__(**{**_fields(item), "id": f"item_{n}"}))
        if counter.items(history).total >= 28_000:
            break
    context = CompactionContext(history, counter, 28_444)
    tokens = counter.items(history).total
    print(f"\nplanning one compaction at {tokens:,} tokens of history ({len(history)} items):")
    strategies = [
        DropOldest(trigger=0.5, target=0.4),
        AudioToText(trigger=0.5),
        RollingSummary(trigger=0.5),
        Hierarchical(trigger=0.5),
        Ledger(trigger=0.5, summary_budget=256),
    ]
    for strategy in strategies:
        seconds = best_of(5, lambda s=strategy: s.plan(context))
        verdict = "ok" if seconds < 0.005 else "OVER 5 ms"
        print(f"  {strategy.name:<16}{seconds * 1e3:>7.2f} ms  {verdict}")


def _fields(item) -> dict:
    names = ("role", "text", "audio_ms", "images", "t") if isinstance(item, Message) else None
    if names is None:
        return {k: getattr(item, k) for k in item.__dataclass_fields__ if k not in ("id", "type")}
    return {k: getattr(item, k) for k in names}


if __name__ == "__main__":
    main()
