"""The vectorized path gives the reference path's figures, response by response (hypothesis)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from context_manager import ProviderProfile, get_model_profile
from context_manager.compaction.strategies import (
    AudioToText,
    DropOldest,
    Hierarchical,
    Ledger,
    RollingSummary,
    WhenCold,
)
from context_manager.compaction.summarizers import ExtractiveSummarizer
from context_manager.rollover import RolloverPolicy
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate import simulate_call
from context_manager.simulate.facts import fact_presence, outside_filler
from context_manager.simulate.runner import run_chunk
from context_manager.simulate.vectorized import simulate_batch
from context_manager.simulate.workloads import DEFAULT_FACTS, FactSpec, generate, workload

GPT = get_model_profile("gpt-realtime")
# A small window, so truncation happens within minutes of simulated speech.
SMALL = GPT.model_copy(
    update={"context_window": 4000, "max_output_tokens": 800, "input_limit": 3200,
            "max_instructions_tools_tokens": 1500}
)  # fmt: skip


def assert_same_responses(rows: dict, call: int, ref) -> None:
    """The vectorized path's response rows of `call` are the reference result `ref`'s."""
    mine = np.flatnonzero(rows["call"] == call)
    assert len(mine) == len(ref.responses)
    for i, response, session in zip(mine, ref.responses, ref.sessions, strict=True):
        u = response.usage
        assert rows["session"][i] == session
        assert (rows["input_text"][i], rows["input_audio"][i]) == (u.input.text, u.input.audio)
        assert (rows["cached_text"][i], rows["cached_audio"][i]) == (u.cached.text, u.cached.audio)
        assert (rows["output_text"][i], rows["output_audio"][i]) == (u.output.text, u.output.audio)
        assert rows["retained_items"][i] == response.retained_items
        assert rows["dropped_items"][i] == len(response.dropped_items)
        assert rows["cost_usd"][i] == response.cost.total


@st.composite
def scenarios(draw: st.DrawFn):
    mode = draw(st.sampled_from(["latest", "all", "none"]))
    cache = SMALL.cache.model_copy(
        update={
            "block_tokens": draw(st.sampled_from([1, 10, 64, 128])),
            "min_prefix_tokens": draw(st.sampled_from([0, 64, 1024])),
            "ttl_seconds": draw(st.sampled_from([5.0, 30.0, 300.0])),
            "scope": draw(st.sampled_from(["session", "organization"])),
            "include_output": draw(st.booleans()),
        }
    )
    profile = SMALL.model_copy(
        update={
            "assistant_audio_in_context": mode,
            "cache": cache,
            "item_overhead_tokens": draw(st.integers(0, 6)),
            "assistant_audio_overhead_tokens": draw(st.integers(0, 9)),
            "user_transcript_in_context": draw(st.booleans()),
            "assistant_transcript_in_context": draw(st.booleans()),
            "response_overhead_tokens": draw(st.sampled_from([0, 0, 3])),
            "request_preamble_tokens": draw(st.sampled_from([0, 0, 7])),
            "tools_preamble_tokens": draw(st.sampled_from([0, 0, 288])),
            "reasoning_output_tokens": draw(st.sampled_from([0, 0, 17])),
            "audio_rounding": draw(st.sampled_from(["floor", "ceil"])),
        }
    )
    truncation = draw(st.sampled_from(["auto", "retention_ratio:0.8", "retention_ratio:0.5",
                                       "retention_ratio:0.7:2000", "disabled"]))  # fmt: skip
    provider = ProviderProfile(
        name="p", max_session_seconds=draw(st.sampled_from([60.0, 150.0, 3600.0]))
    )
    rollover = draw(
        st.sampled_from(
            [
                None,
                RolloverPolicy(0),
                RolloverPolicy(300),
                RolloverPolicy(4096),
                RolloverPolicy(300, carry="summary", summary_tokens=120),
                RolloverPolicy(4096, carry="summary"),
                RolloverPolicy(200, summary_tokens=0),
                RolloverPolicy(600, summary_tokens=9),
                RolloverPolicy(900, carry="ledger"),
                RolloverPolicy(300, carry="ledger", summary_tokens=40),
            ]
        )  # fmt: skip
    )
    spec = workload(
        draw(st.sampled_from(["voice-agent", "support-call", "tool-heavy"])),
        minutes=draw(st.sampled_from([2.0, 5.0])),
        facts=DEFAULT_FACTS if draw(st.booleans()) else (),  # planted statements: real text
    )
    seed = draw(st.integers(0, 2**32 - 1))
    instructions = "Be brief. " * draw(st.integers(0, 40))
    return profile, Truncation.parse(truncation), provider, rollover, spec, seed, instructions


@st.composite
def array_compaction(draw: st.DrawFn) -> DropOldest | AudioToText | WhenCold | None:
    """No compaction, or a strategy the arrays run, with random settings, cache-aware or not."""
    kind = draw(st.sampled_from(["none", "drop-oldest", "audio-to-text", "rolling-summary",
                                 "ledger", "hierarchical"]))  # fmt: skip
    if kind == "none":
        return None
    if kind == "hierarchical":
        trigger = draw(st.sampled_from([0.2, 0.5, 0.85]))
        tree = Hierarchical(
            trigger=trigger,
            keep=draw(st.sampled_from([1, 2, 6])),
            chunk=draw(st.sampled_from([1, 2, 64])),
            budget=draw(st.sampled_from([1, 24, 256])),
            max_summaries=draw(st.sampled_from([1, 3])),
        )
        if draw(st.booleans()):
            return WhenCold(tree, early=draw(st.sampled_from([0.1, trigger / 2])))
        return tree
    if kind == "ledger":
        trigger = draw(st.sampled_from([0.2, 0.5, 0.85]))
        ledger = Ledger(
            trigger=trigger,
            keep=draw(st.sampled_from([1, 2, 6])),
            budget=draw(st.sampled_from([8, 64, 256])),
            summary_budget=draw(st.sampled_from([0, 0, 40, 384])),
        )
        if draw(st.booleans()):
            return WhenCold(ledger, early=draw(st.sampled_from([0.1, trigger / 2])))
        return ledger
    if kind == "rolling-summary":
        trigger = draw(st.sampled_from([0.2, 0.5, 0.85, 1.0]))
        summary = RollingSummary(
            trigger=trigger,
            keep=draw(st.sampled_from([1, 2, 6])),
            budget=draw(st.sampled_from([1, 24, 128, 512])),
            summarizer=ExtractiveSummarizer(recency=draw(st.sampled_from([0.0, 0.5]))),
        )
        if draw(st.booleans()):
            return WhenCold(summary, early=draw(st.sampled_from([0.1, trigger / 2])))
        return summary
    if kind == "audio-to-text":
        trigger = draw(st.sampled_from([0.0, 0.3, 0.8, 1.0]))
        convert = AudioToText(keep=draw(st.sampled_from([1, 2, 4])), trigger=trigger)
        if trigger > 0 and draw(st.booleans()):
            return WhenCold(convert, early=draw(st.sampled_from([0.1, trigger / 2])))
        return convert
    target = draw(st.sampled_from([0.2, 0.5, 0.7, 0.9]))
    trigger = draw(st.sampled_from([t for t in (0.3, 0.6, 0.8, 0.9, 1.0) if t >= target]))
    strategy = DropOldest(trigger=trigger, target=target)
    if draw(st.booleans()):
        return WhenCold(strategy, early=draw(st.sampled_from([target, (target + trigger) / 2])))
    return strategy


@settings(max_examples=int(os.environ.get("PATHS_EXAMPLES", "60")), deadline=None)
@given(scenarios(), array_compaction())
def test_both_paths_give_the_same_responses(scenario, compaction) -> None:
    profile, truncation, provider, rollover, spec, seed, instructions = scenario
    config = SessionConfig(
        instructions=instructions, tools=({"name": "search"},), truncation=truncation
    )
    batch = generate(spec, 2, np.random.default_rng(seed))
    fast = simulate_batch(
        batch, profile, provider, config=config, rollover=rollover, keep_responses=True,
        compaction=compaction,
    )  # fmt: skip
    rows = fast.responses
    for call in range(len(batch)):
        ref = simulate_call(batch.items(call), profile, provider, config=config,
                            rollover=rollover, compaction=compaction)  # fmt: skip
        if call in fast.fallback:
            # Handed back only for what the arrays do not model: an overflowing conversation,
            # or a rollover seed that may hit an organization-wide cache beyond the head.
            reseeded = profile.cache.scope == "organization" and ref.rollovers
            # A hierarchical fold after the server cut a turn (or in a session whose seed held
            # no whole turn) leaves that turn's items between the summaries and the turns:
            # not modelled.
            inner = compaction.strategy if isinstance(compaction, WhenCold) else compaction
            cut = ref.rollovers or ref.totals()["truncations"]
            middle = isinstance(inner, Hierarchical) and cut
            assert ref.totals()["overflows"] > 0 or reseeded or middle
            continue
        assert_same_responses(rows, call, ref)
        totals = ref.totals()
        assert fast.totals["rollovers"][call] == totals["rollovers"]
        assert fast.totals["rollover_seed_tokens"][call] == totals["rollover_seed_tokens"]
        assert fast.totals["session_expired"][call] == int(totals["session_expired"])
        assert fast.totals["compactions"][call] == totals["compactions"]


@settings(max_examples=15, deadline=None)
@given(scenarios())
def test_a_chunk_with_fallback_equals_the_reference_call_by_call(scenario) -> None:
    profile, truncation, provider, rollover, spec, seed, instructions = scenario
    config = SessionConfig(instructions=instructions, truncation=truncation)
    batch = generate(spec, 2, np.random.default_rng(seed))
    columns = run_chunk(spec, 2, None, profile, provider, config, rollover, "vectorized", batch)
    for call in range(2):
        totals = simulate_call(
            batch.items(call), profile, provider, config=config, rollover=rollover
        ).totals()
        for key in (
            "responses",
            "input_tokens",
            "cached_tokens",
            "output_tokens",
            "truncations",
            "overflows",
        ):
            assert columns[key][call] == totals[key], key
        assert abs(columns["cost_usd"][call] - totals["cost_usd"]) < 1e-9


@pytest.mark.parametrize("spec_name", ["voice-agent", "support-call", "tool-heavy"])
@pytest.mark.parametrize(
    "compaction",
    [DropOldest(), DropOldest(trigger=0.5, target=0.3), WhenCold(DropOldest(), early=0.75),
     AudioToText(), AudioToText(keep=1, trigger=0.3), RollingSummary(),
     WhenCold(RollingSummary(trigger=0.7, keep=3, budget=300), early=0.4),
     Ledger(summary_budget=384), Hierarchical(chunk=8, max_summaries=2)],
    ids=["drop", "drop-early", "drop-cold", "convert", "convert-early", "summary",
         "summary-cold", "ledger", "hierarchical"],
)  # fmt: skip
@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_array_strategies_on_full_windows_agree(spec_name, compaction, provider) -> None:
    """Hour-long calls with the real window: compaction fires, the arrays keep every call.

    On Azure each call rolls over twice, and a summarizing strategy's summary goes into the
    seeds.
    """
    config = SessionConfig(instructions="Be brief. " * 30, truncation=Truncation.parse("auto"))
    spec = workload(spec_name, minutes=70, facts=DEFAULT_FACTS)  # the ledger has facts to keep
    batch = generate(spec, 3, np.random.default_rng(11))
    fast = simulate_batch(batch, GPT, provider, config=config, compaction=compaction)
    assert fast.fallback == []
    for call in range(3):
        ref = simulate_call(batch.items(call), GPT, provider, config=config, compaction=compaction)
        t = ref.totals()
        # (On Azure's 30-minute sessions a voice call may not fill the window before it rolls.)
        assert t["compactions"] > 0 if provider == "openai" else t["rollovers"] == 2
        for key in ("responses", "input_tokens", "cached_tokens", "output_tokens",
                    "truncations", "compactions", "rollovers"):  # fmt: skip
            assert fast.totals[key][call] == t[key], key
        assert fast.totals["rollover_seed_tokens"][call] == t["rollover_seed_tokens"]
        cost = fast.totals["cost_text"][call] + fast.totals["cost_audio"][call]
        assert cost == pytest.approx(t["cost_usd"], rel=1e-12)


@settings(max_examples=int(os.environ.get("PATHS_EXAMPLES", "60")) // 3, deadline=None)
@given(scenarios(), array_compaction())
def test_fact_presence_on_the_arrays_is_the_reference_paths(scenario, compaction) -> None:
    """Planted facts found in what the last session holds: the same counts on both paths."""
    profile, truncation, provider, rollover, spec, seed, instructions = scenario
    spec = spec.with_(facts=DEFAULT_FACTS)
    config = SessionConfig(instructions=instructions, truncation=truncation)
    batch = generate(spec, 2, np.random.default_rng(seed))
    columns = run_chunk(spec, 2, None, profile, provider, config, rollover, "vectorized", batch,
                        compaction)  # fmt: skip
    for call in range(2):
        ref = simulate_call(batch.items(call), profile, provider, config=config,
                            rollover=rollover, compaction=compaction)  # fmt: skip
        presence = fact_presence(batch.facts[call], ref.final_items)
        assert columns["facts"][call] == presence["facts"]
        assert columns["facts_present"][call] == presence["present"]
        assert columns["facts_present_normalized"][call] == presence["present_normalized"]
        assert columns["stale_values"][call] == presence["stale"]


def test_filler_never_spells_a_default_fact() -> None:
    assert outside_filler(workload("voice-agent", facts=DEFAULT_FACTS))
    assert not outside_filler(workload("voice-agent", facts=(FactSpec("code", 0.1, "It is {value}.", ("window seat",)),)))  # fmt: skip
