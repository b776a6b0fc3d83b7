"""`ExtractiveSummarizer` on a generated call's arrays: the same summary, few texts built.

A generated text is filler words around a planted lead or inside a JSON frame
(`texts.compose`). What the extractive summarizer reads of a filler-only sentence follows from
its words alone: it carries no feature (no digit, capital or keyword: `texts.vocabulary`), so
its worth is the speaker's weight, times the filler or short-sentence rule; its estimated
tokens are its characters over 4. Those come from the word draw (`CallBatch.filler_draw`) as
arrays, and only the sentences the summary keeps are written out, to count the result
exactly. Texts with a lead, and the previous summary's lines, are read for real.

`FillerStats` holds, per batch item, what that takes; `summarize` gives, for a run of a call's
items, exactly ``ExtractiveSummarizer().summarize(items, budget_tokens=..., previous=...)``
(``tests/simulate/test_extractive.py`` checks it on random calls, ranges, budgets and
previous summaries), as a `Summary` that remembers which of its lines are filler items, so
the next summary need not read them again.

Calls from files (`CallBatch.source_items`) have no filler to spare reading: `summarize_items`
runs the summarizer on their items and wraps its text (`from_text`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import numpy as np

from ..compaction.summarizers import (
    _FILLER,
    ExtractiveSummarizer,
    SentenceMemo,
    sentence_features,
    sentence_values,
)
from ..errors import ConfigurationError
from ..items import Item, Message
from ..tokens import get_encoding
from .texts import compose, vocabulary
from .workloads import _FRAMES, _TOOL_NAME, ASSISTANT, CALL, OUTPUT, USER, CallBatch

__all__ = [
    "FillerStats",
    "Summary",
    "filler_stats",
    "from_text",
    "joined",
    "messages",
    "source_items",
    "summarize",
    "summarize_items",
]

_LABELS = {USER: "User", ASSISTANT: "Assistant", CALL: f"Tool call {_TOOL_NAME}",
           OUTPUT: "Tool result"}  # fmt: skip
# A filler sentence's worth before the recency term: 0.1 (no feature) times the speaker's
# weight, in `sentence_values`' order of operations (so the floats are the same).
_BASE = {USER: 0.1 * 1.5, ASSISTANT: 0.1 * 0.5, CALL: 0.1, OUTPUT: 0.1}
_LABEL_CHARS = np.array([len(_LABELS[k]) + 2 for k in (USER, ASSISTANT, CALL, OUTPUT)])
_FRAME_CHARS = np.array([0, 0, *(sum(map(len, _FRAMES[k])) for k in (CALL, OUTPUT)), 0])


@dataclass(frozen=True, slots=True)
class FillerStats:
    """Per item of a batch: what the extractive summarizer reads of its filler sentence."""

    words: np.ndarray  # filler words
    chars: np.ndarray  # characters of the sentence as said (no speaker label)
    said_words: np.ndarray  # its whitespace-separated words (a frame adds two)
    filler: np.ndarray  # it starts with a filler word ("okay", "sure"...) and is short
    key: np.ndarray  # kind, words, characters and first word: equal sentences, equal keys
    draw: np.ndarray  # where its words start in `drawn`
    lead: np.ndarray  # it has a planted lead: read for real
    drawn: np.ndarray  # every item's words in a row (indices into `texts.vocabulary`)

    def ids(self, item: int) -> np.ndarray:
        """Item `item`'s words."""
        start = int(self.draw[item])
        out: np.ndarray = self.drawn[start : start + int(self.words[item])]
        return out


