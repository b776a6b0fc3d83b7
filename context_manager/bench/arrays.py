"""The benchmark on the vectorized path: a chunk of conversations, every strategy at once.

`run_one` runs one conversation under one strategy on the reference path. Here a chunk of
conversations becomes one `CallBatch` (their items verbatim), each strategy the arrays can run
goes through `simulate_batch` once for the whole chunk, and the metrics are read from what each
call's last session holds (`VectorResult.held`), the conversation's texts read once for all
strategies (`retrieval.CallTexts`). The rows are `run_one`'s, figure for figure
(``tests/bench/test_arrays.py``), except ``compaction_ms``: the arrays plan no compaction one
call at a time, so it is not measured here (NaN). Calls the arrays hand back
(`VectorResult.fallback`) and strategies they cannot run (a plug-in, a model summarizer) run
on the reference path, as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..items import FunctionCall
from ..profiles import ModelProfile, get_model_profile
from ..server import SessionConfig, Truncation
from ..simulate.given import batch_from_items
from ..simulate.runner import reference_bound
from ..simulate.vectorized import simulate_batch
from ..simulate.workloads import CallBatch
from ..tokens import TokenCounter
from .datasets import BenchConversation, Recipe, call_length
from .retrieval import CallTexts
from .run import BenchStrategy, held_metrics, run_one

__all__ = ["SECONDS_PER_RUN_MINUTE", "on_arrays", "run_chunk"]

# `batch_from_items` counts texts as gpt-realtime does.
BATCH_ENCODING = get_model_profile("gpt-realtime").encoding

SECONDS_PER_RUN_MINUTE = 4e-4
"""About what one strategy on one call-minute costs here (one core, metrics included), for
deciding whether worker processes pay for themselves."""


def on_arrays(strategy: BenchStrategy) -> bool:
    """Whether the arrays can run `strategy` (else each conversation runs on the reference)."""
    if strategy.oracle:
        return True
    compaction = strategy.compaction() if strategy.compaction is not None else None
    return not reference_bound("vectorized", strategy.rollover, compaction, facts=False)


def run_chunk(
    conversations: Sequence[BenchConversation] | Recipe,
    strategies: Sequence[BenchStrategy],
    profile: ModelProfile,
    instructions: str = "",
) -> list[list[dict[str, Any]]]:
    """Every strategy on every conversation of a chunk (or a recipe's): rows per strategy."""
    if isinstance(conversations, Recipe):
        conversations = conversations.build()
    texts = [CallTexts.of(c.items, c.facts, c.questions) for c in conversations]
    lengths = [call_length(c) for c in conversations]
    counter = TokenCounter(profile)
    batch = None
    out = []
    for strategy in strategies:
        if not on_arrays(strategy):
            out.append([run_one(c, strategy, profile, instructions, texts=t)
                        for c, t in zip(conversations, texts, strict=True)])  # fmt: skip
            continue
        if strategy.oracle:
            together = zip(conversations, texts, lengths, strict=True)
            out.append([_oracle(c, t, m, counter) for c, t, m in together])
            continue
        if batch is None:
            batch = batch_from_items([c.items for c in conversations],
                                     tokens=[c.tokens for c in conversations])  # fmt: skip
            _known_tokens(batch, texts, counter)
        config = SessionConfig(
            instructions=instructions, truncation=Truncation.parse(strategy.truncation)
        )
        compaction = strategy.compaction() if strategy.compaction is not None else None
        result = simulate_batch(batch, profile, strategy.provider, config=config,
                                rollover=strategy.rollover, compaction=compaction,
                                keep_responses=True, held=True)  # fmt: skip
        figures = _per_call(result.totals, result.responses, len(conversations))
        assert result.held is not None
        rows = []
        for n, (conversation, read) in enumerate(zip(conversations, texts, strict=True)):
            if n in result.fallback:
                rows.append(run_one(conversation, strategy, profile, instructions, texts=read))
                continue
            row = _head(conversation, strategy, lengths[n]) | figures[n]
            rows.append(row | held_metrics(conversation, read, result.held[n], counter))
        out.append(rows)
    return out


def _known_tokens(batch: CallBatch, texts: Sequence[CallTexts], counter: TokenCounter) -> None:
    """Each item's text tokens, from the batch (counted in its encoding when it is ours)."""
    if counter.profile.encoding != BATCH_ENCODING:
        return
    name = {}
    for n, read in enumerate(texts):
        span = batch.call_slice(n)
        tokens = batch.text_tokens[span].tolist()
        for k, item in enumerate(batch.source_items[n] if batch.source_items else ()):
            if isinstance(item, FunctionCall):  # the batch counts the name with the arguments
                if item.name not in name:
                    name[item.name] = counter.text(item.name)
                tokens[k] -= name[item.name]
        read.tokens = tokens


def _head(conversation: BenchConversation, strategy: BenchStrategy,
          minutes: float) -> dict[str, Any]:  # fmt: skip
    return {
        "strategy": strategy.name,
        "dataset": conversation.dataset or conversation.name,
        "conversation": conversation.name,
        "minutes": minutes,
    }


def _oracle(conversation: BenchConversation, texts: CallTexts, minutes: float,
            counter: TokenCounter) -> dict[str, Any]:  # fmt: skip
    """The full-context oracle: every item kept, nothing priced."""
    row = _head(conversation, BenchStrategy("oracle", oracle=True), minutes) | {
        "cost_usd": math.nan, "cache_hit": math.nan, "peak_tokens": math.nan, "compactions": 0,
        "compaction_ms": 0.0, "sessions": 1, "summary_fallbacks": 0,
    }  # fmt: skip
    return row | held_metrics(conversation, texts, range(len(texts.texts)), counter)


def _per_call(totals: dict[str, np.ndarray], responses: dict[str, np.ndarray] | None,
              calls: int) -> list[dict[str, Any]]:  # fmt: skip
    """`run_one`'s run figures per call, from the batch's totals and responses."""
    assert responses is not None
    call = responses["call"]
    inputs = responses["input_text"] + responses["input_audio"] + responses["input_image"]
    peak = np.zeros(calls, dtype=np.int64)
    np.maximum.at(peak, call, inputs)
    # Sessions that answered at least once (a session with no response is not counted).
    pairs = np.unique(np.stack([call, responses["session"]]), axis=1)
    sessions = np.bincount(pairs[0], minlength=calls) if pairs.size else np.zeros(calls, int)
    cost = totals["cost_text"] + totals["cost_audio"] + totals["cost_image"]
    out = []
    for n in range(calls):
        out.append({
            "cost_usd": float(cost[n]),
            "cache_hit": int(totals["cached_tokens"][n]) / max(int(totals["input_tokens"][n]), 1),
            "peak_tokens": int(peak[n]),
            "compactions": int(totals["compactions"][n]),
            "compaction_ms": math.nan,
            "sessions": int(sessions[n]) or 1,
            "summary_fallbacks": 0,
        })  # fmt: skip
    return out
