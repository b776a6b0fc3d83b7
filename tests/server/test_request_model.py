"""One request model for every response: overrides, out of band, custom input, reasoning
models' preamble (hand-checked values on gpt-realtime and gpt-realtime-2.1)."""

from __future__ import annotations

import pytest

from context_manager import ManualClock, Message, ServerModel, SessionConfig, get_model_profile
from context_manager.errors import ServerModelError
from context_manager.server.request import ItemRef, ResponseParams
from context_manager.tokens import TokenCounter

GPT = get_model_profile("gpt-realtime")
COUNT = TokenCounter(GPT)
LONG = "You are a patient, precise travel agent for a small airline. " * 12


def session() -> ServerModel:
    server = ServerModel(GPT, clock=ManualClock(), config=SessionConfig(instructions=LONG))
    server.create_item(Message(role="user", text="I want to fly to Lisbon.", id="u1"))
    server.create_response([Message(role="assistant", text="Which day?", id="a1")])
    server.create_item(Message(role="user", text="Next Tuesday.", id="u2"))
    return server


def test_a_response_with_its_own_instructions_reads_them_once() -> None:
    plain, custom = session(), session()
    own = "Answer in French."
    a = plain.create_response([Message(role="assistant", text="Tuesday it is.")])
    b = custom.create_response(
        [Message(role="assistant", text="Mardi, c'est noté.")], ResponseParams(instructions=own)
    )
    assert b.usage.input.text == a.usage.input.text - COUNT.text(LONG) + COUNT.text(own)
    assert b.index == a.index == 1
    assert custom.config.instructions == LONG  # for that request only
    assert [i.id for i in custom.items][:3] == ["u1", "a1", "u2"]  # the output joined
    assert len(custom.items) == 4
    assert b.usage.cached_tokens == 0  # a new head: a new cached prefix


def test_out_of_band_outputs_join_nothing_and_share_the_cache() -> None:
    server = session()
    before = [i.id for i in server.items]
    oob = server.create_response(
        [Message(role="assistant", text="calm")],
        ResponseParams(in_band=False, input=(ItemRef("u1"), ItemRef("a1"))),
    )
    assert oob.index == -1 and server.responses_created == 1
    assert [i.id for i in server.items] == before
    # Instructions + u1 + a1 were the first request's prefix (and its output): cached.
    head = COUNT.text(LONG) + COUNT.item(server.items[0]).full.total
    assert oob.usage.input_tokens == head + COUNT.item(server.items[1]).full.total
    assert oob.usage.cached_tokens == oob.usage.input_tokens // 64 * 64 > 0


def test_out_of_band_without_input_holds_the_whole_conversation() -> None:
    a, b = session(), session()
    in_band = a.create_response([Message(role="assistant", text="x")])
    oob = b.create_response([Message(role="assistant", text="x")], ResponseParams(in_band=False))
    assert oob.usage.input == in_band.usage.input


def test_an_empty_input_holds_only_the_instructions() -> None:
    result = session().create_response([], ResponseParams(in_band=False, input=()))
    assert result.usage.input_tokens == COUNT.text(LONG)


def test_inline_items_are_new_and_out_of_order_references_lose_the_cache() -> None:
    server = session()
    note = Message(role="user", text="Summarize the call.")
    result = server.create_response(
        [], ResponseParams(in_band=False, input=(ItemRef("a1"), ItemRef("u1"), note))
    )
    items = COUNT.items([server.items[1], server.items[0], note]).total
    assert result.usage.input_tokens == COUNT.text(LONG) + items
    # The cached prefix stops where the order leaves the conversation's: the instructions.
    assert result.usage.cached_tokens == COUNT.text(LONG) // 64 * 64


def test_a_reference_to_an_item_not_held_is_refused() -> None:
    with pytest.raises(ServerModelError) as caught:
        session().create_response([], ResponseParams(in_band=False, input=(ItemRef("zz"),)))
    assert caught.value.code == "item_not_found"
    assert caught.value.param == "response.input[0].id"


def test_an_in_band_response_over_its_own_input_still_joins_the_conversation() -> None:
    server = session()
    result = server.create_response(
        [Message(role="assistant", text="Done.", id="a2")],
        ResponseParams(input=(ItemRef("u2"),)),
    )
    assert result.index == 1
    assert [i.id for i in server.items] == ["u1", "a1", "u2", "a2"]
    assert result.usage.input_tokens == COUNT.text(LONG) + COUNT.item(server.items[2]).full.total


def test_reads_a_response_create_leniently() -> None:
    params, notes = ResponseParams.from_wire(
        {
            "conversation": "none",
            "instructions": "Transcribe.",
            "tools": "nope",
            "input": [{"type": "item_reference", "id": "u1"}, 7,
                      {"type": "message", "role": "user",
                       "content": [{"type": "input_text", "text": "hi"}]}],
            "metadata": {"purpose": "transcript"},
        }
    )  # fmt: skip
    assert not params.in_band and params.instructions == "Transcribe." and params.tools is None
    assert params.input is not None and params.input[0] == ItemRef("u1")
    assert isinstance(params.input[1], Message) and params.input[1].text == "hi"
    assert params.metadata == {"purpose": "transcript"}
    assert notes == [
        "response.create: tools unreadable, the session's used",
        "response.create: input[1] unreadable, left out",
    ]


def test_the_reasoning_preamble_and_reasoning_tokens() -> None:
    """gpt-realtime-2.1: 288 preamble tokens with tools, 0 without; 17 reasoning tokens
    billed as output text on every response."""
    profile = get_model_profile("gpt-realtime-2.1")
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    counter = TokenCounter(profile)
    for tools, preamble in (((), 0), ((tool,), 288)):
        server = ServerModel(profile, clock=ManualClock(),
                             config=SessionConfig(instructions="Be brief.", tools=tools))  # fmt: skip
        assert server.budget.preamble_tokens == preamble
        assert server.history_limit == 96000 - counter.text("Be brief.") - counter.tools(tools) - (
            preamble
        )
        server.create_item(Message(role="user", text="Weather in London?"))
        result = server.create_response([Message(role="assistant", text="Foggy.")])
        expected = (
            preamble + counter.text("Be brief.") + counter.tools(tools)
            + counter.item(server.items[0]).full.total
        )  # fmt: skip
        assert result.usage.input_tokens == expected
        assert result.usage.output.text == counter.item(server.items[1]).output.text + 17