class Summary:
    """A summary made on the arrays: its tokens, its lines, and its text when asked for.

    A line is a filler item's index (its sentence) or the line's text. `ident` is the same
    for equal texts (a filler sentence by its kind and words), so it serves as the cache key
    of the summary item without writing the text.
    """

    __slots__ = ("_kinds", "_stats", "_text", "ident", "lines", "tokens")

    def __init__(self, tokens: int, lines: tuple[int | str, ...] = (),
                 ident: tuple[Any, ...] = (), kinds: np.ndarray | None = None,
                 stats: FillerStats | None = None, text: str | None = None) -> None:  # fmt: skip
        self.tokens = tokens
        self.lines = lines
        self.ident = ident
        self._kinds = kinds
        self._stats = stats
        self._text: str | None = text if text is not None or lines else ""

    @property
    def text(self) -> str:
        """The summary's text (written on first use)."""
        if self._text is None:
            assert self._kinds is not None
            assert self._stats is not None
            stats, kinds = self._stats, self._kinds
            self._text = "\n".join(
                x if isinstance(x, str) else _sentence(int(kinds[x]), stats.ids(x))
                for x in self.lines
            )
        return self._text

    def __repr__(self) -> str:
        return f"Summary(tokens={self.tokens}, lines={len(self.lines)})"  # no text in a repr


def filler_stats(batch: CallBatch) -> FillerStats:
    """`FillerStats` of every item of a generated `batch`."""
    if batch.source_items is not None:
        raise ConfigurationError("filler statistics need a generated batch, not files")
    lengths, starts_filler = _word_facts()
    n = len(batch.kind)
    draws = [batch.filler_draw(call) for call in range(len(batch))]
    drawn = np.concatenate([d for d, _ in draws]) if draws else np.zeros(0, dtype=np.uint8)
    words = np.concatenate([c for _, c in draws]) if draws else np.zeros(0, dtype=np.int64)
    draw = np.zeros(n, dtype=np.int64)
    np.cumsum(words[:-1], out=draw[1:])
    chars = np.zeros(n, dtype=np.int64)
    first = np.full(n, -1, dtype=np.int64)
    has = words > 0
    if drawn.size:
        at = draw[has]
        # One byte a word (the words are short): a batch holds tens of millions of them.
        chars[has] = np.add.reduceat(lengths[drawn], at, dtype=np.int64)
        first[has] = drawn[at]
    lead = np.zeros(n, dtype=bool)
    for call, facts in enumerate(batch.facts):
        lead[[int(batch.offsets[call]) + f.item for f in facts]] = True
    kind = batch.kind.astype(np.int64)
    framed = (kind == CALL) | (kind == OUTPUT)
    said_chars = np.where(framed, _FRAME_CHARS[kind] + chars + words,
                          np.where(has, chars + words - 1, 0))  # fmt: skip
    said_words = np.where(framed, words + 2, words)
    filler = ~framed & has & starts_filler[np.maximum(first, 0)] & (words <= 4)
    key = _key(kind, words, said_chars, first)
    return FillerStats(words, said_chars, said_words, filler, key, draw, lead, drawn)


@cache
def _word_facts() -> tuple[np.ndarray, np.ndarray]:
    """Each vocabulary word's length, and whether a sentence starting with it is filler."""
    vocab = vocabulary()
    lengths = np.array([len(w) for w in vocab], dtype=np.uint8)
    return lengths, np.array([bool(_FILLER.match(w)) for w in vocab])


def _key(kind: Any, words: Any, chars: Any, first: Any) -> np.ndarray:
    """Kind (3 bits), words (24), characters (30) and first word (7) in 64 bits."""
    parts = [np.asarray(x, dtype=np.uint64) for x in (kind, words, chars, np.add(first, 1))]
    out: np.ndarray = parts[0] | parts[1] << np.uint64(3) | parts[2] << np.uint64(27)
    out |= parts[3] << np.uint64(57)
    return out


def _sentence(kind: int, ids: np.ndarray) -> str:
    """The labelled filler sentence of an item of `kind` with words `ids`."""
    vocab = vocabulary()
    said = [vocab[w] for w in ids.tolist()]
    text = compose(said, wrap=_FRAMES[kind]) if kind in _FRAMES else compose(said)
    return f"{_LABELS[kind]}: {text}"


@cache
def _vocab_index() -> dict[str, int]:
    return {w: n for n, w in enumerate(vocabulary())}


