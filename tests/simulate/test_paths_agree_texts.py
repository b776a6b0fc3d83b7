"""Calls from files on the vectorized path: the reference path's figures (hypothesis).

Calls built from real items (`batch_from_items`) summarize through the summarizer itself, on
the arrays; these conversations hold names, digits, capitals, keywords, repeated short
sentences, tool calls and, now and then, a user turn with no transcript.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from context_manager import ProviderProfile
from context_manager.compaction.strategies import (
    AudioToText,
    Hierarchical,
    Ledger,
    RollingSummary,
    WhenCold,
)
from context_manager.items import FunctionCall, FunctionCallOutput, Item, Message
from context_manager.rollover import RolloverPolicy, is_unheard
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate import simulate_call
from context_manager.simulate.facts import fact_presence
from context_manager.simulate.given import batch_from_items
from context_manager.simulate.runner import run_chunk
from context_manager.simulate.vectorized import simulate_batch
from context_manager.simulate.workloads import CallBatch, PlantedFact

from .test_paths_agree import SMALL, array_compaction, assert_same_responses, scenarios

_NAMES = ("Priya Raman", "Tomasz", "Oslo", "Amara Okafor", "Berlin", "Kenji")
_PLAIN = ("the weather was nice", "we talked about the trip", "that sounds good to me",
          "i was thinking about it", "my sister called yesterday", "the train was late again",
          "we could go there later", "it is a long story")  # fmt: skip
_SHORT = ("Okay.", "okay.", "Sure.", "Yes.", "lol", "Hello?", "Thanks.", "Right.", "Mm.")
_KEYWORDS = ("I decided to take the {} option.", "We must leave before {}.",
             "I prefer the window seat near {}.", "I am allergic to peanuts, {} knows.",
             "Actually, I changed it to {}.", "Please remember to call {} back.",
             "We booked the hotel in {}.", "I can't fly through {}.")  # fmt: skip


def _sentence(rng: np.random.Generator, n: int) -> str:
    pick = int(rng.integers(0, 5))
    if pick == 0:
        return str(rng.choice(_SHORT))
    if pick == 1:
        return str(rng.choice(_KEYWORDS)).format(rng.choice(_NAMES))
    if pick == 2:
        return f"Flight {int(rng.integers(100, 999))} leaves at {int(rng.integers(1, 12))}:30."
    if pick == 3:
        return f"My code is QX-{n:04d} for {rng.choice(_NAMES)}."
    return f"{str(rng.choice(_PLAIN)).capitalize()}."


def conversation(seed: int, turns: int, unheard: bool, system: bool) -> list[Item]:
    """A call of `turns` user turns: audio messages, tool calls, repeats; maybe a silent turn.

    With `system`, a system item first and a few between the turns.
    """
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    if system:
        items.append(Message(role="system", text="The caller is Priya Raman."))
    silent = int(rng.integers(0, turns)) if unheard else -1
    for n in range(turns):
        for role in ("user", "assistant"):
            if role == "assistant" and rng.random() < 0.25:
                call_id = f"call_{seed}_{n}"
                query = json.dumps({"city": str(rng.choice(_NAMES)), "day": n})
                items.append(FunctionCall(name="lookup", call_id=call_id, arguments=query))
                found = json.dumps({"flight": f"LX{int(rng.integers(100, 999))}", "turn": n})
                items.append(FunctionCallOutput(call_id=call_id, output=found))
            if rng.random() < 0.15:
                text = str(rng.choice(_SHORT))  # the whole turn repeats: equal text forms
            else:
                text = " ".join(_sentence(rng, n) for _ in range(int(rng.integers(1, 5))))
            if role == "user" and n == silent:
                text = ""
            if system and rng.random() < 0.05:
                items.append(Message(role="system", text=f"Turn {n}: the caller is in Oslo."))
            if role == "user" and rng.random() < 0.05:  # typed, not said
                items.append(Message(role="user", text=f"{text} (typed {n})"))
                continue
            ms = int(rng.integers(600, 400 * len(text.split()) + 1500))
            items.append(Message(role=role, text=text, audio_ms=ms))
    return items


def _batch(seed: int, calls: int, turns: int, unheard: bool, system: bool) -> CallBatch:
    rng = np.random.default_rng(seed)
    return batch_from_items(
        [
            conversation(
                int(rng.integers(0, 2**31)),
                turns,
                unheard and bool(rng.random() < 0.5),
                system and bool(rng.random() < 0.5),
            )
            for _ in range(calls)
        ]  # fmt: skip
    )


def _repeats(items: list[Item]) -> bool:
    texts = [(i.role, i.text) for i in items if isinstance(i, Message)]
    return len(set(texts)) < len(texts)


def _agree(batch: CallBatch, fast, profile, provider, config, rollover, compaction) -> int:
    """Checks every call the arrays kept against the reference path; returns how many."""
    rows = fast.responses
    kept = 0
    for call in range(len(batch)):
        items = batch.items(call)
        ref = simulate_call(items, profile, provider, config=config, rollover=rollover,
                            compaction=compaction)  # fmt: skip
        totals = ref.totals()
        if call in fast.fallback:
            # Handed back for what the arrays do not model: an overflow, a seed that may hit
            # an organization-wide cache, a hierarchical fold after a cut, and in calls from
            # files: a turn with no transcript, repeated texts, a system item.
            reseeded = profile.cache.scope == "organization" and ref.rollovers
            inner = compaction.strategy if isinstance(compaction, WhenCold) else compaction
            cut = ref.rollovers or totals["truncations"]
            middle = isinstance(inner, Hierarchical) and cut
            given = any(is_unheard(i) or (isinstance(i, Message) and i.role == "system")
                        for i in items) or _repeats(items)  # fmt: skip
            assert totals["overflows"] > 0 or reseeded or middle or given
            continue
        kept += 1
        assert_same_responses(rows, call, ref)
        assert fast.totals["rollovers"][call] == totals["rollovers"]
        assert fast.totals["rollover_seed_tokens"][call] == totals["rollover_seed_tokens"]
        assert fast.totals["session_expired"][call] == int(totals["session_expired"])
        assert fast.totals["compactions"][call] == totals["compactions"]
    return kept


# Calls from files are short: three times the generated calls' examples in the same time.
@settings(max_examples=3 * int(os.environ.get("PATHS_EXAMPLES", "60")), deadline=None)
@given(scenarios(), array_compaction(), st.integers(8, 60), st.booleans(), st.booleans())
def test_calls_from_files_give_the_reference_paths_responses(scenario, compaction, turns,
                                                              unheard, system) -> None:  # fmt: skip
    profile, truncation, provider, rollover, _, seed, instructions = scenario
    config = SessionConfig(
        instructions=instructions, tools=({"name": "lookup"},), truncation=truncation
    )
    batch = _batch(seed, 2, turns, unheard, system)
    fast = simulate_batch(batch, profile, provider, config=config, rollover=rollover,
                          keep_responses=True, compaction=compaction)  # fmt: skip
    _agree(batch, fast, profile, provider, config, rollover, compaction)


@pytest.mark.parametrize(
    "compaction",
    [RollingSummary(trigger=0.5, keep=2, budget=128), Ledger(trigger=0.5, keep=2, budget=64),
     Ledger(trigger=0.5, keep=2, budget=64, summary_budget=96),
     Hierarchical(trigger=0.5, keep=2, chunk=2, budget=48, max_summaries=2),
     WhenCold(RollingSummary(trigger=0.6, keep=2, budget=96), early=0.3),
     AudioToText(keep=2, trigger=0.3), None],
    ids=["summary", "ledger", "ledger-summary", "hierarchical", "summary-cold", "convert",
         "none"],
)  # fmt: skip
@pytest.mark.parametrize("carry", ["summary", "ledger", "recent"])
def test_summarizing_keeps_calls_from_files_on_the_arrays(compaction, carry) -> None:
    """Compaction and rollovers on every call: the arrays keep most of them, exactly."""
    provider = ProviderProfile(name="p", max_session_seconds=150.0)
    config = SessionConfig(instructions="Be brief. " * 20, truncation=Truncation.parse("auto"))
    rollover = RolloverPolicy(600, carry=carry, summary_tokens=150)
    batch = _batch(7, 8, 40, unheard=True, system=False)
    fast = simulate_batch(batch, SMALL, provider, config=config, rollover=rollover,
                          keep_responses=True, compaction=compaction)  # fmt: skip
    kept = _agree(batch, fast, SMALL, provider, config, rollover, compaction)
    assert kept >= len(batch) // 2
    if compaction is not None and not isinstance(compaction, AudioToText):
        assert fast.totals["compactions"].sum() > 0


def _with_facts(batch: CallBatch, rng: np.random.Generator) -> CallBatch:
    """`batch` with facts planted in some user turns' texts (a code, then its update)."""
    calls: list[list[Item]] = []
    planted: list[tuple[PlantedFact, ...]] = []
    for call in range(len(batch)):
        items = batch.items(call)
        users = [n for n, i in enumerate(items) if isinstance(i, Message) and i.role == "user"]
        facts = []
        chosen = sorted(rng.choice(users, size=min(3, len(users)), replace=False).tolist())
        for k, n in enumerate(chosen):
            item = items[n]
            assert isinstance(item, Message)
            code, old = f"ZR-{call}{k}{int(rng.integers(10, 99))}", f"ZR-{call}{k}00"
            statement = f"Actually my reference is {code}, not {old}."
            items[n] = replace(item, text=f"{statement} {item.text}".strip())
            facts.append(PlantedFact("updated", n, statement, (code,), (old,)))
        calls.append(items)
        planted.append(tuple(facts))
    return replace(batch_from_items(calls), facts=tuple(planted))


