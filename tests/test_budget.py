"""The budget breakdown and the running tally."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_manager import (
    BudgetExceededError,
    ConfigurationError,
    InstructionsToolsLimitError,
    Message,
    RunningBudget,
    TokenCounter,
    compute_budget,
    get_model_profile,
    load_model_profile,
)

from .strategies import TINY, TINY_PROFILE, items_strategy

GPT = get_model_profile("gpt-realtime")
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Look up the weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_hand_checked_breakdown() -> None:
    b = compute_budget(GPT, instructions="Answer in two or three words.", tools=[WEATHER])
    assert (b.instructions_tokens, b.tools_tokens) == (7, 36)
    assert b.history_limit == 28672 - 7 - 36
    assert (
        b.context_window
        == b.max_output_tokens + b.instructions_tokens + b.tools_tokens + b.history_limit
    )
    assert b.slack_tokens == 0
    assert b.free_tokens == b.history_limit


def test_post_instructions_sets_the_history_limit() -> None:
    b = compute_budget(GPT, instructions="Be brief.", post_instructions=5000)
    assert b.history_limit == 5000
    assert b.slack_tokens == 32768 - 4096 - 3 - 5000


@pytest.mark.parametrize("bad", [0, -1, 28673])
def test_post_instructions_out_of_range(bad: int) -> None:
    with pytest.raises(
        ConfigurationError, match=f"between 1 and .* = 28,672 for gpt-realtime, got {bad:,}"
    ):
        compute_budget(GPT, post_instructions=bad)


def test_instructions_and_tools_over_the_cap_state_both_numbers() -> None:
    # The tiny profile caps instructions + tools at 400 tokens.
    instructions = "word " * 300  # 300 tokens
    tools = [{"name": f"tool_{n}", "description": "does a thing " * 5} for n in range(5)]
    counter = TokenCounter(TINY_PROFILE)
    i_tokens, t_tokens = counter.text(instructions), counter.tools(tools)
    assert i_tokens + t_tokens > 400
    with pytest.raises(InstructionsToolsLimitError) as info:
        compute_budget(TINY_PROFILE, instructions=instructions, tools=tools)
    err = info.value
    assert (err.instructions_tokens, err.tools_tokens, err.limit) == (i_tokens, t_tokens, 400)
    assert f"{i_tokens:,} instructions + {t_tokens:,} tools" in str(err)
    assert f"used={i_tokens + t_tokens:,}, limit=400" in str(err)


def test_exactly_at_the_cap_is_allowed() -> None:
    profile = load_model_profile(TINY | {"max_instructions_tools_tokens": 300})
    b = compute_budget(profile, instructions="word" + " word" * 299)
    assert b.instructions_tokens == 300 and b.history_limit == 500


def test_running_budget_hand_checked() -> None:
    running = RunningBudget(
        compute_budget(GPT, instructions="Reply in two or three words."), TokenCounter(GPT)
    )
    running.add(Message(role="user", audio_ms=2796))
    running.add(Message(role="assistant", text="Hi Marcelo! Nice to meet you.", audio_ms=2100))
    # User audio: 4 + 4 text; assistant audio kept: 4 + 8 + its 8-token transcript.
    assert (running.history.text, running.history.audio) == (8 + 20, 27 + 42)
    second = running.add(
        Message(role="assistant", text="Hi Marcelo! Great to meet you.", audio_ms=2150)
    )
    # The first assistant item fell back to its transcript; the new one holds 43 audio tokens.
    assert (running.history.text, running.history.audio) == (8 + 12 + 20, 27 + 43)
    running.remove(second)
    assert (running.history.text, running.history.audio) == (8 + 20, 27 + 42)
    assert running.breakdown().history_tokens == running.history_tokens
    assert running.free_tokens == 28672 - 7 - running.history_tokens


def test_over_the_limit_check_names_the_numbers() -> None:
    running = RunningBudget(compute_budget(GPT, post_instructions=10), TokenCounter(GPT))
    running.add(Message(role="user", text="one two three four five six seven"))
    with pytest.raises(BudgetExceededError, match=r"used=11, limit=10, over by 1"):
        running.check()


def test_removing_an_unknown_key() -> None:
    running = RunningBudget(compute_budget(GPT), TokenCounter(GPT))
    with pytest.raises(ConfigurationError, match="'nope' is not counted"):
        running.remove("nope")


@given(
    items_strategy(max_size=16),
    st.lists(st.integers(min_value=0, max_value=30), max_size=10),
    st.sampled_from(["all", "latest", "none"]),
)
def test_running_equals_a_full_recount(items, removals, mode) -> None:
    """Incremental add/remove always equals counting the retained items from scratch."""
    profile = GPT.model_copy(update={"assistant_audio_in_context": mode})
    counter = TokenCounter(profile)
    running = RunningBudget(compute_budget(profile), counter)
    retained: dict[str, object] = {}
    for n, item in enumerate(items):
        key = running.add(item, key=f"k{n}")
        retained[key] = item
        if removals and removals[0] <= n and retained:
            victim = list(retained)[removals.pop(0) % len(retained)]
            running.remove(victim)
            del retained[victim]
        assert running.history == counter.items(list(retained.values()))
    assert len(running) == len(retained)
