"""ContextEngine without sockets: the fake session's events in, the engine's client events out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from context_manager.compaction import RollingSummary
from context_manager.errors import ConfigurationError, InputFormatError
from context_manager.items import FunctionCall, FunctionCallOutput, Item, Message
from context_manager.live import Compacted, ContextEngine, ItemChanged, ItemStored, ResponseOutcome
from context_manager.profiles import get_model_profile
from context_manager.rollover import RolloverPolicy
from context_manager.server import ManualClock, Truncation
from context_manager.testing import FakeSession, Reply, ScriptedSummarizer


def exchange(engine: ContextEngine, session: FakeSession, event: Mapping[str, Any]) -> None:
    """Send one client event; the server's events go to the engine, and its plans back."""
    engine.sent(event)
    for server_event in session.receive(event):
        for client_event in engine.feed(server_event):
            exchange(engine, session, client_event)


def start(engine: ContextEngine, session: FakeSession, **settings: Any) -> None:
    for event in session.opening():
        engine.feed(event)
    exchange(
        engine, session, {"type": "session.update", "session": {"type": "realtime", **settings}}
    )


def say(engine: ContextEngine, session: FakeSession, text: str) -> None:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    exchange(engine, session, {"type": "conversation.item.create", "item": item})


def respond(engine: ContextEngine, session: FakeSession) -> None:
    exchange(engine, session, {"type": "response.create"})


def short(items: Sequence[Item]) -> Reply:
    return Reply("ok")


def test_the_live_budget_counts_what_the_server_holds() -> None:
    engine = ContextEngine("gpt-realtime")
    session = FakeSession(responder=short)
    start(engine, session, instructions="Be brief.")
    say(engine, session, "Hello there, how are you?")
    assert engine.budget.history_tokens == session.model.retained_tokens().total
    respond(engine, session)
    assert engine.budget.history_tokens == session.model.retained_tokens().total
    assert engine.budget.instructions_tokens == session.model.budget.instructions_tokens


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(200, 9000), min_size=3, max_size=12), st.sampled_from([1.0, 0.8, 0.5]))
def test_the_forecast_names_exactly_what_truncation_drops(sizes: list[int], ratio: float) -> None:
    truncation = Truncation.parse("auto" if ratio == 1.0 else f"retention_ratio:{ratio}")
    engine = ContextEngine("gpt-realtime")
    session = FakeSession(responder=short)
    start(engine, session, truncation=truncation.to_realtime())
    limit = session.model.budget.history_limit
    for n, size in enumerate(sizes):
        say(engine, session, f"turn {n}" + " word" * size)
        forecast = engine.forecast()
        before = set(session.model.dropped_ids)
        respond(engine, session)
        assert set(forecast.drops) == set(session.model.dropped_ids) - before
        # Never over budget: after the response the history fits the limit.
        assert session.model.retained_tokens().total <= limit + 10  # + the reply "ok"
        usage = [r for r in engine.take_records() if isinstance(r, ResponseOutcome)]
        assert usage[-1].predicted == usage[-1].observed
        assert usage[-1].observed.cached_tokens <= usage[-1].observed.input_tokens


def test_calibration_learns_the_item_overhead_and_the_error_goes_to_zero() -> None:
    base = get_model_profile("gpt-realtime")
    truth = base.model_copy(update={"item_overhead_tokens": base.item_overhead_tokens + 3})
    engine = ContextEngine(base)
    session = FakeSession(profile=truth, responder=short)
    start(engine, session, instructions="Be brief.")
    errors = []
    for n in range(10):
        say(engine, session, f"question number {n}" + " please" * n)
        respond(engine, session)
        errors.append(engine.calibration.last_error)
    assert errors[0] > 0  # the first responses under-count by 3 per item
    assert errors[-3:] == [0, 0, 0]
    assert engine.calibration.item_overhead_tokens == truth.item_overhead_tokens
    assert engine.calibration.responses == 10


