"""Rollover with compaction: the new session gets a summary or ledger, then recent turns."""

from __future__ import annotations

import numpy as np
import pytest

from context_manager import ConfigurationError, Message, TokenCounter, get_model_profile
from context_manager.rollover import RolloverPolicy
from context_manager.server import SessionConfig
from context_manager.simulate import simulate_call
from context_manager.simulate.facts import fact_presence
from context_manager.simulate.workloads import DEFAULT_FACTS, generate, workload

GPT = get_model_profile("gpt-realtime")
COUNTER = TokenCounter(GPT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recent", RolloverPolicy()),
        ("recent:2000", RolloverPolicy(2000)),
        ("summary:3000", RolloverPolicy(3000, "summary")),
        ("ledger:3000:300", RolloverPolicy(3000, "ledger", 300)),
        ("none", None),
    ],
)
def test_rollover_grammar(text, expected) -> None:
    assert RolloverPolicy.parse(text) == expected


def test_rollover_grammar_errors() -> None:
    for bad in ("recent:1:2", "summary:x", "later", "ledger:-5"):
        with pytest.raises(ConfigurationError, match="bad rollover"):
            RolloverPolicy.parse(bad)


def test_a_summary_seed_is_a_system_item_then_recent_turns_within_the_budget() -> None:
    history = []
    for n in range(30):
        history.append(
            Message(role="user", text=f"Turn {n}: my booking code is QX-{4400 + n}.", audio_ms=3000)
        )
        history.append(Message(role="assistant", text="Noted, thank you very much.", audio_ms=2000))
    for carry in ("summary", "ledger"):
        policy = RolloverPolicy(300, carry, 120)
        seed = policy.seed(history, COUNTER)
        assert seed[0].role == "system" and seed[0].audio_ms is None
        assert COUNTER.item(seed[0]).full.total <= 120
        assert all(i.audio_ms is None for i in seed)  # everything goes in as text
        assert sum(COUNTER.item(i).full.total for i in seed) <= 300
        assert seed[-1].text == "Noted, thank you very much."


def test_a_ledger_carries_the_facts_across_the_rollover() -> None:
    batch = generate(
        workload("voice-agent", minutes=45, facts=DEFAULT_FACTS), 3, np.random.default_rng(8)
    )
    config = SessionConfig(instructions="You are a travel concierge.")
    kept = {}
    for name in ("recent:2000", "ledger:2000:400"):
        present = 0
        for call in range(3):
            result = simulate_call(
                batch.items(call), GPT, "azure", config=config, rollover=RolloverPolicy.parse(name)
            )
            assert result.totals()["rollovers"] == 1
            present += fact_presence(batch.facts[call], result.final_items)["present_normalized"]
        kept[name] = present
    # Facts said in the first half hour are gone with the recent turns alone; the ledger keeps them.
    assert kept["ledger:2000:400"] > kept["recent:2000"]
