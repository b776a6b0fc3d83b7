"""Summarizers: turn old history into a short text within a hard token budget.

One protocol, `Summarizer`: ``summarize(items, budget_tokens=..., previous=...) -> str``, where
`previous` is the summary the new one replaces (its content is carried forward). Any callable
with that shape works too (`as_summarizer`); async code calls `summarize_async`, which runs a
synchronous summarizer in a worker thread so the event loop never blocks.

`ExtractiveSummarizer` is the offline default: it splits the history into sentences, scores them
for what a later turn is likely to need (names, numbers and codes, constraints, decisions, open
tasks, corrections), and keeps the best ones that fit the budget, in their original order. It is
deterministic and linear in the input: regular expressions over the text, NumPy for the scores,
one tokenization per sentence.

>>> from context_manager.items import Message
>>> s = ExtractiveSummarizer()
>>> said = Message(role="user", text="Hi there. My booking code is K7QX2P. The weather is nice.")
>>> s.summarize([said], budget_tokens=16)
'User: My booking code is K7QX2P.'
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Item, Message
from ..tokens import get_encoding

__all__ = [
    "ExtractiveSummarizer",
    "Summarizer",
    "SummarizerFunction",
    "as_summarizer",
    "summarize_async",
]


@runtime_checkable
class Summarizer(Protocol):
    """Anything that summarizes items into at most `budget_tokens` tokens of text."""

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str: ...


SummarizerFunction = Callable[[Sequence[Item], int, str | None], str]
"""A plain function ``(items, budget_tokens, previous) -> text`` also serves."""


class _FunctionSummarizer:
    def __init__(self, function: SummarizerFunction) -> None:
        self._function = function

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        return self._function(items, budget_tokens, previous)


def as_summarizer(value: Summarizer | SummarizerFunction) -> Summarizer:
    """A `Summarizer` from a summarizer or a function ``(items, budget_tokens, previous)``."""
    if isinstance(value, Summarizer):
        return value
    if callable(value):
        return _FunctionSummarizer(value)
    raise ConfigurationError(f"not a summarizer: {value!r}")


async def summarize_async(
    summarizer: Summarizer,
    items: Sequence[Item],
    *,
    budget_tokens: int,
    previous: str | None = None,
) -> str:
    """Summarize without blocking the event loop.

    An ``asummarize`` method is awaited when the summarizer has one; otherwise the call runs in
    a worker thread.
    """
    native = getattr(summarizer, "asummarize", None)
    if native is not None:
        result: str = await native(items, budget_tokens=budget_tokens, previous=previous)
        return result
    return await asyncio.to_thread(
        summarizer.summarize, items, budget_tokens=budget_tokens, previous=previous
    )


# ------------------------------------------------------------------------- extractive

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
# What a later turn is likely to need; each pattern is one feature of a sentence.
_FEATURES: tuple[tuple[str, re.Pattern[str], float], ...] = (
    ("number", re.compile(r"\d"), 2.0),
    ("code", re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9][A-Z0-9-]{2,}\b"), 2.5),
    # Two capitalized words in a row anywhere, or one in the middle of a sentence.
    ("name", re.compile(r"\b[A-Z][^\W\d_]+\s+[A-Z][^\W\d_]+|(?<=[^\W\d_,;:] )[A-Z][^\W\d_]+"), 1.5),
    ("constraint", re.compile(
        r"\b(?:can't|cannot|can not|must|never|always|only|at most|no more than|at least|"
        r"before|after|deadline|allerg\w*|prefer\w*|avoid|without)\b", re.I), 2.0),
    ("decision", re.compile(
        r"\b(?:let's go|go with|decided|decide|confirm\w*|book(?:ed)?|agreed|choose|chosen|"
        r"take the|we'll)\b", re.I), 1.5),
    ("task", re.compile(
        r"\b(?:remind|remember|please|need to|to do|follow up|send|call back|don't forget)\b",
        re.I), 1.5),
    ("update", re.compile(r"\b(?:actually|changed|instead|correction|now it is|is now|sorry)\b",
                          re.I), 2.0),
)  # fmt: skip


def _role_label(item: Item) -> str:
    if isinstance(item, Message):
        return {"user": "User", "assistant": "Assistant", "system": "Note"}[item.role]
    if isinstance(item, FunctionCall):
        return f"Tool call {item.name}"
    return "Tool result"


def _text(item: Item) -> str:
    if isinstance(item, Message):
        return item.text
    if isinstance(item, FunctionCall):
        return item.arguments
    if isinstance(item, FunctionCallOutput):
        return item.output
    raise ConfigurationError(f"cannot summarize {item!r}")


class ExtractiveSummarizer:
    """Keep the sentences most likely to matter later, within a hard token budget.

    Args:
        recency: how much a later sentence is preferred (0: not at all), so that a corrected
            value outranks the stale one.
        encoding: the tiktoken encoding the budget is counted in.
    """

    def __init__(self, *, recency: float = 0.5, encoding: str = "o200k_base") -> None:
        if recency < 0:
            raise ConfigurationError(f"recency must be >= 0, got {recency}")
        self.recency = recency
        self.encoding = encoding  # by name: a summarizer pickles, to run in other processes
        get_encoding(encoding)  # fail now, not at the first summary, on an unknown encoding
        self._weights = np.array([w for _, _, w in _FEATURES])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExtractiveSummarizer) and (self.recency, self.encoding) == (
            other.recency,
            other.encoding,
        )

    def __hash__(self) -> int:
        return hash((self.recency, self.encoding))

    def _tokens(self, text: str) -> int:
        return len(get_encoding(self.encoding).encode_ordinary(text))

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        """Sentences of `items` (and of the `previous` summary) that fit `budget_tokens`."""
        if budget_tokens < 0:
            raise ConfigurationError(f"budget_tokens must be >= 0, got {budget_tokens}")
        sentences: list[str] = []
        if previous:
            # The summary being replaced comes first: its lines are already the kept facts.
            sentences.extend(line for line in previous.split("\n") if line.strip())
        for item in items:
            label = _role_label(item)
            for sentence in _SENTENCE.split(_text(item).strip()):
                if sentence and not sentence.startswith(f"{label}: "):
                    sentences.append(f"{label}: {sentence}")
                elif sentence:
                    sentences.append(sentence)
        if not sentences or budget_tokens == 0:
            return ""
        # Each sentence once: repeated lines add nothing.
        unique = list(dict.fromkeys(sentences))
        n = len(unique)
        features = np.array(
            [[bool(p.search(s)) for _, p, _ in _FEATURES] for s in unique], dtype=np.float64
        )
        tokens = np.array([self._tokens(s) + 1 for s in unique], dtype=np.float64)  # + newline
        position = np.arange(n, dtype=np.float64) / max(n - 1, 1)
        value = features @ self._weights + 0.1 + self.recency * position
        # Best value per token first; a stable sort keeps the order deterministic on ties.
        order = np.argsort(-(value / np.sqrt(tokens)), kind="stable")
        chosen = np.zeros(n, dtype=bool)
        used = 0.0
        for k in order:
            if used + tokens[k] <= budget_tokens:
                chosen[k] = True
                used += tokens[k]
        text = "\n".join(s for s, keep in zip(unique, chosen, strict=True) if keep)
        # Joined text can tokenize differently at the seams: enforce the budget exactly.
        while text and self._tokens(text) > budget_tokens:
            kept = np.flatnonzero(chosen)
            chosen[kept[np.argmin(value[kept])]] = False
            text = "\n".join(s for s, keep in zip(unique, chosen, strict=True) if keep)
        return text
