"""The extractive summary from a generated call's arrays is the summarizer's, exactly."""

from __future__ import annotations

from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from context_manager.compaction import ExtractiveSummarizer
from context_manager.compaction.summarizers import sentence_features
from context_manager.items import Message
from context_manager.simulate.extractive import filler_stats, summarize
from context_manager.simulate.texts import compose, vocabulary
from context_manager.simulate.workloads import (
    ASSISTANT,
    CALL,
    DEFAULT_FACTS,
    OUTPUT,
    USER,
    CallBatch,
    generate,
    workload,
)
from context_manager.tokens import get_encoding


@cache
def _batch(name: str, facts: bool, seed: int) -> CallBatch:
    spec = workload(name, minutes=8, facts=DEFAULT_FACTS if facts else ())
    return generate(spec, 3, np.random.default_rng(seed))


def test_filler_carries_no_feature() -> None:
    # What the arrays assume: no filler text is a fact, a decision or a task.
    vocab = vocabulary()
    rng = np.random.default_rng(0)
    texts = [compose([vocab[w] for w in rng.integers(0, len(vocab), size=n)]) for n in
             rng.integers(1, 40, size=300)]  # fmt: skip
    texts += [compose([a, b]) for a in vocab for b in vocab]
    texts += [compose([w], wrap=('{"query": "', '"}')) for w in vocab]
    assert not sentence_features(texts).any()


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["voice-agent", "support-call", "tool-heavy"]),
    facts=st.booleans(),
    seed=st.integers(0, 3),
    call=st.integers(0, 2),
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
    budget=st.one_of(st.integers(0, 40), st.integers(40, 700)),
    recency=st.sampled_from([0.0, 0.5, 1.7]),
)
def test_the_arrays_give_the_summarizers_text(
    name: str, facts: bool, seed: int, call: int, cut: tuple[float, float, float], budget: int,
    recency: float,
) -> None:  # fmt: skip
    batch = _batch(name, facts, seed)
    stats = filler_stats(batch)
    items = batch.items(call)
    first = int(batch.offsets[call])
    a, b, c = sorted(int(x * len(items)) for x in cut)
    summarizer = ExtractiveSummarizer(recency=recency)
    # The previous summary is the summarizer's own, of the items before (as a rolling one is).
    previous = summarizer.summarize(items[a:b], budget_tokens=budget) if b > a else None
    expected = summarizer.summarize(items[b:c], budget_tokens=budget, previous=previous)
    got = summarize(batch, stats, call, np.arange(first + b, first + c), budget_tokens=budget,
                    previous=previous, summarizer=summarizer)  # fmt: skip
    assert (got.text, got.tokens) == (expected, len(get_encoding().encode_ordinary(expected)))
    # The previous summary as the arrays made it (its lines known as filler items): the same.
    if b > a:
        own = summarize(batch, stats, call, np.arange(first + a, first + b), budget_tokens=budget,
                        summarizer=summarizer)  # fmt: skip
        assert own.text == previous
        again = summarize(batch, stats, call, np.arange(first + b, first + c),
                          budget_tokens=budget, previous=own, summarizer=summarizer)  # fmt: skip
        assert (again.text, again.tokens, again.ident) == (got.text, got.tokens, got.ident)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), budget=st.integers(1, 400), split=st.integers(0, 300))
def test_equal_short_sentences_are_kept_once(seed: int, budget: int, split: int) -> None:
    # One- and two-word turns repeat ("okay", "sure fine"), and a line of the previous summary
    # can be one of them: the summarizer keeps each sentence's first; so must the arrays.
    rng = np.random.default_rng(seed)
    n = 300
    kind = rng.choice(np.array([USER, ASSISTANT, CALL, OUTPUT], dtype=np.int8), size=n,
                      p=[0.45, 0.45, 0.05, 0.05])  # fmt: skip
    tokens = np.where(kind >= CALL, rng.integers(9, 12, size=n), rng.integers(0, 3, size=n))
    batch = CallBatch(workload("voice-agent"), np.array([0, n]), kind, np.full(n, -1),
                      tokens.astype(np.int64), np.arange(n, dtype=np.float64),
                      np.array([seed]))  # fmt: skip
    items = batch.items(0)
    said = [i.text for i in items if isinstance(i, Message)]
    assert len(said) > len(set(said))  # repeats occur
    summarizer = ExtractiveSummarizer()
    previous = summarizer.summarize(items[:split], budget_tokens=budget) or None
    expected = summarizer.summarize(items[split:], budget_tokens=budget, previous=previous)
    got = summarize(batch, filler_stats(batch), 0, np.arange(split, n), budget_tokens=budget,
                    previous=previous)  # fmt: skip
    assert got.text == expected


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(st.floats(1.0, 60.0, allow_nan=False), min_size=0, max_size=80),
    budget=st.floats(0, 700),
    seed=st.integers(0, 2**32),
)
def test_the_fill_takes_what_the_summarizers_loop_takes(tokens, budget, seed) -> None:
    from context_manager.simulate.extractive import _fill

    cost = np.array(tokens)
    ranking = np.random.default_rng(seed).permutation(len(cost))
    expected = np.zeros(len(cost), dtype=bool)
    used = 0.0
    for k in ranking:  # `ExtractiveSummarizer.summarize`'s loop
        if used + cost[k] <= budget:
            expected[k] = True
            used += cost[k]
    assert np.array_equal(_fill(ranking, cost, budget), expected)