@lru_cache(maxsize=1 << 16)
def _parse(sentence: str) -> tuple[int, np.ndarray] | None:
    """The (key, words) of a labelled sentence in filler form (`_sentence`), or ``None``."""
    kind = next((k for k, label in _LABELS.items() if sentence.startswith(label + ": ")), None)
    if kind is None:
        return None
    body = sentence[len(_LABELS[kind]) + 2 :]
    if kind in _FRAMES:
        prefix, suffix = _FRAMES[kind]
        if not (body.startswith(prefix) and body.endswith(suffix)):
            return None
        body = body[len(prefix) : len(body) - len(suffix)]
        if body and not body.startswith(" "):
            return None
        body = body[1:]
    index = _vocab_index()
    words = body.split(" ") if body else []
    if not all(w in index for w in words) or (not words and kind not in _FRAMES):
        return None
    ids = np.array([index[w] for w in words], dtype=np.uint8)
    if _sentence(kind, ids) != sentence:
        return None
    said = len(sentence) - len(_LABELS[kind]) - 2
    return int(_key(kind, len(ids), said, int(ids[0]) if len(ids) else -1)), ids


@cache
def _line_tokens(encoding: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Tokens of a filler line by kind: alone, before a line break, and with no word.

    The first two are plus one per word. ``None`` for an encoding the filler words are not
    single tokens in. A line break never joins the next line's first token, so a summary's
    tokens are its lines' own (`tests/simulate/test_extractive.py` checks the sums).
    """
    if encoding != "o200k_base":
        return None
    enc = get_encoding(encoding)
    alone = np.zeros(4, dtype=np.int64)
    broken = np.zeros(4, dtype=np.int64)
    empty = np.zeros(4, dtype=np.int64)
    for kind in (USER, ASSISTANT, CALL, OUTPUT):
        one = _sentence(kind, np.zeros(1, dtype=np.uint8))
        alone[kind] = len(enc.encode_ordinary(one)) - 1
        broken[kind] = len(enc.encode_ordinary(one + "\n")) - 1
        if kind in _FRAMES:
            empty[kind] = len(enc.encode_ordinary(_sentence(kind, np.zeros(0, dtype=np.uint8))))
    return alone, broken, empty


@lru_cache(maxsize=1 << 16)
def _real_tokens(line: str, encoding: str) -> tuple[int, int]:
    enc = get_encoding(encoding)
    return len(enc.encode_ordinary(line)), len(enc.encode_ordinary(line + "\n"))


@lru_cache(maxsize=1 << 16)
def _features(sentence: str) -> np.ndarray:
    row: np.ndarray = sentence_features([sentence])[0]
    return row


@dataclass(slots=True)
class _Sentences:
    """A summary's input sentences in order: real texts and filler items (see `add`)."""

    real: list[str] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)  # features of what was said
    speakers: list[str | None] = field(default_factory=list)
    item: list[int] = field(default_factory=list)  # per entry: a filler item, or -1
    text: list[int] = field(default_factory=list)  # per entry: a real sentence, or -1
    prev: list[bool] = field(default_factory=list)  # per entry: a previous summary's line

    def add(self, text: str, speaker: str | None, row: np.ndarray | None = None) -> None:
        """A real sentence (`speaker` ``None``: a line of the previous summary, read as is)."""
        self.item.append(-1)
        self.text.append(len(self.real))
        self.prev.append(speaker is None)
        self.real.append(text)
        self.rows.append(_features(text) if row is None else row)
        self.speakers.append(speaker)

    def add_items(self, items: np.ndarray, previous: bool = False) -> None:
        """Filler items (`previous`: as lines of the previous summary)."""
        self.item.extend(items.tolist())
        self.text.extend([-1] * len(items))
        self.prev.extend([previous] * len(items))

    def add_message(self, item: Message, label: str, memo: SentenceMemo) -> None:
        said, rows = memo.rows(item)
        for x, row in zip(said, rows, strict=True):  # features of the sentence as said
            self.add(x if x.startswith(label + ": ") else f"{label}: {x}", label, row)


