"""The running request of `Retained` against the long way: rebuilt and summed item by item."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_manager import Message
from context_manager.errors import ContextOverflowError, InputFormatError
from context_manager.server import Usage, plan_truncation
from context_manager.server.retained import Retained, entry_of
from context_manager.server.truncation import plan_truncation_at
from context_manager.tokens import ModalityTokens, TokenCounter

from ..strategies import TINY_PROFILE

MODES = ["all", "latest", "none"]


def counter(mode: str) -> TokenCounter:
    return TokenCounter(TINY_PROFILE.model_copy(update={"assistant_audio_in_context": mode}))


def the_long_way(retained: Retained, count: TokenCounter) -> tuple[list[Any], ModalityTokens]:
    """Each item's segment under the audio rule, found by scanning; and their sum."""
    entries = retained.entries
    latest = max((n for n, e in enumerate(entries) if e.tokens.is_assistant_audio), default=-1)
    segments = []
    for n, e in enumerate(entries):
        keep = count.keeps_audio(is_latest_assistant=n == latest)
        segments.append(e.kept if keep or not e.tokens.is_assistant_audio else e.demoted)
    return segments, sum((s.tokens for s in segments), ModalityTokens())


items = st.builds(
    lambda role, words, audio: Message(
        role=role, text=" ".join(["word"] * words), audio_ms=audio * 100 if audio else None
    ),
    st.sampled_from(["user", "assistant"]),
    st.integers(0, 30),
    st.integers(0, 40),
)
operations = st.lists(
    st.tuples(
        st.sampled_from(["append", "insert", "remove", "replace", "drop"]),
        items,
        st.integers(0, 50),
    ),
    max_size=40,
)


@given(st.sampled_from(MODES), operations)
def test_the_running_request_is_the_one_rebuilt(mode: str, ops: list[Any]) -> None:
    count = counter(mode)
    retained = Retained(count)
    for n, (op, item, at) in enumerate(ops):
        entry = entry_of(replace(item, id=f"i{n}"), count)
        size = len(retained)
        if op == "append" or not size:
            retained.insert(entry)
        elif op == "insert":
            retained.insert(entry, at % (size + 1))
        elif op == "remove":
            retained.remove(at % size)
        elif op == "replace":
            retained.replace(at % size, entry)
        else:
            retained.drop(at % size + 1)
        segments, total = the_long_way(retained, count)
        assert retained.segments([]) == segments
        assert retained.tokens() == total
        assert retained.items == [e.item for e in retained.entries]
        assert retained.ids == {e.item.id for e in retained.entries}
        sizes = retained.sizes([7, 3])
        assert [sizes[k] for k in range(len(sizes))] == [s.total for s in segments] + [7, 3]
        copy = retained.copy()
        assert copy.segments([]) == segments and copy.tokens() == total


def test_a_hand_checked_request() -> None:
    count = counter("latest")
    retained = Retained(count)
    for item in (
        Message(role="user", text="Hi.", id="u1"),
        Message(role="assistant", text="Hello!", audio_ms=900, id="a1"),
        Message(role="assistant", text="Bye!", audio_ms=500, id="a2"),
    ):
        retained.insert(entry_of(item, count))
    overhead = TINY_PROFILE.item_overhead_tokens
    head = [entry_of(Message(role="system", text="x", id="h"), count).kept]
    # a1 counts as its transcript (2 tokens); a2, the latest, keeps its 10 audio tokens.
    assert [s.tokens for s in retained.segments(head)[1:]] == [
        ModalityTokens(overhead + 2),
        ModalityTokens(overhead + 2),
        ModalityTokens(count.item(retained.items[2]).text, 10),
    ]
    assert retained.drop(2) == ("u1", "a1")
    assert retained.tokens() == retained.entries[0].kept.tokens


@given(st.lists(st.integers(0, 500), max_size=12), st.integers(-5, 900),
       st.sampled_from([1.0, 0.8, 0.5]), st.booleans())  # fmt: skip
def test_truncation_from_a_running_total_is_the_same_rule(
    tokens: list[int], limit: int, ratio: float, disabled: bool
) -> None:
    def plan(f: Any, *args: Any) -> Any:
        try:
            return f(*args, limit=limit, ratio=ratio, disabled=disabled)
        except (ContextOverflowError, IndexError) as exc:
            return type(exc), str(exc)

    assert plan(plan_truncation, tokens) == plan(plan_truncation_at, sum(tokens), tokens)


