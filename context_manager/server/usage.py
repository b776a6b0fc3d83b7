"""A response's usage, shaped like the ``usage`` of the server's ``response.done``.

>>> from context_manager.tokens import ModalityTokens as M
>>> u = Usage(input=M(119, 13), cached=M(64), output=M(30, 91))
>>> (u.input_tokens, u.cached_tokens, u.output_tokens, u.total_tokens)
(132, 64, 121, 253)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputFormatError
from ..tokens import ModalityTokens

__all__ = ["Usage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Input (with its cached part) and output tokens of one response, by modality.

    Cached tokens are a subset of input tokens, as on the server.
    """

    input: ModalityTokens
    cached: ModalityTokens
    output: ModalityTokens

    @property
    def input_tokens(self) -> int:
        """All input tokens, cached ones included."""
        return self.input.total

    @property
    def cached_tokens(self) -> int:
        """Input tokens served from the prompt cache."""
        return self.cached.total

    @property
    def output_tokens(self) -> int:
        """Output tokens."""
        return self.output.total

    @property
    def total_tokens(self) -> int:
        """Input plus output."""
        return self.input.total + self.output.total

    def to_dict(self) -> dict[str, Any]:
        """The ``response.done`` ``usage`` object."""
        return {
            "total_tokens": self.total_tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_token_details": {
                "text_tokens": self.input.text,
                "audio_tokens": self.input.audio,
                "image_tokens": self.input.image,
                "cached_tokens": self.cached_tokens,
                "cached_tokens_details": {
                    "text_tokens": self.cached.text,
                    "audio_tokens": self.cached.audio,
                    "image_tokens": self.cached.image,
                },
            },
            "output_token_details": {
                "text_tokens": self.output.text,
                "audio_tokens": self.output.audio,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Read a ``response.done`` ``usage`` object.

        Missing details count as zero; a total without its details (a log that kept only
        ``input_tokens``/``output_tokens``) counts as text, so no reported token is lost.

        Raises:
            InputFormatError: a count that is not a whole number >= 0.
        """
        if not isinstance(data, Mapping):
            raise InputFormatError("usage must be an object", source="response.done")
        details = _object(data, "input_token_details")
        cached = _object(details, "cached_tokens_details")
        out = _object(data, "output_token_details")
        if details:
            inputs = ModalityTokens(*_counts(details, _MODALITIES))
        else:
            inputs = ModalityTokens(_count(data, "input_tokens"))
        if cached:
            cached_tokens = ModalityTokens(*_counts(cached, _MODALITIES))
        else:
            cached_tokens = ModalityTokens(_count(details, "cached_tokens"))
        if out:
            outputs = ModalityTokens(*_counts(out, _MODALITIES[:2]))
        else:
            outputs = ModalityTokens(_count(data, "output_tokens"))
        return cls(input=inputs, cached=cached_tokens, output=outputs)


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputFormatError("expected an object", source="usage", field=key)
    return value


_MODALITIES = ("text_tokens", "audio_tokens", "image_tokens")


def _counts(data: Mapping[str, Any], keys: tuple[str, ...]) -> list[int]:
    """`_count` of each key, a plain whole number taken as it is (the usual case)."""
    counts: list[int] = []
    for key in keys:
        value = data.get(key)
        counts.append(value if type(value) is int and value >= 0 else _count(data, key))
    return counts


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputFormatError(
            f"expected a whole number >= 0, got {value!r}", source="usage", field=key
        )
    return value
