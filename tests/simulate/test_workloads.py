"""Workloads: seeded, exact-length texts, planted facts, parameters, resampled files."""

from __future__ import annotations

import numpy as np
import pytest

from context_manager import (
    ConfigurationError,
    FunctionCall,
    FunctionCallOutput,
    Message,
    TokenCounter,
    get_model_profile,
)
from context_manager.simulate.given import resample_files
from context_manager.simulate.texts import text_with_tokens
from context_manager.simulate.workloads import (
    DEFAULT_FACTS,
    WORKLOADS,
    generate,
    workload,
)

COUNTER = TokenCounter(get_model_profile("gpt-realtime"))


def content_tokens(item) -> int:
    if isinstance(item, Message):
        return COUNTER.text(item.text)
    if isinstance(item, FunctionCall):
        return COUNTER.text(item.name) + COUNTER.text(item.arguments)
    return COUNTER.text(item.output)


def test_the_same_seed_gives_the_same_calls() -> None:
    a = generate(workload("voice-agent", minutes=10), 5, np.random.default_rng(42))
    b = generate(workload("voice-agent", minutes=10), 5, np.random.default_rng(42))
    c = generate(workload("voice-agent", minutes=10), 5, np.random.default_rng(43))
    for name in ("offsets", "kind", "audio_ms", "text_tokens", "t"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.text_tokens[:50], c.text_tokens[:50])
    assert a.items(3) == b.items(3)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_written_out_items_have_exactly_the_batch_token_counts(name: str) -> None:
    batch = generate(workload(name, minutes=6), 3, np.random.default_rng(7))
    for call in range(3):
        items = batch.items(call)
        span = batch.call_slice(call)
        assert [content_tokens(i) for i in items] == batch.text_tokens[span].tolist()
        assert [i.t for i in items] == batch.t[span].tolist()
        times = [i.t for i in items]
        assert times == sorted(times)
        assert times[-1] < 6 * 60


def test_calls_fill_their_length_and_turns_look_like_the_model() -> None:
    spec = workload("voice-agent")
    batch = generate(spec, 200, np.random.default_rng(1))
    users = batch.kind == 0
    seconds = batch.audio_ms[users] / 1000
    assert np.median(seconds) == pytest.approx(spec.user_turn_s, rel=0.05)
    assistants = batch.audio_ms[batch.kind == 1] / 1000
    assert np.median(assistants) == pytest.approx(spec.assistant_turn_s, rel=0.05)
    # Tokens follow speech: seconds x 2.5 words x 1.3 tokens.
    assert np.median(batch.text_tokens[users] / seconds) == pytest.approx(3.25, rel=0.05)
    last = batch.t[batch.offsets[1:] - 1]
    assert (last > 59 * 60).all() and (last < 60 * 60).all()
    calls = (batch.kind == 2).sum() / (batch.kind == 1).sum()
    assert calls == pytest.approx(spec.tool_call_rate, abs=0.02)


def test_planted_facts_are_in_the_text_with_their_probes() -> None:
    batch = generate(
        workload("support-call", minutes=20, facts=DEFAULT_FACTS), 4, np.random.default_rng(3)
    )
    for call in range(4):
        items = batch.items(call)
        facts = batch.facts[call]
        assert {f.kind for f in facts} == {f.kind for f in DEFAULT_FACTS}
        for fact in facts:
            said = items[fact.item]
            assert isinstance(said, Message) and said.role == "user"
            assert said.text.startswith(fact.statement)
            for probe in fact.probes:
                assert probe in said.text
        update = [f for f in facts if f.kind == "updated" and f.stale]
        assert update and update[0].stale[0] not in update[0].probes


def test_exact_length_texts() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 5, 37, 400):
        assert COUNTER.text(text_with_tokens(n, rng)) == n
    assert COUNTER.text(text_with_tokens(20, rng, wrap=('{"query": "', '"}'))) == 20
    with pytest.raises(ConfigurationError, match="cannot write a text of 2 tokens"):
        text_with_tokens(2, rng, lead="A statement that is far longer than two tokens.")


def test_parameters_are_checked() -> None:
    assert workload("voice-agent", minutes=90).minutes == 90
    with pytest.raises(ConfigurationError, match="unknown workload 'chat'"):
        workload("chat")
    with pytest.raises(ConfigurationError, match="unknown workload parameter.*speed"):
        workload("voice-agent", speed=2)
    with pytest.raises(ConfigurationError, match="tool_call_rate must be in"):
        workload("voice-agent", tool_call_rate=1.5)
    with pytest.raises(ConfigurationError, match="must be a finite number >= 0"):
        workload("voice-agent", user_pause_s=-1.0)


def test_resampled_files_keep_turns_and_timing() -> None:
    conversation = [
        Message(role="user", text="Hello there.", audio_ms=2000, t=0.0),
        Message(role="assistant", text="Hi! How can I help?", audio_ms=1500, t=2.5),
        Message(role="user", text="Book Oslo.", audio_ms=1000, t=5.0),
        FunctionCall(name="book", call_id="c1", arguments="{}", t=6.5),
        FunctionCallOutput(call_id="c1", output="booked", t=6.9),
        Message(role="assistant", text="Done.", audio_ms=800, t=7.2),
    ]
    batch = resample_files([conversation], 3, 2.0, np.random.default_rng(5))
    for call in range(3):
        items = batch.items(call)
        assert items and isinstance(items[0], Message) and items[0].role == "user"
        assert items[-1].t < 120
        times = [i.t for i in items]
        assert times == sorted(times)
    with pytest.raises(ConfigurationError, match="no turn"):
        resample_files([[Message(role="assistant", text="hi")]], 1, 1.0, np.random.default_rng(0))
