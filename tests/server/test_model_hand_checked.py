"""ServerModel on the `tiny` profile, every figure worked out by hand in the comments.

tiny: window 1,000, max output 200, input limit 800; no item overhead; cache blocks of 10,
minimum prefix 20, TTL 300 s, per session; prices per 1M: text 4 / 0.4 cached / 16 out,
audio 32 / 0.4 / 64. Instructions of 100 tokens and no tools give L = 800 - 100 = 700.
"""

from __future__ import annotations

import itertools

import pytest

from context_manager import ConfigurationError, Message, ServerModelError, SessionExpiredError
from context_manager.server import ManualClock, ServerModel, SessionConfig, Truncation
from context_manager.tokens import ModalityTokens

from ..strategies import TINY_PROFILE

INSTRUCTIONS = "word" + " word" * 99  # 100 tokens


def words(n: int, word: str = "word") -> str:
    """A text of exactly n o200k_base tokens (checked in `test_texts_have_the_stated_sizes`)."""
    return word + f" {word}" * (n - 1)


_REPLIES = itertools.cycle(["yes", "sure", "okay", "fine", "right", "good"])


def user(n: int, id: str | None = None) -> Message:
    return Message(role="user", text=words(n), id=id)


def assistant(n: int) -> Message:
    # Each reply has its own words: identical texts would (rightly) share cached tokens.
    return Message(role="assistant", text=words(n, next(_REPLIES)))


def test_texts_have_the_stated_sizes() -> None:
    from context_manager import TokenCounter

    counter = TokenCounter(TINY_PROFILE)
    for word in ("word", "yes", "sure", "okay", "fine", "right", "good"):
        for n in (1, 3, 7, 50, 100, 250, 300, 701):
            assert counter.text(words(n, word)) == n


def server(truncation: str = "auto", clock: ManualClock | None = None) -> ServerModel:
    return ServerModel(
        TINY_PROFILE,
        clock=clock or ManualClock(),
        config=SessionConfig(instructions=INSTRUCTIONS, truncation=Truncation.parse(truncation)),
    )


def usd(text_in=0, text_cached=0, text_out=0, audio_in=0, audio_cached=0, audio_out=0) -> float:
    """Cost from uncached/cached/output counts at tiny's prices."""
    return (
        text_in * 4
        + text_cached * 0.4
        + text_out * 16
        + audio_in * 32
        + audio_cached * 0.4
        + audio_out * 64
    ) / 1e6


def three_turns(s: ServerModel):
    s.create_item(user(300, "u1"))
    r0 = s.create_response([assistant(100)])
    s.create_item(user(250, "u2"))
    r1 = s.create_response([assistant(100)])
    s.create_item(user(200, "u3"))
    r2 = s.create_response([assistant(50)])
    return r0, r1, r2


def test_identical_content_shares_cached_tokens() -> None:
    # The cache matches tokens, not item ids: a reply identical to an earlier one, in the same
    # place after the instructions, hits the earlier prefix.
    s = server()
    same = Message(role="assistant", text=words(100, "same"))
    s.create_item(same)
    s.create_response()
    s.delete_item(s.items[0].id)
    s.create_item(Message(role="assistant", text=words(100, "same")))
    assert s.create_response().usage.cached_tokens == 200


def test_auto() -> None:
    r0, r1, r2 = three_turns(server("auto"))
    # R0: input 100 + 300 = 400, nothing cached yet; output 100.
    assert (r0.usage.input_tokens, r0.usage.cached_tokens, r0.usage.output_tokens) == (400, 0, 100)
    assert r0.cost.total == pytest.approx(usd(text_in=400, text_out=100))
    # R1: history 300 + 100 + 250 = 650 <= 700; input 750; the cached prefix is R0's input and
    # output: 100 + 300 + 100 = 500 (a multiple of 10).
    assert (r1.usage.input_tokens, r1.usage.cached_tokens, r1.dropped_items) == (750, 500, ())
    assert r1.cost.total == pytest.approx(usd(text_in=250, text_cached=500, text_out=100))
    # R2: history 650 + 100 + 200 = 950 > 700: auto drops u1 (300) -> 650 <= 700.
    # Input 100 + 650 = 750; the prefix now breaks after the instructions: 100 cached.
    assert r2.dropped_items == ("u1",)
    assert (r2.usage.input_tokens, r2.usage.cached_tokens, r2.retained_items) == (750, 100, 4)
    assert r2.cost.total == pytest.approx(usd(text_in=650, text_cached=100, text_out=50))


