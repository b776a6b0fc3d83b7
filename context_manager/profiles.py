"""Model and provider profiles: every number the model of the server uses.

A `ModelProfile` holds a realtime model's limits, token rates, in-context audio rules,
prompt-cache parameters and prices; a `ProviderProfile` holds what a provider adds (the
maximum session length). Code never hard-codes these numbers: it asks a profile.

Built-in profiles ship in ``context_manager/data/*.toml`` and are read with the same loader
as user files, so a user's file and a built-in one are validated by the same rules.

>>> p = get_model_profile("gpt-realtime")
>>> (p.context_window, p.max_output_tokens, p.input_limit, p.max_instructions_tools_tokens)
(32768, 4096, 28672, 16384)
>>> get_provider_profile("azure").max_session_seconds
1800.0
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from .errors import InputFormatError, ProfileError, UnknownModelError

__all__ = [
    "AssistantAudioInContext",
    "AudioRounding",
    "CacheProfile",
    "CacheScope",
    "ModelProfile",
    "Prices",
    "ProviderProfile",
    "get_model_profile",
    "get_provider_profile",
    "load_model_profile",
    "load_provider_profile",
    "model_names",
    "provider_names",
    "register_model_profile",
    "register_provider_profile",
    "resolve_model_name",
    "save_profile",
]

AssistantAudioInContext = Literal["all", "latest", "none"]
"""Which assistant items keep their audio tokens in a request (DESIGN.md, "Item tokens")."""

AudioRounding = Literal["floor", "ceil"]
"""How a duration is turned into whole audio tokens."""

CacheScope = Literal["session", "organization"]
"""Whether a cached prefix serves only its own session or every session of the organization."""

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=False, validate_default=True)

# Physical sense, not only types: a profile outside these bounds is a typo, and a figure built
# on it would be nonsense (a negative cost from an overflow, an allocation of terabytes).
_MOST_TOKENS = 10_000_000  # a window, a limit or an overhead, in tokens
_MOST_PRICE = 10_000.0  # US dollars per million tokens
_MOST_MS_PER_TOKEN = 10_000.0  # audio milliseconds one token stands for (recorded: 50 to 100)
_MOST_SECONDS = 30 * 24 * 3600.0  # a cache's time to live
Price = Annotated[float, Field(ge=0, le=_MOST_PRICE, allow_inf_nan=False)]
Tokens = Annotated[int, Field(ge=0, le=_MOST_TOKENS)]


class CacheProfile(BaseModel):
    """Prompt-cache parameters of a model (DESIGN.md, "Prompt cache")."""

    model_config = _STRICT

    block_tokens: int = Field(gt=0, le=_MOST_TOKENS)
    """Cached tokens are rounded down to a multiple of this (64 observed on Realtime)."""
    min_prefix_tokens: Tokens
    """A common prefix shorter than this caches nothing (1,024 on the general API)."""
    ttl_seconds: float = Field(gt=0, le=_MOST_SECONDS, allow_inf_nan=False)
    """A cached prefix unused for this long expires."""
    scope: CacheScope
    """``session``: a prefix serves its own session; ``organization``: any session."""
    include_output: bool = True
    """Whether a served response's output items are cached with its input (recordings: yes)."""


class Prices(BaseModel):
    """Prices in US dollars per million tokens, per modality."""

    model_config = _STRICT

    text_input: Price
    text_cached: Price
    text_output: Price
    audio_input: Price
    audio_cached: Price
    audio_output: Price
    image_input: Price = 0.0
    image_cached: Price = 0.0


