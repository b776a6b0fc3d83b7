"""What the benchmark reads of retained items: BM25 answerability, presence, compression.

A conversation's items are read once (`CallTexts`) and then scored for every strategy from
what that strategy's run retained: BM25 over the retained items (is a fact in the top 3 items
retrieved for its question), planted-fact presence, and summary compression.

BM25 is Okapi BM25 as ``rank_bm25.BM25Okapi`` scores it (k1 1.5, b 0.75, a floor of 0.25 times
the average idf for terms in more than half of the items), written with NumPy over term ids,
in the same order of operations, so the scores and the ranking are the same bit for bit
(``tests/bench/test_retrieval.py`` checks it against ``rank_bm25``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..items import Item, Message
from ..simulate.facts import item_text, normalize, presence, words
from ..simulate.workloads import PlantedFact
from ..tokens import TokenCounter

__all__ = ["CallTexts", "Docs", "entries", "ranking", "scores"]

K1 = 1.5
B = 0.75
EPSILON = 0.25
I64 = np.int64


@dataclass(frozen=True, slots=True)
class Docs:
    """Items as BM25 reads them: per item its length and its distinct terms with counts.

    Each item's terms are in the order it first uses them, the items' runs one after the
    other (`start` is where an item's run begins; the last entry is the total).
    """

    norms: list[str]
    """Each item's normalized text."""
    lengths: np.ndarray
    start: np.ndarray
    terms: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, texts: Sequence[str], vocab: dict[str, int]) -> Docs:
        """`texts` as documents (an empty one is one empty word, as ``rank_bm25`` takes it).

        New words get the next ids in `vocab`.
        """
        said = [words(t) or [""] for t in texts]
        lengths = np.fromiter((len(w) for w in said), dtype=I64, count=len(said))
        flat = [w for ws in said for w in ws]
        for w in set(flat).difference(vocab):
            vocab[w] = len(vocab)
        ids = np.fromiter(map(vocab.__getitem__, flat), dtype=I64, count=len(flat))
        owner = np.repeat(np.arange(len(said), dtype=I64), lengths)
        # Distinct (item, term) pairs, each item's in the order of their first use.
        keys = owner * max(len(vocab), 1) + ids
        unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
        order = np.argsort(first)
        pair_owner = owner[first[order]]
        start = np.searchsorted(pair_owner, np.arange(len(said) + 1))
        return cls([" ".join(ws) for ws in said], lengths, start.astype(I64),
                   unique[order] % max(len(vocab), 1), counts[order])  # fmt: skip

    def pick(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Items `rows` in that order: lengths, and terms, counts and owner (row) per pair."""
        a, b = self.start[rows], self.start[rows + 1]
        sizes = b - a
        total = int(sizes.sum())
        # Gather the runs [a, b) one after the other without a Python loop.
        base = np.repeat(a - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        at = base + np.arange(total, dtype=I64)
        owner = np.repeat(np.arange(len(rows), dtype=I64), sizes)
        return self.lengths[rows], self.terms[at], self.counts[at], owner


def scores(
    lengths: np.ndarray,
    terms: np.ndarray,
    counts: np.ndarray,
    owner: np.ndarray,
    questions: Sequence[Sequence[str]],
    vocab: dict[str, int],
) -> list[np.ndarray]:
    """Each item's BM25 score for each question (its normalized words).

    The items are given as `Docs.pick` gives them (at least one).
    """
    n = len(lengths)
    df = np.bincount(terms)
    # The order rank_bm25 first meets each term: where each first appears.
    first = np.full(len(df), len(terms), dtype=I64)
    np.minimum.at(first, terms, np.arange(len(terms), dtype=I64))
    present = np.flatnonzero(df)
    order = present[np.argsort(first[present])]
    found, at = np.unique(df[order], return_inverse=True)
    logs = np.array([math.log(n - f + 0.5) - math.log(f + 0.5) for f in found.tolist()])
    idf_in_order = logs[at]
    # rank_bm25 sums the idfs one by one in that order: so does a cumulative sum.
    average = float(np.cumsum(idf_in_order)[-1]) / len(order)
    idf_in_order = np.where(idf_in_order < 0, EPSILON * average, idf_in_order)
    idf = np.zeros(len(df))
    idf[order] = idf_in_order
    avgdl = int(lengths.sum()) / n
    norm = K1 * (1 - B + B * lengths / avgdl)
    freqs: dict[int, np.ndarray] = {}
    out = []
    for question in questions:
        score = np.zeros(n)
        for w in question:
            term = vocab.get(w)
            if term is None or term >= len(df) or not df[term]:
                continue  # rank_bm25 adds 0 for a term no item has
            q_freq = freqs.get(term)
            if q_freq is None:
                hit = terms == term
                q_freq = freqs[term] = np.zeros(n, dtype=I64)
                q_freq[owner[hit]] = counts[hit]
            score += float(idf[term]) * (q_freq * (K1 + 1) / (q_freq + norm))
        out.append(score)
    return out


def ranking(score: np.ndarray, top: int) -> list[int]:
    """The `top` items by score, an earlier item first among equals (a stable sort)."""
    out: list[int] = np.argsort(-score, kind="stable")[:top].tolist()
    return out


@dataclass(slots=True)
class CallTexts:
    """A conversation's items read once, for every strategy's final window.

    An entry of a final window is an item's index in the conversation, or the text of an item
    the run made (a summary, a ledger, a seed's note: a ``system`` message).
    """

    texts: list[str]
    roles: list[str]
    facts: tuple[PlantedFact, ...]
    questions: list[list[str]]
    probes: list[list[str]]
    vocab: dict[str, int] = field(default_factory=dict)
    docs: Docs | None = None
    made: dict[str, Docs] = field(default_factory=dict)
    tokens: list[int] | None = None
    """Each item's text in tokens, when known (else counted when first needed)."""
    _keys: tuple[np.ndarray, dict[tuple[str, str], int], np.ndarray, np.ndarray] | None = None
    _counted: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Sequence[Item], facts: Sequence[PlantedFact],
           questions: Sequence[str]) -> CallTexts:  # fmt: skip
        """Read `items` (and the facts' questions and probes)."""
        out = cls(
            [item_text(i) for i in items],
            [i.role if isinstance(i, Message) else i.type for i in items],
            tuple(facts),
            [words(q) for q in questions],
            [[f" {normalize(p)} " for p in f.probes] for f in facts],
        )
        out.docs = Docs.of(out.texts, out.vocab)
        return out

    def _made(self, text: str) -> Docs:
        docs = self.made.get(text)
        if docs is None:
            docs = self.made[text] = Docs.of([text], self.vocab)
        return docs

    def presence(self, held: Sequence[int | str]) -> dict[str, Any]:
        """`facts.fact_presence` of a final window."""
        assert self.docs is not None
        text = "\n".join(self.texts[e] if isinstance(e, int) else e for e in held)
        norms = self.docs.norms
        said = (norms[e] if isinstance(e, int) else normalize(e) for e in held)
        return presence(self.facts, text, f" {' '.join(s for s in said if s)} ")

    def scores(self, held: Sequence[int | str]) -> tuple[list[str], list[np.ndarray]]:
        """A final window's documents (items with text), and their BM25 scores per question."""
        assert self.docs is not None
        parts: list[tuple[np.ndarray, ...]] = []
        norms: list[str] = []
        run: list[int] = []

        def flush() -> None:
            if run:
                assert self.docs is not None
                parts.append(self.docs.pick(np.array(run, dtype=I64)))
                norms.extend(self.docs.norms[r] for r in run)
                run.clear()

        for e in held:
            if isinstance(e, int):
                if self.texts[e]:  # an item with no text is no document
                    run.append(e)
            elif e:
                flush()
                made = self._made(e)
                parts.append(made.pick(np.zeros(1, dtype=I64)))
                norms.append(made.norms[0])
        flush()
        if not parts:
            return [], [np.zeros(0) for _ in self.questions]
        lengths = np.concatenate([p[0] for p in parts])
        # Owners count from 0 in each part: shift them to the part's first row.
        shift = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
        owner = np.concatenate([p[3] + k for p, k in zip(parts, shift.tolist(), strict=True)])
        terms = np.concatenate([p[1] for p in parts])
        counts = np.concatenate([p[2] for p in parts])
        return norms, scores(lengths, terms, counts, owner, self.questions, self.vocab)

    def answerable(self, held: Sequence[int | str], top: int = 3) -> list[bool]:
        """Per fact: is one of its probes in the `top` items BM25 retrieves for its question?"""
        norms, per_question = self.scores(held)
        return [
            any(p in f" {norms[b]} " for b in ranking(score, top) for p in said)
            for score, said in zip(per_question, self.probes, strict=True)
        ]

    def compression(self, held: Sequence[int | str], counter: TokenCounter) -> float | None:
        """Tokens of the conversation no longer in context, per token of summary or ledger."""
        if self.tokens is None:
            self.tokens = [counter.text(t) for t in self.texts]
        if self._keys is None:
            ids: dict[tuple[str, str], int] = {}
            said = [ids.setdefault(k, len(ids)) for k in zip(self.roles, self.texts, strict=True)]
            self._keys = (np.array(said, dtype=I64), ids, np.array(self.tokens, dtype=I64),
                          np.array([r == "system" for r in self.roles], dtype=bool))  # fmt: skip
        keys, ids, tokens, system = self._keys
        rows = np.fromiter((e for e in held if isinstance(e, int)), dtype=I64)
        made = [e for e in held if isinstance(e, str)]
        memory = int(tokens[rows[system[rows]]].sum()) + sum(map(self._made_tokens(counter), made))
        if not memory:
            return None
        # A multiset: a text said twice and kept once counts once as gone.
        kept = np.bincount(keys[rows], minlength=len(ids))
        for text in made:
            k = ids.get(("system", text))
            if k is not None:
                kept[k] += 1
        spoken = np.bincount(keys, minlength=len(ids))
        each = np.zeros(len(ids), dtype=I64)
        each[keys] = tokens  # equal texts, equal tokens
        gone = int(tokens.sum()) - int((np.minimum(spoken, kept) * each).sum())
        return gone / memory

    def _made_tokens(self, counter: TokenCounter) -> Callable[[str], int]:
        def count(text: str) -> int:
            n = self._counted.get(text)
            if n is None:
                n = self._counted[text] = counter.text(text)
            return n

        return count


def entries(texts: CallTexts, final: Sequence[Item]) -> list[int | str]:
    """A final window of items (the reference path's) as `CallTexts` entries.

    An item with the role and text of one of the call's is that item (an original, its text
    form, or a turn a seed carried); any other is a text the run made (a ``system`` item).
    """
    index: dict[tuple[str, str], int] = {}
    for n, key in enumerate(zip(texts.roles, texts.texts, strict=True)):
        index.setdefault(key, n)
    out: list[int | str] = []
    for item in final:
        text = item_text(item)
        at = index.get((item.role if isinstance(item, Message) else item.type, text))
        out.append(at if at is not None else text)
    return out
