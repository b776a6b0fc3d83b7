"""Profiles: built-in values, the file format (JSON and TOML), and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from context_manager import (
    InputFormatError,
    ModelProfile,
    ProfileError,
    UnknownModelError,
    get_model_profile,
    get_provider_profile,
    load_model_profile,
    load_provider_profile,
    model_names,
    provider_names,
    register_model_profile,
    save_profile,
)
from context_manager.profiles import resolve_model_name

from .strategies import TINY

REQUIRED_MODELS = {
    "gpt-realtime", "gpt-realtime-mini", "gpt-realtime-1.5", "gpt-realtime-2",
    "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview",
}  # fmt: skip


def test_the_registry_holds_every_required_model_and_provider() -> None:
    assert set(model_names()) >= REQUIRED_MODELS
    assert {"openai", "azure"} <= set(provider_names())
    assert get_provider_profile("openai").max_session_seconds == 3600
    assert get_provider_profile("azure").max_session_seconds == 1800


def test_gpt_realtime_defaults_match_the_design() -> None:
    p = get_model_profile("gpt-realtime")
    assert (p.context_window, p.max_output_tokens, p.input_limit) == (32768, 4096, 28672)
    assert p.max_instructions_tools_tokens == 16384
    assert (p.audio_input_ms_per_token, p.audio_output_ms_per_token) == (100, 50)
    # Recorded behaviour (spec §11).
    assert p.user_transcript_in_context is False
    assert p.assistant_transcript_in_context is True
    assert p.assistant_audio_in_context == "latest"
    assert (p.cache.block_tokens, p.cache.scope) == (64, "organization")
    prices = p.prices_per_million
    assert (prices.text_input, prices.text_cached, prices.text_output) == (4.0, 0.4, 16.0)
    assert (prices.audio_input, prices.audio_cached, prices.audio_output) == (32.0, 0.4, 64.0)
    assert p.prices_as_of == "2026-10"


def test_gpt_realtime_2_limits_and_output_price() -> None:
    p = get_model_profile("gpt-realtime-2")
    assert (p.context_window, p.max_output_tokens) == (128_000, 32_000)
    assert p.prices_per_million.text_output == 24.0


def test_every_built_in_profile_has_its_prices_dated() -> None:
    for name in model_names():
        assert get_model_profile(name).prices_as_of, name


def test_snapshots_resolve_to_their_family() -> None:
    assert resolve_model_name("gpt-realtime-2025-08-28") == "gpt-realtime"
    assert get_model_profile("gpt-realtime-mini-2025-12-15").name == "gpt-realtime-mini"


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'gpt-9'; known: .*gpt-realtime"):
        get_model_profile("gpt-9")
    with pytest.raises(UnknownModelError, match="unknown provider 'gcp'"):
        get_provider_profile("gcp")


def test_the_issue_example_profile_loads_from_json(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    p = load_model_profile(path)
    assert p.name == "tiny"
    assert p.cache.block_tokens == 10
    assert p.prices_per_million.audio_output == 64
    assert p.encoding == "o200k_base"  # optional keys take their defaults
    assert p.audio_rounding == "ceil"


@pytest.mark.parametrize("suffix", [".json", ".toml"])
@pytest.mark.parametrize("name", sorted(REQUIRED_MODELS))
def test_save_and_load_round_trip(tmp_path: Path, name: str, suffix: str) -> None:
    profile = get_model_profile(name)
    path = tmp_path / f"profile{suffix}"
    save_profile(profile, path)
    assert load_model_profile(path) == profile


def test_provider_file(tmp_path: Path) -> None:
    path = tmp_path / "azure-eu.json"
    path.write_text('{"name": "azure-eu", "max_session_seconds": 1800}')
    assert load_provider_profile(path).max_session_seconds == 1800
    toml = tmp_path / "azure-eu.toml"
    save_profile(load_provider_profile(path), toml)
    assert load_provider_profile(toml).name == "azure-eu"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"context_window": -5}, "context_window", "greater than 0"),
        ({"context_window": "big"}, "context_window", "valid integer"),
        ({"assistant_audio_in_context": "some"}, "assistant_audio_in_context", "'all', 'latest' or 'none'"),
        ({"cache": {**TINY["cache"], "block_tokens": 0}}, "cache.block_tokens", "greater than 0"),
        ({"cache": {**TINY["cache"], "scope": "global"}}, "cache.scope", "'session' or 'organization'"),
        ({"prices_per_million": {**TINY["prices_per_million"], "audio_input": -1}},
         "prices_per_million.audio_input", "greater than or equal to 0"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"input_limit": 900}, "input_limit", "900 exceeds context_window - max_output_tokens = 1,000 - 200 = 800"),
        ({"max_instructions_tools_tokens": 801}, "max_instructions_tools_tokens", "801 exceeds input_limit 800"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named(change: dict, field: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        load_model_profile(TINY | change)
    assert info.value.field == field
    assert f"field {field!r}" in str(info.value)
    assert message in str(info.value)


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    data = dict(TINY)
    del data["input_limit"]
    path = tmp_path / "p.toml"
    path.write_text(
        "\n".join(f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict))
        + "\n[cache]\nblock_tokens = 10\nmin_prefix_tokens = 20\nttl_seconds = 300\nscope = 'session'\n"
        + "[prices_per_million]\ntext_input = 4\ntext_cached = 0.4\ntext_output = 16\n"
        + "audio_input = 32\naudio_cached = 0.4\naudio_output = 64\n"
    )
    with pytest.raises(ProfileError, match=r"\(.*p\.toml\): field 'input_limit': Field required"):
        load_model_profile(path)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="missing.json: cannot read profile"):
        load_model_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",\n  oops}')
    with pytest.raises(InputFormatError, match="bad.json:line 2: not valid JSON"):
        load_model_profile(bad)
    yaml = tmp_path / "p.yaml"
    yaml.write_text("name: x")
    with pytest.raises(InputFormatError, match="unknown profile format '.yaml'"):
        load_model_profile(yaml)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(InputFormatError, match="a profile must be an object, got list"):
        load_model_profile(listing)


def test_registering_a_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    from context_manager import profiles

    fresh = profiles._Registry()  # a private registry, so other tests see the built-ins only
    monkeypatch.setattr(profiles, "_registry", lambda: fresh)
    tiny = ModelProfile.model_validate(TINY)
    register_model_profile(tiny, aliases=["tiny-2026"])
    assert get_model_profile("tiny-2026") is tiny
