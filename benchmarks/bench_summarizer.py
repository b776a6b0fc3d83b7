"""Compaction speed: the extractive summarizer by input size, and planning time per event.

1. `ExtractiveSummarizer` on 10k, 60k and 240k characters of a seeded voice call (best of 5),
   with the time per character, which must stay flat (linear time).
2. The time to plan one compaction (counting the history, choosing what to fold, summarizing)
   for each strategy, at about 28,000 tokens of history: cold (a new strategy meets the whole
   history at once) and warm (its summarizer read the items as they arrived; best of 5).
   Target: under 5 ms.

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
    print(f"{'characters':>11}{'items':>7}{'ms':>9}{'ns/char':>9}")
    for target in (10_000, 60_000, 240_000):
        chars, n = 0, 0
        while n < len(items) and chars < target:
            chars += len(getattr(items[n], "text", "") or getattr(items[n], "output", ""))
            n += 1
        part = items[:n]
        # A new summarizer each time: its memo must not make later runs warm.
        seconds = best_of(
            5, lambda part=part: ExtractiveSummarizer().summarize(part, budget_tokens=512)
        )
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
    print(f"  {'strategy':<16}{'cold ms':>9}{'warm ms':>9}")
    makers = [
        lambda: DropOldest(trigger=0.5, target=0.4),
        lambda: AudioToText(trigger=0.5),
        lambda: RollingSummary(trigger=0.5),
        lambda: Hierarchical(trigger=0.5),
        lambda: Ledger(trigger=0.5, summary_budget=256),
    ]
    for make in makers:
        # Cold: a new strategy meets the whole history at once. Warm: its summarizer has read
        # the items as they arrived (`observe`, or earlier compactions), as in a live session.
        strategy = make()
        start = time.perf_counter()
        strategy.plan(context)
        cold = time.perf_counter() - start
        warm = best_of(5, lambda s=strategy: s.plan(context))
        verdict = "ok" if warm < 0.005 else "OVER 5 ms"
        print(f"  {strategy.name:<16}{cold * 1e3:>9.2f}{warm * 1e3:>9.2f}  {verdict} (warm)")


def _fields(item) -> dict:
    names = ("role", "text", "audio_ms", "images", "t") if isinstance(item, Message) else None
    if names is None:
        return {k: getattr(item, k) for k in item.__dataclass_fields__ if k not in ("id", "type")}
    return {k: getattr(item, k) for k in names}


if __name__ == "__main__":
    main()
