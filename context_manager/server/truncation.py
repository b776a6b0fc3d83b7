"""The server's truncation rule: which items a response drops, and the setting that drives it.

DESIGN.md, "Truncation": on each response, T is the tokens of the retained conversation items
(instructions and tools are never dropped) and L the history limit (``post_instructions`` if
set, else the input limit minus instructions and tools). If T > L:

* ``disabled``: the response fails with an overflow error and nothing is dropped;
* ``auto`` (ratio 1.0) or ``retention_ratio`` r: whole items are dropped, oldest first, until
  T <= floor(r * L).

If the newest item alone exceeds L, nothing can make the request fit: that is an overflow too.

>>> Truncation.parse("retention_ratio:0.8:5000")
Truncation(mode='retention_ratio', retention_ratio=0.8, post_instructions=5000)
>>> plan_truncation([40, 30, 20, 10], limit=90, ratio=0.5)
2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..errors import ConfigurationError, ContextOverflowError, InputFormatError

__all__ = ["Indexed", "Truncation", "TruncationMode", "plan_truncation", "plan_truncation_at"]

TruncationMode = Literal["auto", "disabled", "retention_ratio"]


@dataclass(frozen=True, slots=True)
class Truncation:
    """A session's ``truncation`` setting.

    Attributes:
        mode: ``auto``, ``disabled`` or ``retention_ratio``.
        retention_ratio: the fraction of the history limit to keep after truncating (1.0 for
            ``auto``; unused for ``disabled``).
        post_instructions: ``token_limits.post_instructions``, the history limit, if set.
    """

    mode: TruncationMode = "auto"
    retention_ratio: float = 1.0
    post_instructions: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "disabled", "retention_ratio"):
            raise ConfigurationError(
                f"truncation mode must be auto, disabled or retention_ratio, got {self.mode!r}"
            )
        if not (0.0 < self.retention_ratio <= 1.0) or math.isnan(self.retention_ratio):
            raise ConfigurationError(
                f"retention_ratio must be in (0, 1], got {self.retention_ratio}"
            )
        if self.mode != "retention_ratio" and self.retention_ratio != 1.0:
            raise ConfigurationError("retention_ratio applies only to mode retention_ratio")
        if self.post_instructions is not None and self.post_instructions <= 0:
            raise ConfigurationError(
                f"post_instructions must be a positive token count, got {self.post_instructions}"
            )
        if self.post_instructions is not None and self.mode != "retention_ratio":
            raise ConfigurationError("post_instructions is set only with retention_ratio")

    @classmethod
    def parse(cls, text: str) -> Truncation:
        """Read the command-line form of a truncation setting.

        The forms: ``auto``, ``disabled``, ``retention_ratio:R`` and
        ``retention_ratio:R:POST_INSTRUCTIONS``.

        Raises:
            ConfigurationError: naming what is wrong with `text`.
        """
        parts = text.strip().split(":")
        if parts == ["auto"]:
            return cls(mode="auto")
        if parts == ["disabled"]:
            return cls(mode="disabled")
        if parts[0] == "retention_ratio" and len(parts) in (2, 3):
            try:
                ratio = float(parts[1])
                post = int(parts[2]) if len(parts) == 3 else None
            except ValueError:
                raise ConfigurationError(
                    f"bad truncation {text!r}: R must be a number and POST_INSTRUCTIONS an integer"
                ) from None
            return cls(mode="retention_ratio", retention_ratio=ratio, post_instructions=post)
        raise ConfigurationError(
            f"bad truncation {text!r}; use auto, disabled, retention_ratio:R or"
            " retention_ratio:R:POST_INSTRUCTIONS"
        )

    @classmethod
    def from_realtime(cls, value: str | Mapping[str, Any] | None) -> Truncation:
        """Read the session's ``truncation`` field as the Realtime API writes it."""
        if value is None or value == "auto":
            return cls()
        if value == "disabled":
            return cls(mode="disabled")
        if isinstance(value, Mapping) and value.get("type") == "retention_ratio":
            limits = value.get("token_limits") or {}
            ratio, post = value.get("retention_ratio"), (limits or {}).get("post_instructions")
            if isinstance(ratio, bool) or not isinstance(ratio, int | float):
                raise InputFormatError(
                    f"a retention_ratio truncation needs a number, got {ratio!r}",
                    source="truncation",
                    field="retention_ratio",
                )
            if post is not None and (isinstance(post, bool) or not isinstance(post, int)):
                raise InputFormatError(
                    f"post_instructions must be a whole number, got {post!r}",
                    source="truncation",
                    field="token_limits.post_instructions",
                )
            return cls(mode="retention_ratio", retention_ratio=float(ratio), post_instructions=post)
        raise ConfigurationError(f"unknown truncation setting {value!r}")

    def to_realtime(self) -> str | dict[str, Any]:
        """The session's ``truncation`` field for ``session.update``."""
        if self.mode != "retention_ratio":
            return self.mode
        out: dict[str, Any] = {"type": "retention_ratio", "retention_ratio": self.retention_ratio}
        if self.post_instructions is not None:
            out["token_limits"] = {"post_instructions": self.post_instructions}
        return out

    def __str__(self) -> str:
        if self.mode != "retention_ratio":
            return self.mode
        post = f":{self.post_instructions}" if self.post_instructions is not None else ""
        return f"retention_ratio:{self.retention_ratio:g}{post}"


class Indexed(Protocol):
    """Item tokens read by index (a list, or `Retained.sizes`, which reads only those asked)."""

    def __len__(self) -> int: ...

    def __getitem__(self, n: int, /) -> int: ...


def plan_truncation(
    tokens: Sequence[int], *, limit: int, ratio: float = 1.0, disabled: bool = False
) -> int:
    """How many of the oldest retained items a response drops.

    Args:
        tokens: each retained item's tokens, oldest first.
        limit: the history limit L.
        ratio: the retention ratio (1.0 for ``auto``).
        disabled: truncation is ``disabled``.

    Returns:
        The number of items to drop from the front (0 when T <= L).

    Raises:
        ContextOverflowError: T > L with truncation disabled, or the newest item alone
            exceeds L.
    """
    return plan_truncation_at(sum(tokens), tokens, limit=limit, ratio=ratio, disabled=disabled)


def plan_truncation_at(
    total: int, tokens: Indexed, *, limit: int, ratio: float = 1.0, disabled: bool = False
) -> int:
    """`plan_truncation` when the caller keeps T = ``sum(tokens)`` running.

    Only the newest item and the dropped ones are read: a session keeps its items' tokens
    running, so a response that truncates reads what it drops, not the whole window.
    """
    if total <= limit:
        return 0
    if disabled:
        raise ContextOverflowError(
            "conversation exceeds the history limit and truncation is disabled",
            used=total,
            limit=limit,
        )
    if tokens[-1] > limit:
        raise ContextOverflowError(
            f"the newest item alone ({tokens[-1]:,} tokens) exceeds the history limit",
            used=total,
            limit=limit,
        )
    target = math.floor(ratio * limit)
    dropped = 0
    # Never drop the newest item: it fits L, and a response needs something to answer.
    while total > target and dropped < len(tokens) - 1:
        total -= tokens[dropped]
        dropped += 1
    return dropped