@settings(max_examples=int(os.environ.get("PATHS_EXAMPLES", "60")), deadline=None)
@given(scenarios(), array_compaction(), st.integers(8, 30))
def test_fact_presence_of_calls_from_files_is_the_reference_paths(scenario, compaction,
                                                                   turns) -> None:  # fmt: skip
    """Planted facts in what the last session holds: the arrays read the items' own texts."""
    profile, truncation, provider, rollover, spec, seed, instructions = scenario
    config = SessionConfig(instructions=instructions, truncation=truncation)
    batch = _with_facts(_batch(seed, 2, turns, True, True), np.random.default_rng(seed))
    fast = simulate_batch(batch, profile, provider, config=config, rollover=rollover,
                          compaction=compaction, final=True)  # fmt: skip
    columns = run_chunk(spec, 2, None, profile, provider, config, rollover, "vectorized", batch,
                        compaction)  # fmt: skip
    assert fast.final is not None
    for call in range(2):
        ref = simulate_call(batch.items(call), profile, provider, config=config,
                            rollover=rollover, compaction=compaction)  # fmt: skip
        presence = fact_presence(batch.facts[call], ref.final_items)
        if call not in fast.fallback:
            said = [Message(role="system", text=text) for text in fast.final[call]]
            assert fact_presence(batch.facts[call], said) == presence
        assert columns["facts"][call] == presence["facts"]
        assert columns["facts_present"][call] == presence["present"]
        assert columns["facts_present_normalized"][call] == presence["present_normalized"]
        assert columns["stale_values"][call] == presence["stale"]