def test_without_calibration_the_error_stays() -> None:
    base = get_model_profile("gpt-realtime")
    truth = base.model_copy(update={"item_overhead_tokens": base.item_overhead_tokens + 3})
    engine = ContextEngine(base, calibrate=False)
    session = FakeSession(profile=truth, responder=short)
    start(engine, session)
    for n in range(6):
        say(engine, session, f"question {n}")
        respond(engine, session)
    # 2n + 1 items in the n-th request (0-based), 3 tokens each under-counted.
    assert engine.calibration.last_error == 3 * 11
    assert engine.calibration.item_overhead_tokens == base.item_overhead_tokens


def _weather(items: Sequence[Item]) -> Reply:
    last = items[-1]
    if isinstance(last, Message) and "weather" in last.text:
        return Reply.call("get_weather", {"city": "Oslo"})
    return Reply.speech("Sure, noted." if not isinstance(last, FunctionCallOutput) else "Sunny.")


def test_rollover_waits_for_a_safe_point_and_carries_the_call() -> None:
    clock = ManualClock()
    policy = RolloverPolicy(budget_tokens=300, carry="summary", summary_tokens=120)
    engine = ContextEngine("gpt-realtime", "azure", rollover=policy, clock=clock)
    session = FakeSession(provider="azure", clock=clock, responder=_weather)
    start(engine, session, instructions="Be brief.", truncation="auto")
    for n in range(26):  # 26 x 65 s and the answers: past 28 minutes
        clock.advance(65)
        say(engine, session, f"Turn {n}: book the flight number {n} and the hotel {n}.")
        respond(engine, session)
    assert 1800 - engine.session_age <= 120
    assert engine.rollover_due
    say(engine, session, "And what is the weather there?")
    respond(engine, session)  # the answer is a function call: not safe now
    assert engine.pending_calls
    assert not engine.rollover_due

    plan = engine.plan_rollover("expired")  # the server ending the session now: carried
    assert plan.session_update["session"]["instructions"] == "Be brief."
    assert plan.session_update["session"]["truncation"] == "auto"
    assert plan.seed_tokens <= policy.budget_tokens + 40  # + the carried call
    first, *rest = plan.seed
    assert isinstance(first, Message)
    assert first.role == "system"
    assert first.text
    assert isinstance(rest[-1], FunctionCall)
    assert rest[-1].call_id == engine.pending_calls[0]
    assert [e["type"] for e in plan.events] == ["session.update"] + ["conversation.item.create"] * (
        len(plan.seed)
    )

    call = rest[-1]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "clear"}'}
    exchange(engine, session, {"type": "conversation.item.create", "item": output})
    respond(engine, session)
    assert not engine.pending_calls
    assert engine.rollover_due


def test_a_new_session_is_seeded_and_nothing_is_stored_twice() -> None:
    clock = ManualClock()
    engine = ContextEngine(
        "gpt-realtime", "azure", rollover=RolloverPolicy(budget_tokens=400), clock=clock
    )
    first = FakeSession(provider="azure", clock=clock, responder=_weather, session_id="sess_a")
    start(engine, first, instructions="Be brief.")
    for n in range(6):
        say(engine, first, f"Turn {n}: remember the code K{n}.")
        respond(engine, first)
    stored_before = [r for r in engine.take_records() if isinstance(r, ItemStored)]
    plan = engine.plan_rollover()
    second = FakeSession(provider="azure", clock=clock, responder=_weather, session_id="sess_b")
    for event in second.opening():
        engine.feed(event)
    for event in plan.events:
        exchange(engine, second, event)
    engine.seeded(plan)
    records = engine.take_records()
    assert not [r for r in records if isinstance(r, ItemStored)], "seed copies are not new items"
    assert [type(r).__name__ for r in records][:2] == ["SessionEnded", "SessionStarted"]
    assert second.model.items[-1].text == "Sure, noted."
    say(engine, second, "Turn 6: and K6.")
    respond(engine, second)
    stored_after = [r for r in engine.take_records() if isinstance(r, ItemStored)]
    assert len(stored_before) == 12
    assert len(stored_after) == 2
    assert len(engine.history) == 14


