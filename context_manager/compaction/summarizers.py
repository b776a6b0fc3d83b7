"""Summarizers: turn old history into a short text within a hard token budget.

One protocol, `Summarizer`: ``summarize(items, budget_tokens=..., previous=...) -> str``, where
`previous` is the summary the new one replaces (its content is carried forward). Any callable
with that shape works too (`as_summarizer`); async code calls `summarize_async`, which awaits a
summarizer's native ``asummarize`` (the OpenAI one has it) or else runs ``summarize`` in a worker
thread, so the event loop never blocks.

`ExtractiveSummarizer` is the offline default: it splits the history into sentences, scores them
for what a later turn is likely to need (names, numbers and codes, constraints, decisions, open
tasks, corrections) and by who said it and whether it is new (`sentence_values`: the user's
statements above the assistant's echoes, filler and repeats low), and keeps the best ones that
fit the budget, in their original order. It is
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
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Item, Message
from ..tokens import get_encoding

__all__ = [
    "FEATURES",
    "ExtractiveSummarizer",
    "SentenceMemo",
    "Summarizer",
    "SummarizerFunction",
    "as_summarizer",
    "sentence_features",
    "sentence_values",
    "split_sentences",
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
_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
# The speaker label a summary line starts with is not part of what was said.
_LABEL = re.compile(r"^(?:User|Assistant|Note|Tool result|Tool call [\w.-]+): ")

# What a later turn is likely to need: one column per feature, with its weight.
FEATURES = ("number", "code", "name", "constraint", "decision", "task", "update")
_WEIGHTS = np.array([2.0, 2.5, 1.5, 2.0, 1.5, 1.5, 2.0])
_KEYWORDS: dict[str, frozenset[str]] = {
    "constraint": frozenset(
        "can't cannot must never always only before after deadline avoid without allergic "
        "allergy prefer prefers preferred at_most no_more at_least can_not".split()
    ),
    "decision": frozenset(
        "decided decide confirm confirmed confirms booked book agreed choose chosen "
        "go_with let's_go take_the we'll".split()
    ),
    "task": frozenset(
        "remind remember please need_to to_do follow_up send call_back don't_forget".split()
    ),
    "update": frozenset("actually changed instead correction sorry is_now now_it".split()),
}


_CODE = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Z])[A-Za-z0-9][\w-]+")
# A capital after another word (a name in the middle), or two capitalized words to begin with.
_NAME = re.compile(r"(?:^[A-Z][^\W\d_]*\s+|[^\W\d_][,;:]?\s+)(?!I\b)[A-Z]")
_UPPER = re.compile(r"[A-Z]")
_LOWER_WORDS = re.compile(r"[a-z']+")
_KEYWORD_COLUMNS = [
    (
        FEATURES.index(k),
        frozenset(w for w in words if "_" not in w),
        tuple(w.replace("_", " ") for w in words if "_" in w),
    )
    for k, words in _KEYWORDS.items()
]


# The fast forms of the tests above, each exactly equivalent (tests/compaction/test_prechecks.py
# checks them against the long way):
# * a digit: in an ASCII sentence `\d` is 0-9, a plain range (a category test is slower);
_ASCII_DIGIT = re.compile(r"[0-9]")
# * a code lies inside one run of word characters and hyphens that holds a digit, so only
#   those runs are searched (`_has_code`);
_RUN_ENDS = re.compile(r"[^\w-]")
# * a name, read backwards: the capital first, so the regex engine skips to capitals in C.
#   `_NAME`'s first branch ("^Alice Bob") is a case of its second (the "e B"), so one branch
#   does; ``(?!I\b)`` (not the pronoun) becomes "not an I with no word character after it";
_NAME_REVERSED = re.compile(r"[A-Z](?<!(?<!\w)I)\s+[,;:]?[^\W\d_]")
# * keyword words: every byte that cannot be in `_LOWER_WORDS`'s ``[a-z']`` (UTF-8 puts every
#   other character in bytes >= 0x80) becomes a space, then one split, and the words looked up
#   in one set of every keyword (the sentence's own words are never hashed into a set);
_TO_SPACE = bytes(c if c == 0x27 or 0x61 <= c <= 0x7A else 0x20 for c in range(256))
_COLUMNS_OF = {
    word.encode(): frozenset(column for column, single, _ in _KEYWORD_COLUMNS if word in single)
    for _, words, _ in _KEYWORD_COLUMNS
    for word in words
}
_ALL_KEYWORDS = frozenset(_COLUMNS_OF)
_PHRASES = [(column, phrases) for column, _, phrases in _KEYWORD_COLUMNS]
# * a label starts with one of these letters (`_LABEL`), so most sentences skip the regex.
_LABEL_FIRST = frozenset("UANT")


def _has_code(sentence: str, digit: re.Match[str]) -> bool:
    r"""`_CODE.search(sentence)`, given the sentence's first digit.

    A match and its lookaheads stay inside one maximal run of ``[\w-]``, and the run holds a
    digit; around a run the characters are neither, so searching the run alone (its bounds as
    ``pos``/``endpos``) sees the same word boundaries.
    """
    find = digit.re.search
    at = digit.start()
    while True:
        start = at
        while start and (sentence[start - 1] in "-_" or sentence[start - 1].isalnum()):
            start -= 1  # `\w` is alphanumeric or "_", as str.isalnum has it
        stop = _RUN_ENDS.search(sentence, at)
        end = len(sentence) if stop is None else stop.start()
        if _CODE.search(sentence, start, end):
            return True
        following = find(sentence, end)
        if following is None:
            return False
        at = following.start()


def sentence_features(sentences: Sequence[str]) -> np.ndarray:
    """Which of `FEATURES` each sentence has, as a 0/1 matrix.

    Numbers are digits; codes are words with both capitals and digits (``QX-4471``); names are
    capitals after another word, or two capitalized words to begin with; the others are
    keyword (and two-word keyword) matches, case-insensitive. Each test is a regular
    expression or a set lookup per sentence, so the cost is linear in the text.
    """
    out = np.zeros((len(sentences), len(FEATURES)))
    for row, labelled in enumerate(sentences):
        sentence = labelled
        if labelled[:1] in _LABEL_FIRST:
            sentence = _LABEL.sub("", labelled, count=1)
        digit = (_ASCII_DIGIT if sentence.isascii() else _DIGIT).search(sentence)
        if digit is not None:
            out[row, 0] = 1.0
            if _has_code(sentence, digit):
                out[row, 1] = 1.0
        if _NAME_REVERSED.search(sentence[::-1]):
            out[row, 2] = 1.0
        lowered = sentence.lower()
        words = lowered.encode("utf-8", "surrogatepass").translate(_TO_SPACE).split()
        hit: set[int] = set()
        for word in _ALL_KEYWORDS.intersection(words):
            hit |= _COLUMNS_OF[word]
        for column, phrases in _PHRASES:
            if column in hit or any(map(lowered.__contains__, phrases)):
                out[row, column] = 1.0
    return out


_BREAK = re.compile(r"[.!?]\s+(?=\S)")


def split_sentences(text: str) -> list[str]:
    """The non-empty pieces of ``_SENTENCE.split(text)``: cut after ``.``, ``!`` or ``?``.

    Found from the punctuation (a lookbehind is tried at every character), and without any
    when the text has none.
    """
    if "." not in text and "!" not in text and "?" not in text:
        return [text] if text else []
    pieces: list[str] = []
    start = 0
    for found in _BREAK.finditer(text):
        pieces.append(text[start : found.start() + 1])  # never empty: it ends at the mark
        start = found.end()  # a non-space follows: the rest is never empty
    pieces.append(text[start:])
    return pieces


# Filler a sentence may be and still carry a code: "Ack U0012.", "Okay, noted.", "Got it."
_FILLER = re.compile(
    r"^(?:ack|ok(?:ay)?|got it|sure|noted|thanks?(?: you)?|great|alright|right|perfect|"
    r"understood|mm+|uh[ -]huh|yes|yeah)\b",
    re.IGNORECASE,
)
_VALUES = re.compile(r"\d[\w./:-]*|\b(?=[\w-]*\d)[A-Za-z0-9][\w-]+")
_HOLDS = [FEATURES.index(k) for k in ("constraint", "decision", "task", "update")]
_UPDATE_COLUMN = FEATURES.index("update")


def sentence_values(
    sentences: Sequence[str], features: np.ndarray, speakers: Sequence[str | None]
) -> np.ndarray:
    """How much each sentence is worth keeping, before its length and its recency.

    The one rule the extractive summarizer and the ledger both use: the features' weights,
    then who said it and whether it is new. What the user states counts half again; an
    assistant sentence that decides, constrains or corrects nothing counts half (it mostly
    echoes the user); filler ("Ack U0012.", "Okay, noted.") a fifth, any other sentence of
    three words or fewer without a number a third; a correction word ("actually") with no
    number, code or name to correct half its weight; and a sentence whose
    every number and code was said before counts 0.4 (a repeat; a correction never is). So the
    first statement of each value outranks its echoes, and a caller's codes outrank the
    acknowledgements that repeat them.

    `speakers` are the sentences' labels (``User``, ``Assistant``, ``Note``...; ``None`` for
    lines of a previous summary, which count as they are).
    """
    value: np.ndarray = features @ _WEIGHTS + 0.1
    # The per-row tests as arrays; the Python loop below only reads them.
    holds: list[bool] = np.any(features[:, _HOLDS], axis=1).tolist()
    counted: list[bool] = np.any(features[:, :2], axis=1).tolist()
    named: list[bool] = np.any(features[:, :3], axis=1).tolist()
    updates: list[bool] = (features[:, _UPDATE_COLUMN] != 0).tolist()
    seen: set[str] = set()
    for n, (sentence, speaker) in enumerate(zip(sentences, speakers, strict=True)):
        words, filler, found = _said(sentence)
        if speaker == "User":
            value[n] *= 1.5
        elif speaker == "Assistant" and not holds[n]:
            value[n] *= 0.5
        if speaker is not None and filler and words <= 4:
            value[n] *= 0.2
        elif words <= 3 and not counted[n]:  # "Holy Cow!": no number, no code
            value[n] *= 0.3
        if updates[n] and not named[n]:
            value[n] -= 0.5 * _WEIGHTS[_UPDATE_COLUMN]  # "actually" with no value to correct
        if found and found <= seen and not updates[n]:
            value[n] *= 0.4
        seen |= found
    return value


@lru_cache(maxsize=1 << 16)
def _said(sentence: str) -> tuple[int, bool, frozenset[str]]:
    """A sentence without its label: its words, whether it opens as filler, its values.

    What `sentence_values` reads of a sentence alone, kept: summaries read the same
    sentences again at every compaction.
    """
    said = _LABEL.sub("", sentence, count=1).strip()
    found = frozenset(_VALUES.findall(said)) if _DIGIT.search(said) else frozenset()
    return len(said.split()), _FILLER.match(said) is not None, found  # values hold a digit


_LABELS = {"user": "User", "assistant": "Assistant", "system": "Note"}


def _role_label(item: Item) -> str:
    if isinstance(item, Message):
        return _LABELS[item.role]
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


class SentenceMemo:
    """Each item's sentences and their features, computed once (bounded, least recent out).

    A live session folds the same items again and again, and items can be read as they
    arrive (`ExtractiveSummarizer.observe`), so a compaction itself only has to choose.
    """

    def __init__(self, size: int = 4096) -> None:
        self._rows: OrderedDict[tuple[str, str], _Read] = OrderedDict()
        self._size = size

    def __getstate__(self) -> dict[str, object]:
        return {"_rows": OrderedDict(), "_size": self._size}  # a cache does not travel

    def rows(self, item: Item) -> tuple[list[str], np.ndarray]:
        """The item's sentences (as said, no speaker label) and their `FEATURES` matrix."""
        read = self.read(item)
        return read.sentences, read.features

    def read(self, item: Item) -> _Read:
        """The item's sentences, their features, and the sentences as a summary says them."""
        text = _text(item)
        if text[:1].isspace() or text[-1:].isspace():
            text = text.strip()
        key = (_role_label(item), text)
        hit = self._rows.get(key)
        if hit is not None:
            self._rows.move_to_end(key)
            return hit
        sentences = split_sentences(text)
        label = f"{key[0]}: "
        labelled = [x if x.startswith(label) else label + x for x in sentences]
        read = _Read(sentences, sentence_features(sentences), labelled, key[0])
        self._rows[key] = read
        if len(self._rows) > self._size:
            self._rows.popitem(last=False)
        return read