def summarize(
    batch: CallBatch,
    stats: FillerStats,
    call: int,
    items: np.ndarray,
    *,
    budget_tokens: int,
    previous: Summary | str | None = None,
    summarizer: ExtractiveSummarizer | None = None,
    note: str | None = None,
) -> Summary:
    """``summarizer.summarize`` of the call's `items` (batch positions, in order).

    `summarizer` is the default `ExtractiveSummarizer` when not given (its `recency` and
    `encoding` are what this reads of it). `note` is the text of a system item before the
    items (a seed's carried summary).
    """
    summarizer = summarizer or ExtractiveSummarizer()
    if budget_tokens < 0:
        raise ConfigurationError(f"budget_tokens must be >= 0, got {budget_tokens}")
    found = _Sentences()
    lines = previous.lines if isinstance(previous, Summary) else (previous or "").split("\n")
    for line in lines:
        if isinstance(line, int):
            found.add_items(np.array([line]), previous=True)
        elif line.strip():
            found.add(line, None)
    memo = SentenceMemo()
    if note is not None:
        found.add_message(Message(role="system", text=note), "Note", memo)
    items = np.asarray(items, dtype=np.int64)
    kind = batch.kind[items]
    has_sentence = (stats.words[items] > 0) | (kind == CALL) | (kind == OUTPUT)
    done = 0
    for at in np.flatnonzero(stats.lead[items]).tolist():  # planted statements: read for real
        found.add_items(items[done:at][has_sentence[done:at]])
        item = int(items[at])
        statement = next(f.statement for f in batch.facts[call]
                         if f.item == item - int(batch.offsets[call]))  # fmt: skip
        text = compose([vocabulary()[w] for w in stats.ids(item).tolist()], lead=statement)
        found.add_message(Message(role="user", text=text), "User", memo)
        done = at + 1
    found.add_items(items[done:][has_sentence[done:]])
    if not found.item or budget_tokens == 0:
        return Summary(0)
    return _choose(batch, stats, found, budget_tokens, summarizer)


def _fill(ranking: np.ndarray, tokens: np.ndarray, budget: float) -> np.ndarray:
    """Take each sentence in `ranking` order that still fits `budget` (the summarizer's loop).

    The leading run that fits is found by a running sum; after it only sentences no larger
    than what is left can fit, so the loop looks at those alone.
    """
    chosen = np.zeros(len(tokens), dtype=bool)
    ranked = tokens[ranking]
    # The summarizer adds in float, one by one: so does the running sum (`np.cumsum` does too).
    run = np.cumsum(ranked)
    lead = int(np.searchsorted(run > budget, True))  # the first that does not fit
    chosen[ranking[:lead]] = True
    used = float(run[lead - 1]) if lead else 0.0
    rest = ranking[lead:]
    for k in rest[ranked[lead:] <= budget - used + 1e-6].tolist():  # (the loop decides)
        cost = float(tokens[k])
        if used + cost <= budget:
            chosen[k] = True
            used += cost
    return chosen


def _unique(batch: CallBatch, stats: FillerStats, found: _Sentences) -> np.ndarray:
    """The entries of `found` that are each sentence's first, in order.

    Sentences in filler form have keys (`FillerStats.key`) and then words to compare;
    others their text.
    """
    item = np.asarray(found.item, dtype=np.int64)
    key = stats.key[np.maximum(item, 0)].copy()
    words: dict[int, np.ndarray] = {}
    texts: dict[str, int] = {}
    for n in np.flatnonzero(item < 0).tolist():
        sentence = found.real[found.text[n]]
        parsed = _parse(sentence)
        if parsed is None:  # not filler: its text is its identity (kind 7: no item's)
            key[n] = _key(7, texts.setdefault(sentence, len(texts)), 0, -1)
        else:
            key[n], words[n] = parsed
    _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True,
                                          return_counts=True)  # fmt: skip
    keep = first[inverse] == np.arange(len(key))
    shared = counts[inverse] > 1
    if shared.any():
        # Equal keys: equal sentences when the words are (the kind is in the key).
        seen: dict[tuple[int, bytes], int] = {}
        for n in np.flatnonzero(shared).tolist():
            ids = stats.ids(int(item[n])) if item[n] >= 0 else words.get(n)
            if ids is None:  # an equal text (kind 7)
                keep[n] = bool(first[inverse[n]] == n)
                continue
            keep[n] = seen.setdefault((int(key[n]), ids.astype(np.int64).tobytes()), n) == n
    out: np.ndarray = np.flatnonzero(keep)
    return out


