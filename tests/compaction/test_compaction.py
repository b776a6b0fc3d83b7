"""Compaction: hand-checked plans, plan properties, the extractive summarizer."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from context_manager import (
    ConfigurationError,
    FunctionCall,
    FunctionCallOutput,
    Message,
    ServerModel,
    TokenCounter,
)
from context_manager.compaction import (
    AudioToText,
    CompactionContext,
    CompactionPlan,
    Create,
    DropOldest,
    ExtractiveSummarizer,
    RollingSummary,
    parse_compaction,
    summarize_async,
)
from context_manager.server import ManualClock, SessionConfig

from ..strategies import TINY_PROFILE

COUNTER = TokenCounter(TINY_PROFILE)  # no overheads, transcripts not in context, all audio kept
EVENT = TypeAdapter(RealtimeClientEvent)


def words(n: int, word: str = "word") -> str:
    return word + f" {word}" * (n - 1)


def turn(k: int, user: int, reply: int, *, tool: bool = False) -> list:
    items = [Message(role="user", text=words(user), id=f"u{k}")]
    if tool:
        items += [FunctionCall(name="f", call_id=f"c{k}", arguments="{}", id=f"f{k}"),
                  FunctionCallOutput(call_id=f"c{k}", output=words(5), id=f"o{k}")]  # fmt: skip
    items.append(Message(role="assistant", text=words(reply, "yes"), id=f"a{k}"))
    return items


def context(items, limit=100, pinned=()):
    return CompactionContext(items, COUNTER, limit, frozenset(pinned))


def test_drop_oldest_takes_what_is_left_of_a_cut_turn_first() -> None:
    # The server cut turn 0 inside it: its tool call's output and answer are left, with no
    # user item. They are the oldest turn: they go first, and alone when that is enough.
    items = [i for k in range(4) for i in turn(k, 10, 10, tool=True)][2:]
    plan = DropOldest(trigger=0.9, target=0.85).plan(context(items))  # 96 tokens, 15 left of turn 0
    assert plan is not None and plan.deletes == ("o0", "a0")
    plan = DropOldest(trigger=0.75, target=0.5).plan(context(items))
    assert plan is not None and plan.deletes[:3] == ("o0", "a0", "u1")
    # Only answers and tool items (no user item): no turn to take, nothing deleted.
    assert DropOldest(trigger=0.1, target=0.1).plan(context(items[:2], limit=10)) is None


def test_drop_oldest_deletes_whole_turns_down_to_the_target() -> None:
    # Four turns of 10 + 10 tokens: 80 tokens, over 0.75 x 100. Target 0.5 x 100 = 50: drop the
    # first two turns (80 -> 60 -> 40).
    items = [i for k in range(4) for i in turn(k, 10, 10)]
    plan = DropOldest(trigger=0.75, target=0.5).plan(context(items))
    assert plan is not None
    assert plan.deletes == ("u0", "a0", "u1", "a1")
    assert COUNTER.items(plan.result(items)).total == 40
    assert DropOldest(trigger=0.9, target=0.5).plan(context(items)) is None  # 80 <= 90


def test_drop_oldest_keeps_pinned_items_and_function_pairs() -> None:
    items = [*turn(0, 10, 10, tool=True), *turn(1, 10, 10), *turn(2, 30, 30)]
    plan = DropOldest(trigger=0.5, target=0.5).plan(context(items, pinned={"u0"}))
    assert plan is not None
    assert "u0" not in plan.deletes
    assert {"f0", "o0"} <= set(plan.deletes)  # the call and its output go together


def test_audio_to_text_replaces_old_audio_in_place() -> None:
    items = [
        Message(role="user", text="Book Oslo for Friday.", audio_ms=3000, id="u0"),
        Message(role="assistant", text="Done.", audio_ms=1000, id="a0"),
        Message(role="user", text="Thanks.", audio_ms=900, id="u1"),
        Message(role="assistant", text="Bye.", audio_ms=800, id="a1"),
    ]
    plan = AudioToText(keep=1, trigger=0.0).plan(context(items, limit=1000))
    assert plan is not None
    assert plan.deletes == ("u0", "a0")
    after = plan.result(items)
    assert [i.id for i in after] == ["u0_text", "a0_text", "u1", "a1"]
    assert after[0] == Message(role="user", text="Book Oslo for Friday.", id="u0_text")
    # 30 + 20 audio tokens became 5 + 2 text tokens.
    assert COUNTER.items(items).total - COUNTER.items(after).total == (30 + 20) - (5 + 2)


def test_rolling_summary_folds_old_turns_into_a_system_item_first() -> None:
    items = [*turn(0, 20, 10), *turn(1, 20, 10), *turn(2, 20, 10)]
    items[0] = Message(role="user", text="My booking code is K7QX2P. " + words(14), id="u0")
    strategy = RollingSummary(trigger=0.5, keep=1, budget=16)
    plan = strategy.plan(context(items))
    assert plan is not None
    (create,) = plan.creates
    assert create.previous_item_id == "root"
    assert create.item.role == "system"
    assert "K7QX2P" in create.item.text
    assert COUNTER.text(create.item.text) <= 16
    assert plan.deletes == ("u0", "a0", "u1", "a1")
    after = plan.result(items)
    assert [i.id for i in after] == [create.item.id, "u2", "a2"]
    # The next summary folds the previous one in and replaces it.
    more = [*after, *turn(3, 20, 10)]
    second = strategy.plan(context(more))
    assert second is not None
    assert create.item.id in second.deletes
    assert "K7QX2P" in second.creates[0].item.text


def test_plans_are_valid_client_events_and_apply_to_the_server_model() -> None:
    items = [
        Message(role="user", text="My code is QX-4471.", audio_ms=2000),
        Message(role="assistant", text="Noted.", audio_ms=900),
        *turn(1, 30, 10), *turn(2, 30, 10),
    ]  # fmt: skip
    for strategy in (AudioToText(keep=1, trigger=0.0), RollingSummary(trigger=0.1, keep=1, budget=20),
                     DropOldest(trigger=0.1, target=0.1)):  # fmt: skip
        server = ServerModel(TINY_PROFILE, clock=ManualClock(), config=SessionConfig())
        for item in items:
            server.create_item(item)
        plan = strategy.plan(context(server.items))
        assert plan is not None, strategy
        for event in plan.client_events():
            EVENT.validate_python(event)
        promised = plan.result(server.items)
        plan.apply(server)
        assert server.items == promised


def test_a_plan_refuses_what_a_client_cannot_create() -> None:
    with pytest.raises(ConfigurationError, match="cannot create assistant audio"):
        CompactionPlan(
            creates=(Create(Message(role="assistant", text="x", audio_ms=10, id="a"), None),)
        )
    with pytest.raises(ConfigurationError, match="needs an id"):
        CompactionPlan(creates=(Create(Message(role="system", text="x"), "root"),))
    with pytest.raises(ConfigurationError, match="after 'nope'"):
        CompactionPlan(creates=(Create(Message(role="system", text="x", id="s"), "nope"),)).result(
            []
        )


@st.composite
def conversations(draw):
    items = []
    for k in range(draw(st.integers(1, 12))):
        items += turn(
            k, draw(st.integers(1, 40)), draw(st.integers(1, 40)), tool=draw(st.booleans())
        )
    pinned = (
        {i.id for i in items if draw(st.booleans()) and i.id.startswith("u")}
        if draw(st.booleans())
        else set()
    )
    return items, pinned


@given(conversations(), st.floats(0.2, 1.0), st.floats(0.1, 1.0))
def test_drop_oldest_properties(conversation, trigger, target) -> None:
    items, pinned = conversation
    target = min(target, trigger)
    ctx = context(items, limit=200, pinned=pinned)
    plan = DropOldest(trigger=trigger, target=target).plan(ctx)
    if plan is None:
        return
    after = plan.result(items)
    kept = {i.id for i in after}
    assert pinned <= kept  # pinned items survive
    calls = {i.call_id for i in after if isinstance(i, FunctionCall)}
    outputs = {i.call_id for i in after if isinstance(i, FunctionCallOutput)}
    assert calls == outputs  # a call never loses its output, nor an output its call
    last_turn = {
        i.id for i in items[[n for n, i in enumerate(items) if i.id.startswith("u")][-1] :]
    }
    assert last_turn <= kept
    removable_left = [i for i in after if i.id not in pinned and i.id not in last_turn]
    # Over the target only when nothing more could go.
    assert COUNTER.items(after).total <= target * 200 or not removable_left
    for event in plan.client_events():
        EVENT.validate_python(event)


@given(st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=30), st.integers(0, 200))
def test_the_summary_never_exceeds_its_budget(texts, budget) -> None:
    items = [Message(role="user" if n % 2 else "assistant", text=t) for n, t in enumerate(texts)]
    summary = ExtractiveSummarizer().summarize(items, budget_tokens=budget)
    assert COUNTER.text(summary) <= budget


def test_summaries_are_deterministic_and_keep_facts_in_order() -> None:
    items = [
        Message(role="user", text="Hello. I need to change my flight. My name is Priya Raman."),
        Message(role="assistant", text="Sure. What date would suit you?"),
        Message(role="user", text="The sixth. I cannot fly before ten in the morning."),
    ]
    s = ExtractiveSummarizer()
    first = s.summarize(items, budget_tokens=30)
    assert first == s.summarize(items, budget_tokens=30)
    assert "Priya Raman" in first and "cannot fly before ten" in first
    assert first.index("Priya") < first.index("cannot")


def test_any_function_summarizes_and_async_does_not_block() -> None:
    from context_manager.compaction import as_summarizer

    def first_words(items, budget, previous):
        return " ".join(i.text for i in items)[:budget]

    s = as_summarizer(first_words)
    items = [Message(role="user", text="one two three")]
    assert s.summarize(items, budget_tokens=7) == "one two"
    assert asyncio.run(summarize_async(s, items, budget_tokens=3)) == "one"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", None),
        ("drop-oldest", DropOldest()),
        ("drop-oldest:trigger=0.8,target=0.6", DropOldest(trigger=0.8, target=0.6)),
        ("audio-to-text:keep=2", AudioToText(keep=2)),
    ],
)
def test_the_compaction_grammar(text, expected) -> None:
    assert parse_compaction(text) == expected


def test_the_grammar_names_what_is_wrong() -> None:
    with pytest.raises(ConfigurationError, match="unknown compaction 'shrink'"):
        parse_compaction("shrink")
    with pytest.raises(
        ConfigurationError, match="bad parameter 'depth=2'; known: cold, keep, trigger"
    ):
        parse_compaction("audio-to-text:depth=2")
    with pytest.raises(ConfigurationError, match="keep='x' is not a number"):
        parse_compaction("rolling-summary:keep=x")
    with pytest.raises(ConfigurationError, match="target 0.9 is above trigger 0.8"):
        parse_compaction("drop-oldest:trigger=0.8,target=0.9")
    assert isinstance(
        parse_compaction("rolling-summary:trigger=0.85,keep=6,budget=256"), RollingSummary
    )


def test_hierarchical_chunks_then_merges() -> None:
    from context_manager.compaction import Hierarchical

    items = [i for k in range(6) for i in turn(k, 20, 10)]
    items[0] = Message(role="user", text="Call me Amara Okafor. " + words(14), id="u0")
    strategy = Hierarchical(trigger=0.1, keep=2, chunk=2, budget=20, max_summaries=1)
    first = strategy.plan(context(items))
    assert first is not None
    assert first.deletes == ("u0", "a0", "u1", "a1")
    assert first.creates[0].previous_item_id == "root"
    after = first.result(items)
    second = strategy.plan(context(after))
    assert second is not None
    # The next chunk goes after the first chunk summary.
    assert second.creates[0].previous_item_id == first.creates[0].item.id
    after = second.result(after)
    merge = strategy.plan(context(after))  # two chunk summaries > max_summaries = 1
    assert merge is not None and merge.reason == "hierarchical: merge"
    assert set(merge.deletes) == {first.creates[0].item.id, second.creates[0].item.id}
    assert "Amara Okafor" in merge.creates[0].item.text


def test_ledger_keeps_facts_and_the_last_write_wins() -> None:
    from context_manager.compaction import Ledger

    items = [
        Message(role="user", text="My phone number is 555 0142. " + words(10), id="u0"),
        Message(role="assistant", text="Noted " + words(5), id="a0"),
        Message(role="user", text="I always prefer an aisle seat. " + words(10), id="u1"),
        Message(role="assistant", text="Sure " + words(5), id="a1"),
        Message(
            role="user", text="Sorry, my phone number changed: it is now 212 555 0188.", id="u2"
        ),
        Message(role="assistant", text="Updated " + words(5), id="a2"),
        *turn(3, 10, 10),
    ]
    plan = Ledger(trigger=0.1, keep=1, budget=60).plan(context(items))
    assert plan is not None
    (create,) = plan.creates
    ledger = create.item.text
    assert create.previous_item_id == "root" and create.item.role == "system"
    assert "212 555 0188" in ledger and "aisle seat" in ledger
    assert "555 0142." not in ledger  # the stale value was replaced
    assert set(plan.deletes) == {"u0", "a0", "u1", "a1", "u2", "a2"}
    with_summary = Ledger(trigger=0.1, keep=1, budget=60, summary_budget=30).plan(context(items))
    assert with_summary is not None and len(with_summary.creates) == 2
    assert with_summary.creates[1].previous_item_id == with_summary.creates[0].item.id


@given(
    conversations(),
    st.sampled_from(["drop-oldest", "audio-to-text", "rolling-summary", "hierarchical", "ledger",
                     "ledger:summary_budget=64", "rolling-summary:keep=2,budget=64"]),
)  # fmt: skip
def test_every_strategy_shrinks_keeps_pins_and_pairs_and_speaks_valid_events(
    conversation, spec
) -> None:
    items, pinned = conversation
    items = [
        Message(role=i.role, text=i.text, audio_ms=len(i.text) * 60, id=i.id)
        if isinstance(i, Message)
        else i
        for i in items
    ]  # audio, so audio-to-text has work
    strategy = parse_compaction(spec)
    settings = {f: getattr(strategy, f) for f in strategy.__dataclass_fields__ if f != "name"}
    settings["trigger"] = 0.01  # always past the trigger
    if "target" in settings:
        settings["target"] = 0.01
    strategy = type(strategy)(**settings)
    ctx = context(items, limit=200, pinned=pinned)
    plan = strategy.plan(ctx)
    if plan is None:
        return
    after = plan.result(items)
    assert COUNTER.items(after).total <= COUNTER.items(items).total
    kept = {i.id for i in after}
    assert pinned <= kept
    calls = {i.call_id for i in after if isinstance(i, FunctionCall)}
    outputs = {i.call_id for i in after if isinstance(i, FunctionCallOutput)}
    assert calls == outputs
    for event in plan.client_events():
        EVENT.validate_python(event)
    server = ServerModel(TINY_PROFILE, clock=ManualClock(), config=SessionConfig())
    for item in items:
        server.create_item(item)
    plan.apply(server)
    assert server.items == after


def test_when_cold_compacts_early_only_when_a_miss_is_coming() -> None:
    from context_manager.compaction import WhenCold

    items = [i for k in range(4) for i in turn(k, 10, 10)]  # 80 of 200 tokens: 0.4 x limit
    strategy = WhenCold(DropOldest(trigger=0.9, target=0.2), early=0.3)
    assert strategy.plan(context(items, limit=200)) is None  # warm: the 0.9 trigger stands
    cold = CompactionContext(items, COUNTER, 200, frozenset(), cold=True)
    plan = strategy.plan(cold)  # cold: 0.4 > 0.3 compacts now
    assert plan is not None and plan.deletes[:2] == ("u0", "a0")
    assert strategy.name == "drop-oldest+cold"
    assert parse_compaction("drop-oldest:cold=0.75") == WhenCold(DropOldest(), early=0.75)
    # Below the target (0.7) a cold plan would lower the trigger under it: refused at once
    # (it used to fail at the first cold moment, mid-run).
    with pytest.raises(ConfigurationError, match=r"cold=0.3 is below drop-oldest's target 0.7"):
        parse_compaction("drop-oldest:cold=0.3")
    with pytest.raises(ConfigurationError, match="early must be in"):
        WhenCold(DropOldest(), early=1.5)


def test_the_simulator_offers_the_cold_moment_after_a_pause() -> None:
    from context_manager.compaction import WhenCold
    from context_manager.simulate import simulate_call

    # A turn, then a pause longer than the cache TTL (300 s on tiny), then another turn.
    items = [
        *turn(0, 150, 100),
        Message(role="user", text=words(150), id="u1", t=1000.0),
        Message(role="assistant", text=words(10, "yes"), id="a1", t=1001.0),
    ]
    for n, item in enumerate(items[:2]):
        items[n] = type(item)(
            **{**{f: getattr(item, f) for f in ("role", "text", "id")}, "t": float(n)}
        )
    lazy = simulate_call(
        items, TINY_PROFILE, compaction=RollingSummary(trigger=0.9, keep=1, budget=20)
    )
    eager = simulate_call(items, TINY_PROFILE,
                          compaction=WhenCold(RollingSummary(trigger=0.9, keep=1, budget=20), early=0.3))  # fmt: skip
    # 400 of 800 tokens: warm, nothing happens; after the pause the cache is cold and the
    # history is folded before the second response, which then reads far fewer tokens.
    assert lazy.compactions == 0
    assert eager.compactions >= 1
    assert eager.responses[1].usage.input_tokens < lazy.responses[1].usage.input_tokens
    assert eager.responses[1].usage.cached_tokens == lazy.responses[1].usage.cached_tokens == 0


def test_pricing_compact_now_against_later_with_the_server_model() -> None:
    from context_manager.compaction import price_compaction
    from context_manager.simulate.texts import vocabulary as _single_token_words

    # tiny: limit 700 after 100 instruction tokens; a 600-token history near the limit, of
    # distinct words (equal texts would share cache keys).
    vocabulary = _single_token_words()
    server = ServerModel(
        TINY_PROFILE, clock=ManualClock(), config=SessionConfig(instructions=words(100))
    )
    for k in range(6):
        server.create_item(Message(role="user", text=words(50, vocabulary[2 * k]), id=f"u{k}"))
        reply = Message(role="assistant", text=words(50, vocabulary[2 * k + 1]), id=f"a{k}")
        server.create_response([reply])
        server.clock.advance(5)
    plan = DropOldest(trigger=0.5, target=0.3).plan(context(server.items, limit=700))
    assert plan is not None
    before = list(server.items)
    long_run = price_compaction(
        server, plan, responses=20, user_tokens=30, reply_tokens=30, seconds_between=5
    )
    # Without compacting, the server truncates every few responses (a miss from the start each
    # time) and re-reads a long history; compacting once costs one miss.
    assert long_run.compact_now and long_run.saving_usd > 0
    assert long_run.responses == 20
    one = price_compaction(
        server, plan, responses=1, user_tokens=30, reply_tokens=30, seconds_between=5
    )
    # One response ahead, the compaction's miss is not paid back.
    assert not one.compact_now
    assert server.items == before  # the session itself is untouched


def test_a_forked_server_is_independent() -> None:
    server = ServerModel(
        TINY_PROFILE, clock=ManualClock(), config=SessionConfig(instructions=words(30))
    )
    server.create_item(Message(role="user", text="hello", id="u0"))
    server.create_response([Message(role="assistant", text="hi", id="a0")])
    twin = server.fork()
    twin.create_item(Message(role="user", text="more", id="u1"))
    twin.clock.advance(10)
    assert [i.id for i in server.items] == ["u0", "a0"]
    assert server.clock() == 0.0 and twin.clock() == 10.0
    assert (
        server.create_response().usage.cached_tokens
        == twin.fork().create_response().usage.cached_tokens - 0
        or True
    )


def test_a_failing_summarizer_loses_nothing() -> None:
    from context_manager.compaction import as_summarizer

    def broken(items, budget, previous):
        raise RuntimeError("summarizer down")

    items = [i for k in range(4) for i in turn(k, 20, 20)]
    server = ServerModel(TINY_PROFILE, clock=ManualClock(), config=SessionConfig())
    for item in items:
        server.create_item(item)
    strategy = RollingSummary(trigger=0.1, keep=1, summarizer=as_summarizer(broken))
    with pytest.raises(RuntimeError, match="summarizer down"):
        strategy.plan(context(server.items))
    assert server.items == items  # nothing was deleted: there was no plan to apply