class ModelProfile(BaseModel):
    """Everything the library needs to know about one realtime model.

    The keys are exactly those of the profile file format (JSON or TOML); see
    ``docs/concepts.md`` for what each one means and where the built-in values come from.
    """

    model_config = _STRICT

    name: str = Field(min_length=1)
    """The model name as given to the API (``gpt-realtime``)."""
    context_window: int = Field(gt=0, le=_MOST_TOKENS)
    """Total tokens the model attends to: input plus the response reserve."""
    max_output_tokens: int = Field(gt=0, le=_MOST_TOKENS)
    """The model's maximum response length; the window reserves this much for the response."""
    input_limit: int = Field(gt=0, le=_MOST_TOKENS)
    """Input tokens the server allows before it truncates (at most window - max output)."""
    max_instructions_tools_tokens: int = Field(gt=0, le=_MOST_TOKENS)
    """Cap on instructions plus tool definitions (16,384 on gpt-realtime)."""
    item_overhead_tokens: Tokens
    """Tokens each conversation item adds beyond its content (role and delimiters)."""
    response_overhead_tokens: Tokens
    """Tokens each request adds once (the priming of the response)."""
    audio_input_ms_per_token: float = Field(ge=1, le=_MOST_MS_PER_TOKEN, allow_inf_nan=False)
    """Milliseconds of user audio per input token (100: 10 tokens a second)."""
    audio_output_ms_per_token: float = Field(ge=1, le=_MOST_MS_PER_TOKEN, allow_inf_nan=False)
    """Milliseconds of assistant audio per token (50: 20 tokens a second)."""
    user_transcript_in_context: bool
    """Whether a user audio item's transcript is also in the model's context."""
    assistant_transcript_in_context: bool
    """Whether an assistant audio item's transcript is in the context beside its audio."""
    assistant_audio_in_context: AssistantAudioInContext
    """Which assistant items keep their audio tokens: ``all``, the ``latest`` only, ``none``."""
    image_tokens: Tokens
    """Tokens one input image costs (a flat figure; detail levels are not modelled)."""
    cache: CacheProfile
    """Prompt-cache parameters."""
    prices_per_million: Prices
    """Prices in USD per million tokens."""

    # Optional keys: a profile file may leave them out.
    user_audio_overhead_tokens: Tokens = 0
    """Extra text tokens of a user audio item, beyond ``item_overhead_tokens``."""
    assistant_audio_overhead_tokens: Tokens = 0
    """Extra text tokens of an assistant item while it keeps its audio in context."""
    function_overhead_tokens: Tokens = 0
    """Extra text tokens of a function call or function call output item."""
    request_preamble_tokens: Tokens = 0
    """Text every request begins with that no session setting holds (the reasoning models'
    preamble); cached like the instructions."""
    tools_preamble_tokens: Tokens = 0
    """Preamble text added to a request that has tools (beyond ``request_preamble_tokens``)."""
    reasoning_output_tokens: Tokens = 0
    """Reasoning tokens a response makes (a mean), billed as output text; never in context."""
    encoding: str = "o200k_base"
    """The tiktoken encoding for text (every realtime model uses ``o200k_base``)."""
    audio_rounding: AudioRounding = "ceil"
    """How durations become whole tokens; recordings of gpt-realtime show ``floor``."""
    prices_as_of: str | None = None
    """When the prices were read (ISO date or month), for reports."""
    notes: str | None = None
    """Free text: sources and caveats of the numbers."""

    @model_validator(mode="after")
    def _check_limits(self) -> ModelProfile:
        # ProfileError is not a ValueError, so pydantic lets it through unwrapped.
        room = self.context_window - self.max_output_tokens
        if room <= 0:
            raise ProfileError(
                f"max_output_tokens {self.max_output_tokens:,} leaves no input room in"
                f" context_window {self.context_window:,}",
                field="max_output_tokens",
            )
        if self.input_limit > room:
            raise ProfileError(
                f"{self.input_limit:,} exceeds context_window - max_output_tokens"
                f" = {self.context_window:,} - {self.max_output_tokens:,} = {room:,}",
                field="input_limit",
            )
        if self.max_instructions_tools_tokens > self.input_limit:
            raise ProfileError(
                f"{self.max_instructions_tools_tokens:,} exceeds input_limit {self.input_limit:,}",
                field="max_instructions_tools_tokens",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain data with the file format's keys (unset optionals left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class ProviderProfile(BaseModel):
    """What a provider adds to a model: the maximum session length, transcription prices."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    """The provider's name (``openai``, ``azure``)."""
    max_session_seconds: float = Field(gt=0, le=1e10, allow_inf_nan=False)
    """The server ends a session this long after it began (3,600 on OpenAI, 1,800 on Azure;
    1e9, some 30 years, stands for no limit)."""
    transcription_usd_per_minute: dict[str, Annotated[float, Field(ge=0, le=100.0)]] = Field(
        default_factory=dict
    )
    """Input transcription's price per minute of audio, by transcription model (billed apart
    from responses)."""
    notes: str | None = None
    """Free text: sources and caveats."""

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain data with the file format's keys (unset optionals left out)."""
        return self.model_dump(mode="json", exclude_none=True)


# ------------------------------------------------------------------------- reading and writing


def _read_mapping(path: Path) -> dict[str, Any]:
    """Read a JSON or TOML file (by suffix) into a dict, with errors that name the file."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFormatError(f"cannot read profile: {exc.strerror}", source=source) from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: object = tomllib.loads(raw.decode("utf-8"))
        elif suffix == ".json":
            data = json.loads(raw)
        else:
            raise InputFormatError(
                f"unknown profile format {suffix or '(none)'!r}; use .json or .toml", source=source
            )
    except UnicodeDecodeError:
        raise InputFormatError("not UTF-8 text", source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputFormatError(f"not valid TOML: {exc}", source=source) from exc
    except RecursionError:
        raise InputFormatError("nested too deeply", source=source) from None
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"not valid JSON: {exc.msg} (column {exc.colno})", source=source, line=exc.lineno
        ) from exc
    if not isinstance(data, dict):
        raise InputFormatError(
            f"a profile must be an object, got {type(data).__name__}", source=source
        )
    return data


_P = TypeVar("_P", bound=BaseModel)


def _validate(cls: type[_P], data: Mapping[str, Any], source: str) -> _P:
    """Validate `data` as `cls`, turning pydantic's report into a ProfileError naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        got = f" (got {first['input']!r})" if first["type"] != "missing" else ""
        more = exc.error_count() - 1
        extra = f"; and {more} more problem{'s' * (more > 1)}" if more else ""
        raise ProfileError(f"{first['msg']}{got}{extra}", field=field, source=source) from exc
    except ProfileError as exc:
        # Raised by a cross-field check, which cannot know where the data came from.
        raise exc.with_source(source) from exc


def _write_mapping(data: dict[str, Any], path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        raise InputFormatError(
            f"unknown profile format {suffix or '(none)'!r}; use .json or .toml", source=str(path)
        )


def load_model_profile(source: str | Path | Mapping[str, Any]) -> ModelProfile:
    """Load a model profile from a JSON or TOML file, or validate one given as a mapping.

    Raises:
        InputFormatError: the file cannot be read or parsed.
        ProfileError: a field is missing, unknown or out of range (the error names it).
    """
    if isinstance(source, Mapping):
        return _validate(ModelProfile, source, "mapping")
    path = Path(source)
    return _validate(ModelProfile, _read_mapping(path), str(path))


def load_provider_profile(source: str | Path | Mapping[str, Any]) -> ProviderProfile:
    """Load a provider profile (``{"name": ..., "max_session_seconds": ...}``) like a model one."""
    if isinstance(source, Mapping):
        return _validate(ProviderProfile, source, "mapping")
    path = Path(source)
    return _validate(ProviderProfile, _read_mapping(path), str(path))


def save_profile(profile: ModelProfile | ProviderProfile, path: str | Path) -> None:
    """Write a profile as JSON or TOML (by the suffix of `path`); loading it gives it back."""
    _write_mapping(profile.to_dict(), Path(path))


# ------------------------------------------------------------------------- the registry


class _Registry:
    """Built-in profiles (read once from package data) plus those the user registers."""

    def __init__(self) -> None:
        self.models: dict[str, ModelProfile] = {}
        self.providers: dict[str, ProviderProfile] = {}
        self.aliases: dict[str, str] = {}
        self._load_builtins()

    def _load_builtins(self) -> None:
        data_dir = resources.files("context_manager") / "data"
        models = tomllib.loads((data_dir / "models.toml").read_text(encoding="utf-8"))
        for entry in models["model"]:
            profile = _validate(ModelProfile, entry, "built-in models.toml")
            self.models[profile.name] = profile
        for alias, target in models.get("aliases", {}).items():
            self.aliases[alias] = target
        providers = tomllib.loads((data_dir / "providers.toml").read_text(encoding="utf-8"))
        for entry in providers["provider"]:
            provider = _validate(ProviderProfile, entry, "built-in providers.toml")
            self.providers[provider.name] = provider


@cache
def _registry() -> _Registry:
    return _Registry()


def resolve_model_name(name: str) -> str:
    """The registered profile name for a model name or one of its dated snapshots.

    >>> resolve_model_name("gpt-realtime-2025-08-28")
    'gpt-realtime'
    """
    reg = _registry()
    if name in reg.models:
        return name
    if name in reg.aliases:
        return reg.aliases[name]
    raise UnknownModelError(name, [*reg.models, *reg.aliases])


def get_model_profile(name: str) -> ModelProfile:
    """The registered profile of a model (built-in or registered), by name or snapshot name."""
    return _registry().models[resolve_model_name(name)]


def get_provider_profile(name: str) -> ProviderProfile:
    """The registered profile of a provider (``openai``, ``azure`` or one registered)."""
    reg = _registry()
    try:
        return reg.providers[name]
    except KeyError:
        raise UnknownModelError(name, list(reg.providers), what="provider") from None


def model_names() -> list[str]:
    """Names of the registered model profiles (snapshot aliases left out), sorted."""
    return sorted(_registry().models)


def provider_names() -> list[str]:
    """Names of the registered provider profiles, sorted."""
    return sorted(_registry().providers)


def register_model_profile(profile: ModelProfile, *, aliases: Iterable[str] = ()) -> None:
    """Make `profile` available by name (replacing a registered profile of the same name)."""
    reg = _registry()
    reg.models[profile.name] = profile
    for alias in aliases:
        reg.aliases[alias] = profile.name


def register_provider_profile(profile: ProviderProfile) -> None:
    """Make `profile` available by name (replacing a registered profile of the same name)."""
    _registry().providers[profile.name] = profile
