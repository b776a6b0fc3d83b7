"""Run strategies over a dataset and measure what each costs and keeps.

A strategy is the server's truncation, a client compaction (optional), the provider and a
rollover seed. Every conversation runs through the reference simulator (`simulate_call`), and
each run gives: cost, cache-hit ratio, peak input tokens, compaction events and the time spent
planning them, fact presence by type (verbatim and normalized), stale values still in context,
answerability (BM25 over the retained items: is the fact in the top 3 items retrieved for its
question), and the compression of summaries (tokens of history no longer in context, per token of
summary or ledger). The full-context oracle keeps every item and costs nothing to compute.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .._plugins import load_object
from ..compaction.parsing import COMPACTION_GROUP, as_strategy
from ..compaction.strategies import (
    AudioToText,
    CompactionContext,
    CompactionStrategy,
    DropOldest,
    Hierarchical,
    Ledger,
    RollingSummary,
    WhenCold,
)
from ..compaction.summarizers import Summarizer
from ..errors import ConfigurationError
from ..items import Item
from ..profiles import ModelProfile, get_model_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy
from ..server import SessionConfig, Truncation
from ..simulate.reference import simulate_call
from ..simulate.runner import map_tasks
from ..tokens import TokenCounter
from .datasets import BenchConversation, Recipe, call_length
from .retrieval import CallTexts, entries

__all__ = [
    "BENCH_GROUP",
    "LEDGER_SEED",
    "SUMMARY_SEED",
    "STRATEGIES",
    "BenchStrategy",
    "StrategyReport",
    "missing",
    "pareto_front",
    "pareto_groups",
    "resolve_strategy",
    "run_bench",
    "run_one",
    "with_summarizer",
]


@dataclass(frozen=True, slots=True)
class BenchStrategy:
    """What a run does to keep the context: server truncation, client compaction, sessions."""

    name: str
    truncation: str = "auto"
    compaction: Callable[[], CompactionStrategy] | None = None
    provider: str = "openai"
    rollover: RolloverPolicy | None = DEFAULT_ROLLOVER
    oracle: bool = False
    """Keep every item (the upper bound on what any strategy can keep)."""


SUMMARY_SEED = RolloverPolicy(carry="summary")
"""At a provider's session limit, a summarizing strategy seeds the new session with a summary
(its own, folded in with what it did not yet cover) and the latest turns."""
LEDGER_SEED = RolloverPolicy(carry="ledger")
"""A ledger strategy seeds it with the fact ledger and the latest turns."""


def _cold_rolling_summary() -> CompactionStrategy:
    # A module-level factory (not a lambda), so strategies pickle to worker processes.
    return WhenCold(RollingSummary())


STRATEGIES: dict[str, BenchStrategy] = {
    s.name: s
    for s in (
        BenchStrategy("auto"),
        BenchStrategy("retention-0.8", truncation="retention_ratio:0.8"),
        BenchStrategy("retention-0.5", truncation="retention_ratio:0.5"),
        BenchStrategy("drop-oldest", compaction=DropOldest),
        BenchStrategy("audio-to-text", compaction=AudioToText),
        BenchStrategy("rolling-summary", compaction=RollingSummary, rollover=SUMMARY_SEED),
        BenchStrategy(
            "rolling-summary+cold", compaction=_cold_rolling_summary, rollover=SUMMARY_SEED
        ),
        BenchStrategy("hierarchical", compaction=Hierarchical, rollover=SUMMARY_SEED),
        BenchStrategy("ledger", compaction=Ledger, rollover=LEDGER_SEED),
        BenchStrategy(
            "ledger+summary", compaction=partial(Ledger, summary_budget=384), rollover=LEDGER_SEED
        ),
        BenchStrategy("rollover-recent", provider="azure", rollover=DEFAULT_ROLLOVER),
        BenchStrategy(
            "rollover-summary", provider="azure", rollover=RolloverPolicy(carry="summary")
        ),
        BenchStrategy("rollover-ledger", provider="azure", rollover=RolloverPolicy(carry="ledger")),
        BenchStrategy("oracle", oracle=True),
    )
}
"""The strategies `run_bench` knows, by name."""


class _Timed:
    """A strategy that records the time its plans take."""

    def __init__(self, strategy: CompactionStrategy) -> None:
        self.strategy = strategy
        self.seconds = 0.0

    @property
    def name(self) -> str:
        return self.strategy.name

    def plan(self, context: CompactionContext) -> Any:
        start = time.perf_counter()
        try:
            return self.strategy.plan(context)
        finally:
            self.seconds += time.perf_counter() - start


def answerable(conversation: BenchConversation, items: Sequence[Item], top: int = 3) -> list[bool]:
    """For each fact: is one of its probes in the `top` items BM25 retrieves for its question?"""
    texts = CallTexts.of(conversation.items, conversation.facts, conversation.questions)
    return texts.answerable(entries(texts, items), top)


def held_metrics(conversation: BenchConversation, texts: CallTexts, held: Sequence[int | str],
                 counter: TokenCounter) -> dict[str, Any]:  # fmt: skip
    """Fact presence, answerability and compression of a final window (`CallTexts` entries)."""
    presence = texts.presence(held)
    scored = [a for f, a in zip(conversation.facts, texts.answerable(held), strict=True)
              if f.stale or f.kind != "updated"]  # fmt: skip
    return {
        "facts": presence["facts"],
        "present": presence["present"],
        "present_normalized": presence["present_normalized"],
        "stale": presence["stale"],
        "by_kind": presence["by_kind"],
        "answerable": sum(scored),
        "compression": texts.compression(held, counter),
    }


def with_summarizer(strategy: Any, summarizer: Summarizer) -> Any:
    """`strategy` writing its summaries with `summarizer` (a wrapped strategy's too).

    Strategies without a summarizer (drop-oldest, audio-to-text) come back unchanged.
    """
    if not dataclasses.is_dataclass(strategy) or isinstance(strategy, type):
        return strategy
    if hasattr(strategy, "summarizer"):
        return dataclasses.replace(strategy, summarizer=summarizer)
    if hasattr(strategy, "strategy"):
        return dataclasses.replace(
            strategy, strategy=with_summarizer(strategy.strategy, summarizer)
        )
    return strategy


def run_one(
    conversation: BenchConversation,
    strategy: BenchStrategy,
    profile: ModelProfile,
    instructions: str = "",
    judge: Any = None,
    summarizer: Callable[[], Summarizer] | None = None,
    texts: CallTexts | None = None,
) -> dict[str, Any]:
    """One conversation under one strategy: the metrics as a flat record.

    With `judge` (an `OpenAIJudge`), ``judged`` counts the facts the model finds in the context.
    With `summarizer` (a factory, called once per run), the strategy's summaries are written by
    it; ``summary_fallbacks`` counts the summaries it gave up on (an `OpenAISummarizer` falls
    back to the extractive one when the API fails). `texts` is the conversation already read
    (`retrieval.CallTexts`), when several strategies share it.
    """
    counter = TokenCounter(profile)
    if texts is None:
        texts = CallTexts.of(conversation.items, conversation.facts, conversation.questions)
    row: dict[str, Any] = {
        "strategy": strategy.name,
        "dataset": conversation.dataset or conversation.name,
        "conversation": conversation.name,
        "minutes": call_length(conversation),
    }
    if strategy.oracle:
        final: Sequence[Item] = conversation.items
        row |= {"cost_usd": math.nan, "cache_hit": math.nan, "peak_tokens": math.nan,
                "compactions": 0, "compaction_ms": 0.0, "sessions": 1,
                "summary_fallbacks": 0}  # fmt: skip
    else:
        writer = summarizer() if summarizer is not None else None
        compaction = strategy.compaction() if strategy.compaction is not None else None
        if compaction is not None and writer is not None:
            compaction = with_summarizer(compaction, writer)
        timed = _Timed(compaction) if compaction is not None else None
        config = SessionConfig(
            instructions=instructions, truncation=Truncation.parse(strategy.truncation)
        )
        result = simulate_call(
            conversation.items, profile, strategy.provider, config=config,
            rollover=strategy.rollover, compaction=timed,
        )  # fmt: skip
        totals = result.totals()
        final = result.final_items
        row |= {
            "cost_usd": result.cost().total,
            "cache_hit": totals["cached_tokens"] / max(totals["input_tokens"], 1),
            "peak_tokens": max((r.usage.input_tokens for r in result.responses), default=0),
            "compactions": result.compactions,
            "compaction_ms": 1000 * (timed.seconds if timed else 0.0),
            "sessions": len(set(result.sessions)) or 1,
            "summary_fallbacks": len(getattr(writer, "failures", ())),
        }
    held = entries(texts, final)
    row |= held_metrics(conversation, texts, held, counter)
    if judge is not None:
        verdicts = judge.judge(conversation, final)
        row["judged"] = sum(v for f, v in zip(conversation.facts, verdicts, strict=True)
                            if f.stale or f.kind != "updated")  # fmt: skip
    return row


@dataclass
class StrategyReport:
    """One strategy's results over a dataset."""

    strategy: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Means over the conversations (fact rates over all facts), and presence by type.

        ``by_kind`` holds normalized presence per fact type, ``by_kind_exact`` verbatim presence;
        ``by_dataset`` and ``by_dataset_exact`` the same per dataset, in the order run.
        """
        rows = self.rows
        facts = sum(r["facts"] for r in rows) or 1

        def mean(key: str) -> float:
            return float(sum(r[key] for r in rows)) / len(rows)

        ratios = [r["compression"] for r in rows if r["compression"] is not None]
        by_kind: dict[str, list[int]] = {}
        by_dataset: dict[str, list[int]] = {}
        for r in rows:
            for kind, counts in r["by_kind"].items():
                total = by_kind.setdefault(kind, [0, 0, 0])
                total[0] += counts["present_normalized"]
                total[1] += counts["present"]
                total[2] += counts["facts"]
            total = by_dataset.setdefault(r["dataset"], [0, 0, 0])
            total[0] += r["present_normalized"]
            total[1] += r["present"]
            total[2] += r["facts"]
        return {
            "strategy": self.strategy,
            "conversations": len(rows),
            "cost_usd": mean("cost_usd"),
            "cache_hit": mean("cache_hit"),
            "peak_tokens": mean("peak_tokens"),
            "compactions": mean("compactions"),
            "sessions": mean("sessions"),
            "rollovers": mean("sessions") - 1.0,
            "compaction_ms": mean("compaction_ms"),
            "summary_fallbacks": sum(r.get("summary_fallbacks", 0) for r in rows),
            "fact_presence": sum(r["present_normalized"] for r in rows) / facts,
            "fact_presence_exact": sum(r["present"] for r in rows) / facts,
            "answerable": sum(r["answerable"] for r in rows) / facts,
            "stale": sum(r["stale"] for r in rows) / len(rows),
            "compression": sum(ratios) / len(ratios) if ratios else None,
            "judged": (
                sum(r["judged"] for r in rows) / facts if all("judged" in r for r in rows) else None
            ),
            "by_kind": {k: p / n for k, (p, _, n) in sorted(by_kind.items())},
            "by_kind_exact": {k: e / n for k, (_, e, n) in sorted(by_kind.items())},
            "by_dataset": {k: p / n if n else None for k, (p, _, n) in by_dataset.items()},
            "by_dataset_exact": {k: e / n if n else None for k, (_, e, n) in by_dataset.items()},
        }


BENCH_GROUP = "context_manager.bench_strategies"
"""The entry-point group where installed packages register benchmark strategies."""


def resolve_strategy(name: str) -> BenchStrategy:
    """A strategy by name: built-in, ``module:attribute``, or an installed entry point.

    The object found may be a `BenchStrategy`, or a compaction strategy (or a class or
    factory of one), run under ``auto`` truncation on OpenAI, rolling over with a summary
    (`SUMMARY_SEED`); its name in the reports is `name`.

    Raises:
        ConfigurationError: an unknown name (the built-in ones are listed), or an object that
            is neither.
    """
    if name in STRATEGIES:
        return STRATEGIES[name]
    found = load_object(name, BENCH_GROUP)
    if found is None:
        found = load_object(name, COMPACTION_GROUP)
    if found is None:
        raise ConfigurationError(
            f"unknown bench strategy {name!r}; known: {', '.join(STRATEGIES)}, or"
            " module:attribute, or an installed entry point"
        )
    if isinstance(found, BenchStrategy):
        return dataclasses.replace(found, name=name)
    as_strategy(found, name)  # made once now, so a bad one fails here, not in a worker
    # A fresh strategy a run (runs share no state), guarded so its failure names it; at the
    # session limit it rolls over with a summary, its own memory folded in.
    return BenchStrategy(
        name, compaction=partial(as_strategy, _fresh(found), name), rollover=SUMMARY_SEED
    )


def _fresh(found: Any) -> Any:
    """What makes a new strategy per run: the class or factory, or a copier of an instance."""
    if isinstance(found, type) or (callable(found) and not hasattr(found, "plan")):
        return found
    return partial(copy.deepcopy, found)


def run_bench(
    conversations: Sequence[BenchConversation | Recipe],
    strategies: Iterable[str] = tuple(STRATEGIES),
    *,
    profile: ModelProfile | str = "gpt-realtime",
    instructions: str = "",
    progress: Callable[[int, int], None] | None = None,
    judge: Any = None,
    summarizer: Callable[[], Summarizer] | None = None,
    executor: Executor | None = None,
) -> list[StrategyReport]:
    """Run every strategy on every conversation; one report per strategy, in order.

    `conversations` may hold `datasets.Recipe` s, each standing for the calls it makes (in
    the worker that runs them, so they never travel).

    The conversations run in chunks of `CHUNK` on the vectorized path (`arrays.run_chunk`),
    with `run_one`'s figures; planning times (``compaction_ms``) are then not measured (NaN).
    `judge` and `summarizer` are as in `run_one`, and run each conversation there. With
    `executor` (local processes, or a Dask cluster's), the chunks are spread over its workers;
    the figures are the same. The model tiers call the API from this process, so they do not
    combine with an executor.

    Raises:
        ConfigurationError: an unknown strategy name (the known ones are listed), no
            conversations, or a model tier with an executor.
    """
    chosen = [resolve_strategy(name) for name in strategies]
    if not conversations:
        raise ConfigurationError("no conversations to run: give a dataset or a file")
    if executor is not None and (judge is not None or summarizer is not None):
        raise ConfigurationError(
            "the judge and the model summarizer call the API from this process: run them"
            " without workers"
        )
    model = get_model_profile(profile) if isinstance(profile, str) else profile
    reports = [StrategyReport(s.name) for s in chosen]
    if judge is None and summarizer is None:
        # Chunks of conversations, every strategy on each at once (`arrays.run_chunk`); a
        # recipe is its own chunk, made by the worker that runs it. Chunking changes no figure.
        from .arrays import run_chunk

        chunks: list[Recipe | list[BenchConversation]] = []
        for c in conversations:
            if isinstance(c, Recipe):
                chunks.append(c)
            elif chunks and isinstance(chunks[-1], list) and len(chunks[-1]) < CHUNK:
                chunks[-1].append(c)
            else:
                chunks.append([c])
        parts = map_tasks(run_chunk, [(c, chosen, model, instructions) for c in chunks],
                          executor, progress)  # fmt: skip
        for n, report in enumerate(reports):
            report.rows = [row for part in parts for row in part[n]]
        return reports
    made = [x for c in conversations for x in (c.build() if isinstance(c, Recipe) else [c])]
    tasks = [(c, s, model, instructions, judge, summarizer) for s in chosen for c in made]
    rows = map_tasks(run_one, tasks, executor, progress)
    for n, report in enumerate(reports):
        report.rows = rows[n * len(made) : (n + 1) * len(made)]
    return reports


CHUNK = 20
"""Conversations a benchmark task runs together (on the arrays)."""


def missing(value: Any) -> bool:
    """Is `value` absent: ``None`` (as JSON gives it) or NaN (the oracle's cost, in memory)?"""
    return value is None or (isinstance(value, float) and math.isnan(value))


def pareto_groups(summaries: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The Pareto front as groups: strategies with identical cost and facts share one point.

    A point is on the front when no other beats it on both cost (lower) and fact presence
    (higher); the oracle (no cost) is not priced, so it is not on it.
    """
    priced = [s for s in summaries if not missing(s["cost_usd"])]
    points: dict[tuple[float, float], list[str]] = {}
    for s in priced:
        key = (round(s["cost_usd"], 9), round(s["fact_presence"], 9))
        points.setdefault(key, []).append(s["strategy"])
    front = []
    for (cost, facts), names in points.items():
        beaten = any(c <= cost and f >= facts and (c < cost or f > facts) for c, f in points)
        if not beaten:
            front.append(names)
    return front


def pareto_front(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """The front's points, each named by its strategies (``a = b`` when identical)."""
    return [" = ".join(names) for names in pareto_groups(summaries)]
