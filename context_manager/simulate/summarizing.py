"""Summarizing compaction in the rank loop: each session's summary item, folded at events.

`RollingSummary` with the extractive summarizer keeps one summary item first in a session
(the *front*). In the rank loop its trigger, its turns and its cut are arrays; when it fires,
the folded window ``[start, cut)`` and the previous summary go through `extractive.summarize`
(a generated call's arrays, few texts built), one session at a time: compactions are rare,
responses are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compaction.summarizers import ExtractiveSummarizer
from ..items import Message
from ..rollover import RolloverPolicy
from ..tokens import TokenCounter
from .extractive import FillerStats, Summary, summarize
from .sessions import Units
from .workloads import CallBatch

__all__ = ["Fronts", "carried_seeds", "summary"]

I64 = np.int64


@dataclass(slots=True)
class Fronts:
    """What summarizing needs beyond the arrays: the calls' words and each summary's text.

    Slots are the rank loop's unit order (`begin`).
    """

    batch: CallBatch
    stats: FillerStats
    src: np.ndarray  # per unit item: its batch item
    unit_call: np.ndarray  # per unit: its call
    counter: TokenCounter
    budget: int
    summarizer: ExtractiveSummarizer
    shared: bool = False  # the prompt cache is the organization's: sessions share entries
    notes: dict[int, str] = field(default_factory=dict)  # a seed's note: its unit item's text
    memo: dict[Any, Summary] = field(default_factory=dict)  # summaries made, in all passes
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    texts: dict[int, Summary] = field(default_factory=dict)
    _ids: dict[Any, int] = field(default_factory=dict)  # equal texts, equal ids (cache keys)
    _used: dict[tuple[int, int], float] = field(default_factory=dict)
    _holders: dict[tuple[int, int], int] = field(default_factory=dict)  # (call, id) -> unit
    _held: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    _last: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clashes: set[int] = field(default_factory=set)
    """Calls where two sessions held equal summaries under an organization-wide cache: the
    rank loop does not step sessions in time order, so such calls go to the reference path."""

    def final(self, front: np.ndarray) -> dict[int, Summary]:
        """Each unit's summary text after its last response (`front`: per unit, its tokens)."""
        return {int(self.order[slot]): text for slot, text in self.texts.items()
                if front[self.order[slot]] > 0}  # fmt: skip

    def held(self, call: int, text: Any) -> bool:
        """Whether a session of `call` held a summary of `text` (its `Summary.ident`)."""
        ident = self._ids.get(text)
        return ident is not None and (call, ident) in self._holders

    def begin(self, order: np.ndarray) -> None:
        """Start a rank loop whose slot ``k`` is unit ``order[k]``."""
        self.order = order
        self.texts = {}
        self._held = np.full(len(order), -1, dtype=I64)  # the summary each slot stored last
        self._last = np.zeros(len(order))  # and when

    def summary(self, call: int, src: np.ndarray, budget: int, previous: Summary | None,
                summarizer: ExtractiveSummarizer) -> Summary:  # fmt: skip
        """The summary of a call's unit items `src`, and its tokens (a note comes first)."""
        note = self.notes.get(int(src[0])) if len(src) and src[0] >= len(self.batch.kind) else None
        items = src[1:] if note is not None else src
        return summary(self.batch, self.stats, self.memo, call, items, budget, previous,
                       summarizer, note)  # fmt: skip

    def cached(self, slots: np.ndarray, front_id: np.ndarray, now: np.ndarray,
               ttl: float) -> np.ndarray:  # fmt: skip
        """Whether each request's summary item is in a live cached path, and store it.

        A summary is a cache key by its text: a request matches it when any earlier response
        (of the session, or of the call under an organization-wide cache) stored a path that
        began with it, within the time to live. Each slot keeps the summary it stored last
        and when; the others wait in `_used` until one comes back.
        """
        held = self._held[slots]
        has = front_id >= 0
        same = has & (front_id == held)
        out: np.ndarray = same & (now - self._last[slots] < ttl)
        for n in np.flatnonzero(has & ~same).tolist():  # a new summary (rare)
            slot = int(slots[n])
            unit = int(self.order[slot])
            call = int(self.unit_call[unit])
            scope = call if self.shared else -1 - unit
            if held[n] >= 0:
                self._used[(scope, int(held[n]))] = float(self._last[slot])
            key = (scope, int(front_id[n]))
            if self.shared and self._holders.setdefault(key, unit) != unit:
                self.clashes.add(call)
            last = self._used.get(key)
            out[n] = last is not None and now[n] - last < ttl
            self._held[slot] = front_id[n]
        self._last[slots[has]] = now[has]
        return out

    def fold(self, slots: np.ndarray, start: np.ndarray, cut: np.ndarray, front: np.ndarray,
             front_id: np.ndarray) -> None:  # fmt: skip
        """Fold each slot's ``[start, cut)`` and its summary into a new summary, in place."""
        for slot, a, b in zip(slots.tolist(), start.tolist(), cut.tolist(), strict=True):
            call = int(self.unit_call[self.order[slot]])
            previous = self.texts.get(slot) if front[slot] > 0 else None
            made = self.summary(call, self.src[a:b], self.budget, previous, self.summarizer)
            if made.tokens:
                front[slot] = item_tokens(self.counter, made, self.summarizer)
                front_id[slot] = self._ids.setdefault(made.ident, len(self._ids))
                self.texts[slot] = made
            else:  # nothing fit the budget: the turns go, and no item takes their place
                front[slot] = 0
                front_id[slot] = -1
                self.texts.pop(slot, None)


