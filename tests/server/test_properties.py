"""Invariants of the server model, on random conversations (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from context_manager import Message, ProviderProfile
from context_manager.server import ManualClock, ServerModel, SessionConfig, Truncation

from ..strategies import TINY_PROFILE

NO_EXPIRY = ProviderProfile(name="no-expiry", max_session_seconds=1e9)

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"]

# A script: each step adds a user item of `size` tokens (text or audio), waits `pause` seconds,
# then creates a response with assistant output of `reply` tokens (or none).
steps = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=400),  # size
        st.booleans(),  # audio?
        st.integers(min_value=0, max_value=120),  # reply
        st.sampled_from([0.0, 5.0, 400.0]),  # pause (400 s > the 300 s TTL)
    ),
    min_size=1,
    max_size=25,
)
truncations = st.sampled_from(
    ["auto", "disabled", "retention_ratio:0.5", "retention_ratio:0.8", "retention_ratio:0.8:300"]
)


def run(script, truncation: str, instructions_words: int = 60):
    clock = ManualClock()
    s = ServerModel(
        TINY_PROFILE,
        NO_EXPIRY,
        clock=clock,
        config=SessionConfig(
            instructions="word" + " word" * (instructions_words - 1),
            truncation=Truncation.parse(truncation),
        ),
    )
    observed = []
    for n, (size, audio, reply, pause) in enumerate(script):
        word = WORDS[n % len(WORDS)]
        if audio:
            s.create_item(Message(role="user", text=word, audio_ms=size * 100, id=f"u{n}"))
        else:
            s.create_item(Message(role="user", text=word + f" {word}" * (size - 1), id=f"u{n}"))
        clock.advance(pause)
        output = (
            [Message(role="assistant", text=f"{word} " * reply, audio_ms=reply * 50)]
            if reply
            else []
        )
        result = s.create_response(output)
        observed.append(
            (
                result,
                s.retained_tokens().total,
                s.budget.history_limit,
                list(s.dropped_ids),
                [i.id for i in s.items],
            )
        )
    return observed


@given(steps, truncations)
def test_invariants(script, truncation: str) -> None:
    block, minimum = TINY_PROFILE.cache.block_tokens, TINY_PROFILE.cache.min_prefix_tokens
    dropped_before: set[str] = set()
    for result, _retained, limit, dropped, ids in run(script, truncation):
        usage = result.usage
        # Cached tokens are a subset of input tokens, modality by modality.
        assert usage.cached_tokens <= usage.input_tokens
        assert all(c <= i for c, i in zip(usage.cached, usage.input, strict=True))
        # Block rounding and the minimum prefix.
        assert usage.cached_tokens % block == 0
        assert usage.cached_tokens == 0 or usage.cached_tokens >= minimum
        if result.ok:
            # Within the limit right after truncation (before the output joined the history).
            in_request = usage.input_tokens - 60
            assert in_request <= limit
        # The retained window only moves forward: dropped items stay dropped, and the retained
        # items are always the newest ones.
        assert dropped_before <= set(dropped)
        dropped_before = set(dropped)
        assert not set(ids) & set(dropped)
        assert result.cost.total >= 0


@given(steps, st.sampled_from([(0.5, 0.8), (0.5, 1.0), (0.8, 1.0), (0.3, 0.9)]))
def test_a_lower_retention_ratio_never_truncates_more_often(script, ratios) -> None:
    low, high = ratios

    def events(ratio: float) -> int:
        spec = "auto" if ratio == 1.0 else f"retention_ratio:{ratio}"
        return sum(1 for result, *_ in run(script, spec) if result.dropped_items)

    assert events(low) <= events(high)


# ------------------------------------------------------------------ the resumed cache walk

# Operations between responses: add a user item (text or audio), insert one at the root, delete
# or truncate an earlier item, change the instructions, wait; then respond (audio or text).
operations = st.lists(
    st.tuples(
        st.sampled_from(["user", "audio", "root", "delete", "truncate", "instructions"]),
        st.integers(min_value=1, max_value=300),
        st.sampled_from([0.0, 5.0, 400.0]),
        st.sampled_from(["audio", "text", "none", "two"]),
    ),
    min_size=1,
    max_size=30,
)


@given(operations, truncations, st.sampled_from(["latest", "all", "none"]))
def test_resuming_the_cache_walk_gives_the_full_walks_figures(ops, truncation, in_context) -> None:
    """Every response's usage is the same with the walk resumed after the unchanged prefix
    (the live engine's fast path) as with every request walked from the root."""
    profile = TINY_PROFILE.model_copy(update={"assistant_audio_in_context": in_context})

    def session(resume: bool) -> tuple[ServerModel, ManualClock]:
        clock = ManualClock()
        s = ServerModel(profile, NO_EXPIRY, clock=clock,
                        config=SessionConfig(instructions="word " * 40,
                                             truncation=Truncation.parse(truncation)))  # fmt: skip
        if not resume:
            s._resume_from = lambda *_: []  # type: ignore[method-assign]
        return s, clock

    fast, fast_clock = session(True)
    full, full_clock = session(False)
    for n, (op, size, pause, reply) in enumerate(ops):
        for s, clock in ((fast, fast_clock), (full, full_clock)):
            ids = [i.id for i in s.items]
            word = WORDS[n % len(WORDS)]
            if op == "user" or (op in ("delete", "truncate") and len(ids) < 3):
                s.create_item(Message(role="user", text=f"{word} " * size, id=f"u{n}"))
            elif op == "audio":
                s.create_item(Message(role="user", text=word, audio_ms=size * 100, id=f"u{n}"))
            elif op == "root":
                s.create_item(Message(role="system", text=f"{word} " * size, id=f"r{n}"), "root")
            elif op == "delete":
                s.delete_item(ids[size % (len(ids) - 1)])
            elif op == "truncate":
                audio = [i for i in s.items if i.role == "assistant" and i.audio_ms]
                if audio:
                    s.truncate_item(audio[0].id, audio[0].audio_ms // 2)
            else:
                s.update_session(instructions=f"{word} " * (size % 200 + 1))
            clock.advance(pause)
        output = {
            "audio": [Message(role="assistant", text=f"{word} " * 5, audio_ms=size * 20)],
            "text": [Message(role="assistant", text=f"{word} " * 5)],
            "none": [],
            "two": [Message(role="assistant", text="a b", audio_ms=700),
                    Message(role="assistant", text="c d", audio_ms=900)],
        }[reply]  # fmt: skip
        got, want = fast.create_response(output), full.create_response(output)
        assert got.usage == want.usage, n
        assert got.dropped_items == want.dropped_items