def test_unknown_events_are_tolerated_and_transcripts_complete_items() -> None:
    engine = ContextEngine("gpt-realtime")
    session = FakeSession(responder=short)
    start(engine, session)
    assert engine.feed({"type": "response.something_new", "payload": [1, 2]}) == []
    assert engine.feed({"type": "rate_limits.updated", "rate_limits": [{"name": "tokens"}]}) == []
    audio = {
        "id": "u_audio",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    engine.feed({"type": "input_audio_buffer.speech_started", "item_id": "u_audio",
                 "audio_start_ms": 1000})  # fmt: skip
    engine.feed({"type": "input_audio_buffer.speech_stopped", "item_id": "u_audio",
                 "audio_end_ms": 3500})  # fmt: skip
    engine.feed({"type": "conversation.item.added", "item": audio})
    # 2.5 s of user audio at 100 ms a token, the item overhead (4) and the user-audio one (4).
    assert engine.budget.history_tokens == 25 + 4 + 4
    engine.feed(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u_audio",
            "content_index": 0,
            "transcript": "Book me a table.",
        }
    )
    changed = [r for r in engine.take_records() if isinstance(r, ItemChanged)]
    assert changed[-1].item == Message(
        role="user", text="Book me a table.", audio_ms=2500, id="u_audio"
    )
    assert engine.budget.history_tokens == 33  # the transcript is not in the server context


def test_the_engine_sets_the_truncation_it_wants() -> None:
    wanted = Truncation.parse("retention_ratio:0.8")
    engine = ContextEngine("gpt-realtime", truncation=wanted)
    session = FakeSession()
    (created,) = session.opening()
    (update,) = engine.feed(created)
    assert update == {
        "type": "session.update",
        "session": {"type": "realtime", "truncation": wanted.to_realtime()},
    }
    for event in session.receive(update):
        assert engine.feed(event) == []


def test_a_margin_beyond_the_session_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"rollover margin must be in \[0, 1800\)"):
        ContextEngine("gpt-realtime", "azure", rollover_margin_seconds=1800)


def test_a_compaction_is_sent_confirmed_and_recorded() -> None:
    summarizer = ScriptedSummarizer(["The user listed eight trips."])
    engine = ContextEngine(
        "gpt-realtime", compaction=RollingSummary(trigger=0.01, keep=2, summarizer=summarizer)
    )
    session = FakeSession(responder=short)
    start(engine, session)
    for n in range(8):
        say(engine, session, f"Trip {n}: " + "Oslo Lisbon Porto " * 10)
        respond(engine, session)
        if engine.compactions:
            break
    records = engine.take_records()
    (compacted,) = [r for r in records if isinstance(r, Compacted)]
    assert compacted.summary == "The user listed eight trips." == engine.summary
    first = session.model.items[0]
    assert isinstance(first, Message)
    assert (first.role, first.text) == ("system", "The user listed eight trips.")
    # The summary replaced everything before the last two turns (four items).
    stored = [r.key for r in records if isinstance(r, ItemStored)]
    assert compacted.keys == tuple(stored[: len(stored) - 4])
    assert [e.status for e in engine.history].count("compacted") == len(compacted.keys)
    assert compacted.tokens_after < compacted.tokens_before
    assert engine.budget.history_tokens == session.model.retained_tokens().total
    assert len(summarizer.calls) == 1


def test_sdk_event_models_are_read_and_anything_else_is_refused() -> None:
    from openai.types.realtime import ConversationItemAdded

    engine = ContextEngine("gpt-realtime")
    event = ConversationItemAdded.model_validate(
        {
            "type": "conversation.item.added",
            "event_id": "e1",
            "item": {"id": "u1", "type": "message", "role": "user",
                     "content": [{"type": "input_text", "text": "Hello!"}]},
        }
    )  # fmt: skip
    assert engine.feed(event) == []
    assert engine.budget.history_tokens == 6
    with pytest.raises(InputFormatError, match="an event must be a dict or an openai SDK event"):
        engine.feed("conversation.item.added")