class _Read(NamedTuple):
    sentences: list[str]
    features: np.ndarray
    labelled: list[str]
    speaker: str


class ExtractiveSummarizer:
    """Keep the sentences most likely to matter later, within a hard token budget.

    Args:
        recency: how much a later sentence is preferred (0: not at all), so that a corrected
            value outranks the stale one.
        encoding: the tiktoken encoding the budget is counted in.
        memo_items: how many items' sentences it remembers (`SentenceMemo`).
        memo: a memo to share with other summarizers and ledgers (it only caches: what an
            item says does not depend on who reads it).
    """

    def __init__(
        self,
        *,
        recency: float = 0.5,
        encoding: str = "o200k_base",
        memo_items: int = 4096,
        memo: SentenceMemo | None = None,
    ) -> None:
        if recency < 0:
            raise ConfigurationError(f"recency must be >= 0, got {recency}")
        self.recency = recency
        self.encoding = encoding  # by name: a summarizer pickles, to run in other processes
        get_encoding(encoding)  # fail now, not at the first summary, on an unknown encoding
        self._memo = memo if memo is not None else SentenceMemo(memo_items)

    def observe(self, items: Sequence[Item]) -> None:
        """Read items ahead of time (as they arrive), so a later summary of them is quick."""
        for item in items:
            self._memo.rows(item)

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
        rows: list[np.ndarray] = []
        speakers: list[str | None] = []
        if previous:
            # The summary being replaced comes first: its lines are already the kept facts.
            lines = [line for line in previous.split("\n") if line.strip()]
            sentences.extend(lines)
            rows.append(sentence_features(lines))
            speakers.extend([None] * len(lines))
        for item in items:
            read = self._memo.read(item)
            sentences.extend(read.labelled)
            rows.append(read.features)
            speakers.extend([read.speaker] * len(read.labelled))
        if not sentences or budget_tokens == 0:
            return ""
        # Each sentence once: repeated lines add nothing.
        index: dict[str, int] = {}
        for n, sentence in enumerate(sentences):
            index.setdefault(sentence, n)
        keep_at = np.fromiter(index.values(), dtype=np.int64, count=len(index))
        unique = list(index)
        n = len(unique)
        features = np.concatenate(rows)[keep_at]
        who = [speakers[k] for k in keep_at]
        # Choosing works on an estimate (about 4 characters a token); the exact count of the
        # chosen text then enforces the budget.
        tokens = np.array([len(x) for x in unique], dtype=np.float64) / 4.0 + 1.0
        position = np.arange(n, dtype=np.float64) / max(n - 1, 1)
        value = sentence_values(unique, features, who) + self.recency * position
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