def _usage_the_long_way(data: Any) -> Usage:
    """`Usage.from_dict` as it was written before its fast path."""
    from context_manager.server.usage import _count, _object

    if not isinstance(data, dict):
        raise InputFormatError("usage must be an object", source="response.done")
    details = _object(data, "input_token_details")
    cached = _object(details, "cached_tokens_details")
    out = _object(data, "output_token_details")
    inputs = [_count(details, k) for k in ("text_tokens", "audio_tokens", "image_tokens")]
    if not details and (total := _count(data, "input_tokens")):
        inputs = [total, 0, 0]
    cached_tokens = [_count(cached, k) for k in ("text_tokens", "audio_tokens", "image_tokens")]
    if not cached and (total := _count(details, "cached_tokens")):
        cached_tokens = [total, 0, 0]
    outputs = [_count(out, "text_tokens"), _count(out, "audio_tokens")]
    if not out and (total := _count(data, "output_tokens")):
        outputs = [total, 0]
    return Usage(
        input=ModalityTokens(*inputs),
        cached=ModalityTokens(*cached_tokens),
        output=ModalityTokens(outputs[0], outputs[1], 0),
    )


counts = st.one_of(st.integers(0, 99), st.just(-1), st.none(), st.booleans(), st.just(1.5))
modalities = st.dictionaries(st.sampled_from(["text_tokens", "audio_tokens", "image_tokens"]),
                             counts)  # fmt: skip
usage = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": counts,
        "output_tokens": counts,
        "input_token_details": st.one_of(
            st.none(),
            st.just("x"),
            modalities.flatmap(
                lambda m: st.fixed_dictionaries(
                    {}, optional={"cached_tokens": counts, "cached_tokens_details": modalities}
                ).map(lambda d: {**m, **d})
            ),
        ),
        "output_token_details": st.one_of(st.none(), modalities),
    },
)


@given(usage)
def test_usage_reads_as_the_long_way(data: dict[str, Any]) -> None:
    def read(f: Any) -> Any:
        try:
            return f(data)
        except InputFormatError as exc:
            return str(exc)

    assert read(Usage.from_dict) == read(_usage_the_long_way)


def test_usage_hand_checked() -> None:
    data = {"input_tokens": 132, "input_token_details": {"text_tokens": 119, "audio_tokens": 13,
            "cached_tokens": 64, "cached_tokens_details": {"text_tokens": 64}},
            "output_token_details": {"text_tokens": 30, "audio_tokens": 91}}  # fmt: skip
    assert Usage.from_dict(data) == Usage(input=ModalityTokens(119, 13), cached=ModalityTokens(64),
                                          output=ModalityTokens(30, 91))  # fmt: skip
    assert Usage.from_dict({"input_tokens": 5, "output_tokens": 7}).output == ModalityTokens(7)
    with pytest.raises(InputFormatError, match="audio_tokens"):
        Usage.from_dict({"output_token_details": {"text_tokens": 1, "audio_tokens": True}})


def test_an_item_refused_for_an_unknown_place_is_counted_as_it_always_was() -> None:
    # Kept exactly while only speed changes: the refused item's id stays taken and its tokens
    # stay in the running sums, while truncation sums the items held.
    from context_manager.errors import ServerModelError
    from context_manager.server import ServerModel, SessionConfig, Truncation

    s = ServerModel(TINY_PROFILE, config=SessionConfig(truncation=Truncation.parse("auto")))
    s.create_item(Message(role="user", text="a", id="u1"))
    s.create_item(Message(role="user", text="b", id="u2"))
    s.delete_item("u1")
    with pytest.raises(ServerModelError, match="not found"):
        s.create_item(Message(role="user", text=" word" * 900, id="u3"), previous_item_id="u1")
    with pytest.raises(ServerModelError, match="already exists"):
        s.create_item(Message(role="user", text="c", id="u3"))
    assert [i.id for i in s.items] == ["u2"]
    assert s.retained_tokens().total == 1 + 900  # "b" and the refused item
    assert s.preview_truncation() == ()  # over the limit by the sums, under it by the items
    result = s.create_response()
    assert result.dropped_items == () and result.usage.input_tokens == 901
