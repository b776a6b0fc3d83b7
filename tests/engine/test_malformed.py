"""Malformed, duplicated and reordered server events: the engine takes notes, never crashes,
and never loses a response's usage."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from context_manager import ContextEngine, ManualClock, ResponseOutcome

_IDS = st.sampled_from(["u1", "u2", "a1", "a2", "x", "", None, 7])
_JUNK = st.one_of(
    st.none(), st.integers(-5, 5), st.text(max_size=3), st.lists(st.none(), max_size=1)
)
_PART = st.fixed_dictionaries(
    {"type": st.sampled_from(["input_text", "input_audio", "output_audio", "output_text", "x"])},
    optional={"text": st.one_of(st.text(max_size=5), _JUNK), "transcript": _JUNK},
)
_ITEM = st.one_of(
    _JUNK,
    st.fixed_dictionaries(
        {
            "id": _IDS,
            "type": st.sampled_from(
                ["message", "function_call", "function_call_output", "mcp_call"]
            ),
        },
        optional={
            "role": st.sampled_from(["user", "assistant", "system", "bot"]),
            "content": st.one_of(st.lists(_PART, max_size=2), _JUNK),
            "call_id": st.sampled_from(["c1", "c2"]),
            "name": st.just("f"),
            "output": _JUNK,
        },
    ),
)
_USAGE = st.one_of(
    _JUNK,
    st.fixed_dictionaries(
        {},
        optional={
            "input_tokens": st.one_of(st.integers(0, 50), _JUNK),
            "output_tokens": st.integers(0, 50),
            "input_token_details": st.one_of(
                _JUNK,
                st.fixed_dictionaries(
                    {"text_tokens": st.integers(0, 40), "audio_tokens": st.integers(0, 40)}
                ),
            ),
        },
    ),
)
_EVENT = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("session.created"),
            "session": st.one_of(
                _JUNK,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "instructions": _JUNK,
                        "tools": _JUNK,
                        "truncation": st.one_of(
                            _JUNK,
                            st.sampled_from(
                                [
                                    "auto",
                                    "disabled",
                                    {"type": "retention_ratio"},
                                    {"type": "retention_ratio", "retention_ratio": 0.5},
                                ]
                            ),
                        ),
                        "audio": _JUNK,
                    },
                ),
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.just("session.updated"), "session": _JUNK}),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["conversation.item.added", "conversation.item.done", "conversation.item.created"]
            ),
            "item": _ITEM,
        },
        optional={"previous_item_id": _IDS},
    ),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"]
            ),
            "item_id": _IDS,
        },
        optional={"audio_start_ms": _JUNK, "audio_end_ms": st.integers(-100, 5000)},
    ),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "conversation.item.deleted",
                    "conversation.item.truncated",
                    "input_audio_buffer.committed",
                    "conversation.item.input_audio_transcription.completed",
                ]
            ),
            "item_id": _IDS,
        },
        optional={"audio_end_ms": _JUNK, "transcript": _JUNK},
    ),
    st.fixed_dictionaries({"type": st.just("response.created")}, optional={"response": _JUNK}),
    st.fixed_dictionaries(
        {
            "type": st.just("response.done"),
            "response": st.fixed_dictionaries(
                {"usage": _USAGE},
                optional={
                    "output": st.one_of(_JUNK, st.lists(_ITEM, max_size=2)),
                    "status": _JUNK,
                    "conversation_id": st.sampled_from([None, "conv"]),
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["error", "rate_limits.updated", "brand.new.event"])},
        optional={"error": _JUNK, "rate_limits": _JUNK},
    ),
)


@given(st.lists(_EVENT, max_size=40))
def test_any_event_stream_is_followed_without_an_exception(events: list[dict[str, Any]]) -> None:
    clock = ManualClock()
    engine = ContextEngine("gpt-realtime", "azure", clock=clock)
    for event in events:
        clock.advance(1.0)
        out = engine.feed(event)
        assert isinstance(out, list)
        engine.budget, engine.forecast(), engine.calibration, engine.rollover_due
    outcomes = [r for r in engine.take_records() if isinstance(r, ResponseOutcome)]
    # Every response.done is priced and recorded, however odd the stream around it.
    assert len(outcomes) == sum(e["type"] == "response.done" for e in events)
    assert abs(engine.total_cost_usd - sum(o.observed_cost.total for o in outcomes)) < 1e-12


def test_the_examples_from_the_fault_run_are_notes() -> None:
    engine = ContextEngine("gpt-realtime")
    engine.feed({"type": "session.created", "session": {"truncation": {"type": "retention_ratio"}}})
    engine.feed({"type": "session.created", "session": "x"})
    engine.feed({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 100})
    engine.feed(
        {
            "type": "conversation.item.added",
            "item": {
                "id": "u1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio"}],
            },
        }
    )
    engine.feed(
        {
            "type": "conversation.item.added",
            "item": {
                "id": "u1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        }
    )
    assert any("truncation" in n or "session.created" in n for n in engine.notes)
    # The conversation text never reaches a note.
    assert not any(n == "hi" or "'hi'" in n for n in engine.notes)


def test_an_overflow_the_server_did_not_have_keeps_the_response() -> None:
    engine = ContextEngine("gpt-realtime")
    engine.feed({"type": "session.created", "session": {"truncation": "disabled"}})
    huge = "word " * 40_000  # the model says this overflows; the server answered anyway
    engine.feed(
        {
            "type": "conversation.item.added",
            "item": {
                "id": "u1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": huge}],
            },
        }
    )
    engine.feed({"type": "response.created", "response": {}})
    engine.feed(
        {
            "type": "response.done",
            "response": {
                "status": "completed",
                "usage": {
                    "input_tokens": 40_010,
                    "output_tokens": 3,
                    "input_token_details": {"text_tokens": 40_010},
                    "output_token_details": {"text_tokens": 3},
                },
                "output": [
                    {
                        "id": "a1",
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "ok"}],
                    }
                ],
            },
        }
    )
    (outcome,) = [r for r in engine.take_records() if isinstance(r, ResponseOutcome)]
    assert outcome.observed.input_tokens == 40_010
    assert not outcome.compared
    assert [i.id for i in engine.conversation()][-1:] != []
    assert engine.total_cost_usd > 0
    assert any("overflow" in n for n in engine.notes)