def _choose(batch: CallBatch, stats: FillerStats, found: _Sentences, budget: int,
            summarizer: ExtractiveSummarizer) -> Summary:  # fmt: skip
    """`ExtractiveSummarizer.summarize`'s choice over the unique sentences of `found`."""
    keep = _unique(batch, stats, found)
    item = np.asarray(found.item, dtype=np.int64)[keep]
    real = np.asarray(found.text, dtype=np.int64)[keep]
    prev = np.asarray(found.prev, dtype=bool)[keep]
    n = len(keep)
    is_real = real >= 0
    value = np.empty(n, dtype=np.float64)
    tokens = np.empty(n, dtype=np.float64)
    if is_real.any():
        texts = [found.real[e] for e in real[is_real].tolist()]
        rows = np.stack([found.rows[e] for e in real[is_real].tolist()])
        speakers = [found.speakers[e] for e in real[is_real].tolist()]
        value[is_real] = sentence_values(texts, rows, speakers)
        tokens[is_real] = [len(t) for t in texts]
    if (~is_real).any():
        fill = item[~is_real]
        fk = batch.kind[fill]
        # `sentence_values` for a sentence with no feature: 0.1, times the speaker's weight
        # (a previous summary's line has none), the filler's or a short sentence's.
        base = np.select([fk == USER, fk == ASSISTANT], [_BASE[USER], _BASE[ASSISTANT]], 0.1)
        base = np.where(prev[~is_real], 0.1, base)
        filler = stats.filler[fill] & ~prev[~is_real]
        short = (stats.said_words[fill] <= 3) & ~filler
        value[~is_real] = np.where(filler, base * 0.2, np.where(short, base * 0.3, base))
        tokens[~is_real] = _LABEL_CHARS[fk] + stats.chars[fill]
    tokens = tokens / 4.0 + 1.0
    position = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    value = value + summarizer.recency * position
    ranking = np.argsort(-(value / np.sqrt(tokens)), kind="stable")
    chosen = _fill(ranking, tokens, budget)
    # The chosen lines' tokens, each alone and before a line break: the text's are their sum.
    filler_tokens = _line_tokens(summarizer.encoding)
    alone = np.zeros(n, dtype=np.int64)
    broken = np.zeros(n, dtype=np.int64)
    for k in np.flatnonzero(is_real & chosen).tolist():
        alone[k], broken[k] = _real_tokens(found.real[int(real[k])], summarizer.encoding)
    written: dict[int, str] = {}
    if filler_tokens is not None and (~is_real).any():
        a, b, empty = filler_tokens
        fk = batch.kind[item[~is_real]]
        words = stats.words[item[~is_real]]
        alone[~is_real] = np.where(words > 0, a[fk] + words, empty[fk])
        broken[~is_real] = np.where(words > 0, b[fk] + words, -1)
        for k in np.flatnonzero(~is_real & (broken < 0)).tolist():  # an empty frame: count it
            written[k] = _sentence(int(batch.kind[item[k]]), stats.ids(int(item[k])))
            alone[k], broken[k] = _real_tokens(written[k], summarizer.encoding)
    elif (~is_real).any():
        for k in np.flatnonzero(~is_real & chosen).tolist():
            written[k] = _sentence(int(batch.kind[item[k]]), stats.ids(int(item[k])))
            alone[k], broken[k] = _real_tokens(written[k], summarizer.encoding)
    while True:
        kept = np.flatnonzero(chosen)
        count = int(broken[kept[:-1]].sum() + alone[kept[-1]]) if len(kept) else 0
        if count <= budget:
            break
        chosen[kept[int(np.argmin(value[kept]))]] = False
    lines: list[int | str] = []
    ident: list[Any] = []
    for k in kept.tolist():
        if real[k] < 0:
            lines.append(int(item[k]))
            ident.append((int(batch.kind[item[k]]), stats.ids(int(item[k])).tobytes()))
            continue
        # A real sentence may hold line breaks: the next summary reads it by lines.
        for part in found.real[int(real[k])].split("\n"):
            lines.append(part)
            ident.append(_canonical(part))
    return Summary(count, tuple(lines), tuple(ident), batch.kind, stats)