def summary(batch: CallBatch, stats: FillerStats, memo: dict[Any, Summary], call: int,
            items: np.ndarray, budget: int, previous: Summary | None,
            summarizer: ExtractiveSummarizer, note: str | None = None) -> Summary:  # fmt: skip
    """`extractive.summarize`, made once per input (`memo`: kept across the passes)."""
    # A folded window is a run of the batch's items (a seed's and then the session's own).
    run = len(items) and int(items[-1]) - int(items[0]) + 1 == len(items)
    span = (int(items[0]), len(items)) if run else items.tobytes()
    prior = previous.ident if previous is not None else None
    key = (call, span, note, prior, budget, summarizer.recency, summarizer.encoding)
    made = memo.get(key)
    if made is None:
        made = summarize(batch, stats, call, items, budget_tokens=budget, previous=previous,
                         summarizer=summarizer, note=note)  # fmt: skip
        memo[key] = made
    return made


def item_tokens(counter: TokenCounter, made: Summary, summarizer: ExtractiveSummarizer) -> int:
    """Tokens of a system item holding summary `made`."""
    if summarizer.encoding == counter.profile.encoding:
        return counter.profile.item_overhead_tokens + made.tokens
    return counter.item(Message(role="system", text=made.text)).full.total


def carried_seeds(
    batch: CallBatch,
    stats: FillerStats,
    memo: dict[Any, Summary],
    units: Units,
    final: Mapping[int, Summary],
    rollover: RolloverPolicy,
    counter: TokenCounter,
    fronts: Fronts | None,
) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[tuple[int, int], str], set[int]]:
    """The seeds that carry a summary, given each session's last summary (`final`, by unit).

    `RolloverPolicy.draft` on the arrays: with ``carry="summary"``, or ``recent`` after a
    session that kept a summary, the recent turns get the budget less the summary's reserve,
    and a note first carries the older history folded into that summary. Returns the seeds
    (for `plan_sessions`), the notes' texts, and the calls whose note repeats a summary a
    session held under a shared cache (the reference path takes those).
    """
    seeds: dict[tuple[int, int], tuple[int, int]] = {}
    notes: dict[tuple[int, int], str] = {}
    clashes: set[int] = set()
    assert units.turns is not None
    reserve = min(rollover.summary_tokens, rollover.budget_tokens)
    room = max(reserve - counter.profile.item_overhead_tokens, 0)
    chosen = rollover.summarizer
    summarizer = chosen if isinstance(chosen, ExtractiveSummarizer) else ExtractiveSummarizer()
    for unit in np.flatnonzero(units.index[1:] > 0).tolist():
        call, session = int(units.call[unit]), int(units.index[unit + 1])
        previous = final.get(unit)
        if rollover.carry == "recent" and previous is None:
            continue  # recent turns alone, as planned
        first = units.turns.first(call, int(units.boundary[unit + 1]),
                                  rollover.budget_tokens - reserve)  # fmt: skip
        older = np.arange(int(batch.offsets[call]), first, dtype=I64)
        note: Summary | None = None
        if reserve and (len(older) or previous):
            if not len(older) and previous is not None and counter.text(previous.text) <= room:
                note = previous  # nothing new to fold, and the summary fits
            else:
                note = summary(batch, stats, memo, call, older, room, previous, summarizer)
        text = note.text if note is not None else ""
        tokens = counter.item(Message(role="system", text=text)).full.total if text else 0
        seeds[(call, session)] = (rollover.budget_tokens - reserve, tokens)
        if note is not None and text:
            notes[(call, session)] = text
            if fronts is not None and fronts.shared and fronts.held(call, note.ident):
                clashes.add(call)
    return seeds, notes, clashes
