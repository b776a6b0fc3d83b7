"""Texts of an exact token length, for generated calls: filler words around a planted lead.

The filler words are each one ``o200k_base`` token alone and after a space, and neutral: no
word a summarizer would take for a fact, a decision or a task. A text is put together so that
its tokens add up by construction (`frame_tokens` plus one per word):

* filler alone: ``w1 w2 ... wk``;
* after a lead (a planted statement): ``LEAD w1 ... wk``;
* inside a frame (a JSON object, say): ``PREFIX w1 ... wkSUFFIX``, with a space before each
  word, so no word merges with the frame's punctuation.

So a call's words can be drawn all at once (`CallBatch.items`, one draw per call), and a text's
length, words and first word are known from the draw without building it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np

from ..errors import ConfigurationError
from ..tokens import get_encoding

__all__ = [
    "compose",
    "filler_count",
    "filler_counts",
    "frame_tokens",
    "text_with_tokens",
    "vocabulary",
]


@cache
def vocabulary() -> tuple[str, ...]:
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


def compose(words: Sequence[str], *, lead: str = "", wrap: tuple[str, str] = ("", "")) -> str:
    """The text of filler `words` after `lead`, inside `wrap` (see the module)."""
    prefix, suffix = wrap
    filler = " ".join(words)
    if prefix or suffix:
        body = f"{lead} {filler}" if lead else (f" {filler}" if filler else "")
        return prefix + body + suffix
    return f"{lead} {filler}" if lead and filler else (lead or filler)


@lru_cache(maxsize=1024)
def frame_tokens(lead: str, prefix: str, suffix: str) -> int:
    """Tokens of a text besides its filler words, when it has at least one."""
    enc = get_encoding("o200k_base")
    if not prefix and not suffix:
        return len(enc.encode_ordinary(lead))
    # The frame's pieces stay apart: the first word starts after a space.
    return len(enc.encode_ordinary(prefix + lead)) + len(enc.encode_ordinary(suffix))


@lru_cache(maxsize=1024)
def _bare_tokens(lead: str, prefix: str, suffix: str) -> int:
    """Tokens of a text with no filler word at all."""
    text = compose((), lead=lead, wrap=(prefix, suffix))
    return len(get_encoding("o200k_base").encode_ordinary(text))


def filler_count(n: int, lead: str = "", wrap: tuple[str, str] = ("", "")) -> int:
    """How many filler words a text of `n` tokens holds around `lead` and `wrap`.

    Raises:
        ConfigurationError: no count of words gives `n` tokens.
    """
    if n == _bare_tokens(lead, *wrap):
        return 0
    k = n - frame_tokens(lead, *wrap)
    if k < 1:
        raise ConfigurationError(f"cannot write a text of {n} tokens around {lead!r} and {wrap!r}")
    return k


def filler_counts(n: np.ndarray, wrap: tuple[str, str]) -> np.ndarray:
    """`filler_count` of many texts of `n` tokens inside `wrap`."""
    k = n - frame_tokens("", *wrap)
    k = np.where(n == _bare_tokens("", *wrap), 0, k)
    if (k < 0).any() or ((k == 0) & (n != _bare_tokens("", *wrap))).any():
        bad = int(n[(k < 0) | ((k == 0) & (n != _bare_tokens("", *wrap)))][0])
        filler_count(bad, "", wrap)  # raises, naming the count
    out: np.ndarray = k.astype(np.int64)
    return out


def text_with_tokens(
    n: int, rng: np.random.Generator, *, lead: str = "", wrap: tuple[str, str] = ("", "")
) -> str:
    """A text of exactly `n` o200k_base tokens: `lead`, then filler words, inside `wrap`.

    Raises:
        ConfigurationError: `n` is below what `lead` and `wrap` alone take.
    """
    k = filler_count(n, lead, wrap)
    vocab = vocabulary()
    words = [vocab[i] for i in rng.integers(0, len(vocab), size=k)]
    return compose(words, lead=lead, wrap=wrap)