def from_text(text: str, tokens: int = 0) -> Summary:
    """A `Summary` of a text made elsewhere (a ledger, say): its lines are text."""
    lines = tuple(text.split("\n")) if text else ()
    return Summary(tokens, lines, tuple(_canonical(line) for line in lines), text=text)


def joined(parts: Sequence[Summary]) -> Summary:
    """Summaries one after the other, as their items' texts join (one per line)."""
    first = next((p for p in parts if p._stats is not None), None)
    if first is None:  # text lines only
        return from_text("\n".join(p.text for p in parts))
    return Summary(
        0,
        tuple(x for p in parts for x in p.lines),
        tuple(x for p in parts for x in p.ident),
        first._kinds,
        first._stats,
    )


def messages(batch: CallBatch, stats: FillerStats | None, call: int, src: np.ndarray,
             notes: Mapping[int, str]) -> list[Item]:  # fmt: skip
    """The messages among unit items `src` that hold more than filler: notes, planted leads.

    (Batch items are below ``len(batch.kind)``; a seed's note is `notes`' key above.) A batch
    of given calls (`stats` ``None``) has no filler: every item, as it is.
    """
    if batch.source_items is not None:
        return source_items(batch, call, src, notes)
    assert stats is not None
    out: list[Item] = []
    statements = {int(batch.offsets[call]) + f.item: f.statement
                  for f in (batch.facts[call] if batch.facts else ())}  # fmt: skip
    for item in src.tolist():
        if item >= len(batch.kind):
            out.append(Message(role="system", text=notes[item]))
        elif stats.lead[item]:
            said = [vocabulary()[w] for w in stats.ids(item).tolist()]
            out.append(Message(role="user", text=compose(said, lead=statements[item])))
    return out


def source_items(batch: CallBatch, call: int, src: np.ndarray,
                 notes: Mapping[int, str]) -> list[Item]:  # fmt: skip
    """The items of a batch of given calls at unit items `src` (a note: a system message)."""
    assert batch.source_items is not None
    given, first, n = batch.source_items[call], int(batch.offsets[call]), len(batch.kind)
    return [Message(role="system", text=notes[x]) if x >= n else given[x - first]
            for x in src.tolist()]  # fmt: skip


def summarize_items(items: Sequence[Item], budget: int, previous: Summary | None,
                    summarizer: ExtractiveSummarizer) -> Summary:  # fmt: skip
    """``summarizer.summarize`` of real items, as the strategies call it (no previous: ``None``).

    Its tokens are the text's in the summarizer's encoding, as `summarize`'s are.
    """
    prior = previous.text if previous is not None else None
    if type(summarizer) is ExtractiveSummarizer:  # the same summarizer, reading through a memo
        summarizer = _sharing(summarizer.recency, summarizer.encoding)  # all runs share
    text = summarizer.summarize(items, budget_tokens=budget, previous=prior or None)
    return from_text(text, len(get_encoding(summarizer.encoding).encode_ordinary(text)))


@cache
def shared_memo() -> SentenceMemo:
    """The memo of items' sentences every summary and ledger made on the arrays shares.

    The strategies of a benchmark fold the same items again and again.
    """
    return SentenceMemo(1 << 15)


@lru_cache(maxsize=16)
def _sharing(recency: float, encoding: str) -> ExtractiveSummarizer:
    return ExtractiveSummarizer(recency=recency, encoding=encoding, memo=shared_memo())


def _canonical(line: str) -> Any:
    """A line's identity: a filler sentence's kind and words, any other line itself."""
    parsed = _parse(line)
    return line if parsed is None else (parsed[0] & 7, parsed[1].tobytes())