def test_retention_ratio() -> None:
    r0, r1, r2 = three_turns(server("retention_ratio:0.5"))
    assert (r1.usage.input_tokens, r1.usage.cached_tokens) == (750, 500)
    # R2: 950 > 700, target floor(0.5 * 700) = 350: drop u1 (650), a1 (550), u2 (300) <= 350.
    assert len(r2.dropped_items) == 3
    assert r2.dropped_items[0] == "u1"
    assert (r2.usage.input_tokens, r2.usage.cached_tokens, r2.retained_items) == (400, 100, 2)


def test_retention_ratio_with_post_instructions() -> None:
    r0, r1, r2 = three_turns(server("retention_ratio:0.8:500"))
    # L = 500. R1: 650 > 500, target 400: drop u1 -> 350. Input 100 + 350 = 450, cached 100.
    assert r1.dropped_items == ("u1",)
    assert (r1.usage.input_tokens, r1.usage.cached_tokens) == (450, 100)
    # R2: 350 + 100 + 200 = 650 > 500: drop a1 (550), u2 (300) <= 400. Input 400, cached 100.
    assert len(r2.dropped_items) == 2
    assert (r2.usage.input_tokens, r2.usage.cached_tokens) == (400, 100)


def test_disabled_overflows_and_the_conversation_goes_on() -> None:
    s = server("disabled")
    r0, r1, r2 = three_turns(s)
    assert r1.ok
    # R2: 950 > 700 with truncation disabled: no response, no output, zero usage.
    assert not r2.ok
    assert r2.error["error"]["code"] == "context_length_exceeded"
    assert "used=950, limit=700" in r2.error["error"]["message"]
    assert (r2.usage.input_tokens, r2.cost.total, r2.output_item_ids) == (0, 0.0, ())
    assert len(s.items) == 5  # u1, a1, u2, a2, u3: nothing dropped, nothing added
    # The client acts (deletes the first turn) and the next response fits: 650 <= 700.
    s.delete_item("u1")
    r3 = s.create_response([assistant(10)])
    assert r3.ok
    assert r3.usage.input_tokens == 100 + 650


def test_newest_item_alone_over_the_limit_overflows_in_auto() -> None:
    s = server("auto")
    s.create_item(user(701))
    result = s.create_response()
    assert not result.ok
    assert "newest item alone (701 tokens)" in result.error["error"]["message"]


def test_instructions_cache_after_a_truncation_and_blocks_round_down() -> None:
    clock = ManualClock()
    s = ServerModel(TINY_PROFILE, clock=clock, config=SessionConfig(instructions=words(25)))
    s.create_item(user(12))
    s.create_response([assistant(3)])
    s.create_item(user(1))
    r1 = s.create_response()
    # Prefix 25 + 12 + 3 = 40; request 41: cached 40.
    assert (r1.usage.input_tokens, r1.usage.cached_tokens) == (41, 40)
    s2 = ServerModel(TINY_PROFILE, clock=clock, config=SessionConfig(instructions=words(15)))
    s2.create_item(user(2))
    s2.create_response()
    s2.create_item(user(1))
    r = s2.create_response()
    # Prefix 15 + 2 = 17 matches, below the 20-token minimum: nothing cached.
    assert (r.usage.input_tokens, r.usage.cached_tokens) == (18, 0)


def test_ttl_expiry() -> None:
    clock = ManualClock()
    s = server("auto", clock)
    s.create_item(user(50))
    s.create_response([assistant(10)])
    clock.advance(299.0)
    s.create_item(user(5))
    r1 = s.create_response()
    # 299 s < 300 s TTL: the prefix 100 + 50 + 10 = 160 is live.
    assert r1.usage.cached_tokens == 160
    clock.advance(300.0)
    s.create_item(user(5))
    r2 = s.create_response()
    # Unused for 300 s: expired. Nothing is cached.
    assert (r2.usage.input_tokens, r2.usage.cached_tokens) == (170, 0)


def test_instructions_change_mid_session_breaks_the_prefix_at_the_start() -> None:
    s = server("auto")
    s.create_item(user(50))
    s.create_response([assistant(10)])
    s.update_session(instructions=words(100) + " please")
    s.create_item(user(5))
    r = s.create_response()
    assert r.usage.cached_tokens == 0
    assert r.usage.input_tokens == 101 + 50 + 10 + 5


def test_item_inserted_at_root() -> None:
    s = server("auto")
    s.create_item(user(50, "u1"))
    s.create_response([assistant(10)])
    s.create_item(Message(role="system", text=words(30), id="summary"), previous_item_id="root")
    r = s.create_response()
    # The conversation now starts with the summary: the prefix breaks after the instructions.
    assert [i.id for i in s.items][:2] == ["summary", "u1"]
    assert (r.usage.input_tokens, r.usage.cached_tokens) == (100 + 30 + 50 + 10, 100)


