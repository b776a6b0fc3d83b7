"""Texts of an exact token length, for generated calls: filler words around a planted lead.

The filler words are each one ``o200k_base`` token alone and after a space, so `n` of them make
`n` tokens, and neutral: no word a summarizer would take for a fact, a decision or a task.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

from ..errors import ConfigurationError
from ..tokens import get_encoding

__all__ = ["text_with_tokens"]


@cache
def _single_token_words() -> tuple[str, ...]:
    """Words that are one o200k_base token both alone and after a space (so n words = n tokens)."""
    enc = get_encoding("o200k_base")
    # Neutral filler: no word a summarizer would take for a fact, a decision or a task.
    candidates = (
        "the call flight seat time hotel room date fare price train plan day week city ticket "
        "bag card name home work trip night morning option window thanks sure right good fine "
        "okay well next first late early"
    ).split()
    return tuple(
        w for w in candidates
        if len(enc.encode_ordinary(w)) == 1 and len(enc.encode_ordinary(" " + w)) == 1
    )  # fmt: skip


def _words(rng: np.random.Generator, n: int) -> list[str]:
    vocab = _single_token_words()
    return [vocab[i] for i in rng.integers(0, len(vocab), size=n)]


def text_with_tokens(
    n: int, rng: np.random.Generator, *, lead: str = "", wrap: tuple[str, str] = ("", "")
) -> str:
    """A text of exactly `n` o200k_base tokens.

    It holds `lead` (a planted statement, say), then filler words, inside `wrap` (a JSON
    frame, say).

    Raises:
        ConfigurationError: `n` is below what `lead` and `wrap` alone take.
    """
    enc = get_encoding("o200k_base")
    prefix, suffix = wrap
    seed = int(rng.integers(0, 2**63 - 1))
    if not lead and not prefix and not suffix:
        # Filler alone: `n` words are `n` tokens by construction, so nothing to verify.
        return " ".join(_words(np.random.default_rng(seed), max(n, 0)))

    def build(k: int) -> str:
        filler = " ".join(_words(np.random.default_rng(seed), k))
        body = f"{lead} {filler}" if lead and filler else (lead or filler)
        return prefix + body + suffix

    k = max(n - _frame_tokens(lead, prefix, suffix), 0)
    for _ in range(4):
        text = build(k)
        got = len(enc.encode_ordinary(text))
        if got == n:
            return text
        k = max(k + n - got, 0)
    raise ConfigurationError(f"cannot write a text of {n} tokens around {lead!r} and {wrap!r}")


@lru_cache(maxsize=1024)
def _frame_tokens(lead: str, prefix: str, suffix: str) -> int:
    """Tokens of a text's lead and frame with no filler (the first guess of the filler's)."""
    return len(get_encoding("o200k_base").encode_ordinary(prefix + lead + suffix))
