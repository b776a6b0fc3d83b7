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
        """Read a ``response.done`` ``usage`` object (missing details count as zero)."""
        details = data.get("input_token_details") or {}
        cached = details.get("cached_tokens_details") or {}
        out = data.get("output_token_details") or {}
        return cls(
            input=ModalityTokens(
                details.get("text_tokens") or 0,
                details.get("audio_tokens") or 0,
                details.get("image_tokens") or 0,
            ),
            cached=ModalityTokens(
                cached.get("text_tokens") or 0,
                cached.get("audio_tokens") or 0,
                cached.get("image_tokens") or 0,
            ),
            output=ModalityTokens(out.get("text_tokens") or 0, out.get("audio_tokens") or 0, 0),
        )