def test_insert_after_an_item_and_errors() -> None:
    s = server()
    s.create_item(user(5, "a"))
    s.create_item(user(5, "c"))
    s.create_item(user(5, "b"), previous_item_id="a")
    assert [i.id for i in s.items] == ["a", "b", "c"]
    with pytest.raises(ServerModelError, match="'nope' not found") as info:
        s.create_item(user(5, "d"), previous_item_id="nope")
    assert info.value.event["error"]["code"] == "item_not_found"
    assert [i.id for i in s.items] == ["a", "b", "c"]  # not added
    with pytest.raises(ServerModelError, match="already exists"):
        s.create_item(user(5, "a"))
    with pytest.raises(ServerModelError, match="not found"):
        s.delete_item("zzz")


def test_audio_items_and_truncate() -> None:
    s = server()
    s.create_item(Message(role="user", text="hello there", audio_ms=3050))
    r0 = s.create_response([Message(role="assistant", text=words(7), audio_ms=2010)])
    # tiny: ceil rounding, no transcripts in context, all assistant audio kept.
    # User audio ceil(3050 / 100) = 31; output audio ceil(2010 / 50) = 41, output text 7.
    assert r0.usage.input == ModalityTokens(text=100, audio=31)
    assert r0.usage.output == ModalityTokens(text=7, audio=41)
    assert r0.cost.total == pytest.approx(usd(text_in=100, audio_in=31, text_out=7, audio_out=41))
    a1 = r0.output_item_ids[0]
    s.truncate_item(a1, 1000)  # the user heard one second: audio 1000 / 50 = 20, transcript gone
    assert s.items[1] == Message(role="assistant", text="", audio_ms=1000, id=a1)
    s.create_item(user(1))
    r1 = s.create_response()
    assert r1.usage.input == ModalityTokens(text=101, audio=31 + 20)
    # The truncated item changed: the prefix breaks there (100 + 31 = 131 -> 130).
    assert r1.usage.cached_tokens == 130
    with pytest.raises(ServerModelError, match="already shorter than 5000ms"):
        s.truncate_item(a1, 5000)
    with pytest.raises(ServerModelError, match="Only model output audio"):
        s.truncate_item(s.items[0].id, 10)


def test_session_expires_at_the_provider_maximum() -> None:
    clock = ManualClock()
    s = ServerModel(TINY_PROFILE, "azure", clock=clock)
    s.create_item(user(5))
    clock.advance(1799.9)
    assert s.create_response().ok
    clock.advance(0.1)
    with pytest.raises(SessionExpiredError) as info:
        s.create_response()
    assert info.value.event["error"] == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 30 minutes.",
        "param": None,
    }


def test_invalid_truncation_settings() -> None:
    for bad in (
        "retention_ratio:0",
        "retention_ratio:1.5",
        "retention_ratio:x",
        "sometimes",
        "auto:1",
    ):
        with pytest.raises(ConfigurationError, match="truncation|retention_ratio"):
            Truncation.parse(bad)
    with pytest.raises(ConfigurationError, match="between 1 and .* = 800 for tiny, got 801"):
        server("retention_ratio:0.8:801")


@pytest.mark.parametrize(("scope", "cached"), [("organization", 100), ("session", 0)])
def test_cache_scope_across_sessions(scope: str, cached: int) -> None:
    from context_manager.server import PromptCache

    profile = TINY_PROFILE.model_copy(
        update={"cache": TINY_PROFILE.cache.model_copy(update={"scope": scope})}
    )
    clock = ManualClock()
    shared = PromptCache(profile.cache)
    config = SessionConfig(instructions=INSTRUCTIONS)
    first = ServerModel(profile, clock=clock, config=config, cache=shared, session_id="a")
    first.create_item(user(30))
    first.create_response()
    clock.advance(60)
    second = ServerModel(profile, clock=clock, config=config, cache=shared, session_id="b")
    second.create_item(user(5))
    # Same instructions: under "organization" the new session's first request hits them.
    assert second.create_response().usage.cached_tokens == cached


def test_max_output_tokens_is_checked() -> None:
    s = server()
    s.update_session(max_output_tokens=200)
    assert s.config.max_output_tokens == 200
    with pytest.raises(ConfigurationError, match="between 1 and 200 for tiny, got 201"):
        s.update_session(max_output_tokens=201)
