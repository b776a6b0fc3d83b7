"""Summarizing compaction in the rank loop: each session's summary and ledger items.

`RollingSummary` and `Ledger` with the extractive summarizer keep their items first in a
session (the *front*: a summary, or a ledger and a summary after it). In the rank loop their
trigger, turns and cut are arrays; when one fires, the folded window ``[start, cut)`` goes
through `extractive.summarize` (a generated call's arrays, few texts built) or the ledger's
own `Ledger.facts` (only planted statements and notes hold facts), one session at a time:
compactions are rare, responses are not. Calls from files (`given.batch_from_items`) have
no filler arrays: their items, and a seed's note as a system message, go through the
summarizer and the ledger themselves, as the strategies and the rollover give them.

A front item is a cache key by its text; the server's truncation drops front items first,
oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..compaction.strategies import Ledger
from ..compaction.summarizers import ExtractiveSummarizer
from ..items import Message
from ..rollover import RolloverPolicy
from ..tokens import TokenCounter
from .extractive import (
    FillerStats,
    Summary,
    from_text,
    joined,
    messages,
    shared_memo,
    source_items,
    summarize,
    summarize_items,
)
from .facts import item_text
from .sessions import Units
from .texts import compose, vocabulary
from .workloads import CallBatch

__all__ = ["Front", "Fronts", "carried_seeds", "final_texts", "summary"]

I64 = np.int64


@dataclass(frozen=True, slots=True)
class Front:
    """An item first in a session: a summary or a ledger, its tokens as an item."""

    summary: Summary
    tokens: int
    ledger: bool = False
    kept: bool = False
    """A seed's note a hierarchical fold left first (it begins no turn, so none folds it)."""


@dataclass(slots=True)
class Fronts:
    """What summarizing needs beyond the arrays: the calls' words and each session's front.

    Slots are the rank loop's unit order (`begin`). The rank loop keeps per slot the front's
    tokens and an id of its items' texts (`front`, `front_id`); this keeps the items.
    """

    batch: CallBatch
    stats: FillerStats | None  # ``None``: a batch of given calls (their items are read)
    src: np.ndarray  # per unit item: its batch item
    unit_call: np.ndarray  # per unit: its call
    counter: TokenCounter
    shared: bool = False  # the prompt cache is the organization's: sessions share entries
    # A seed's note by its unit item, and the summaries made in all passes: texts, kept out
    # of any repr.
    notes: dict[int, str] = field(default_factory=dict, repr=False)
    memo: dict[Any, Summary] = field(default_factory=dict, repr=False)
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    items: dict[int, list[Front]] = field(default_factory=dict)
    _ids: dict[Any, int] = field(default_factory=dict)  # equal texts, equal ids (cache keys)
    _used: dict[tuple[int, Any], float] = field(default_factory=dict)
    _holders: dict[tuple[int, Any], set[int]] = field(default_factory=dict)  # -> units
    _held: list[tuple[Any, ...]] = field(default_factory=list)  # per slot: the front stored
    _system: dict[int, set[str]] = field(default_factory=dict, repr=False)  # given calls
    _last: np.ndarray = field(default_factory=lambda: np.zeros(0))  # and when
    _state: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    """Per slot: how many front items it has."""
    summaries: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    """Per slot: how many of them are summaries."""
    clashes: set[int] = field(default_factory=set)
    """Calls where two sessions held equal front items under an organization-wide cache: the
    rank loop does not step sessions in time order, so such calls go to the reference path."""

    def begin(self, order: np.ndarray) -> None:
        """Start a rank loop whose slot ``k`` is unit ``order[k]``."""
        self.order = order
        self.items = {}
        self._held = [()] * len(order)
        self._last = np.zeros(len(order))
        self._state = np.full(len(order), -1, dtype=I64)
        self.count = np.zeros(len(order), dtype=I64)
        self.summaries = np.zeros(len(order), dtype=I64)

    def final(self) -> dict[int, Summary]:
        """Each unit's memory after its last response: its front items' text, in order."""
        out = {}
        for slot, front in self.items.items():
            memory = [f.summary for f in front if not f.kept]
            if memory:
                out[int(self.order[slot])] = joined(memory)
        return out

    def texts(self, unit: int) -> list[str]:
        """The texts of unit `unit`'s front items after its last response, in order."""
        slot = np.flatnonzero(self.order == unit)
        front = self.items.get(int(slot[0]), []) if len(slot) else []
        return [f.summary.text for f in front]

    def idents(self) -> dict[int, tuple[Any, ...]]:
        """Each front id's items' idents (`front_id`'s inverse)."""
        return {n: key for key, n in self._ids.items()}

    def held(self, call: int, ident: Any, other_than: int) -> bool:
        """Whether a session of `call` but unit `other_than` began a path with `ident`."""
        return bool(self._holders.get((call, (ident,)), set()) - {other_than})

    def summary(self, call: int, src: np.ndarray, budget: int, previous: Summary | None,
                summarizer: ExtractiveSummarizer) -> Summary:  # fmt: skip
        """The summary of a call's unit items `src` (a seed's note may come first)."""
        note = self.notes.get(int(src[0])) if len(src) and src[0] >= len(self.batch.kind) else None
        items = src[1:] if note is not None else src
        return summary(self.batch, self.stats, self.memo, call, items, budget, previous,
                       summarizer, note)  # fmt: skip

    def _set(self, slot: int, front: list[Front], tokens: np.ndarray, ids: np.ndarray) -> None:
        if self.batch.source_items is not None and front:
            call = int(self.unit_call[self.order[slot]])
            system = self._system.get(call)
            if system is None:
                system = self._system[call] = system_texts(self.batch, call)
            if system and system & {f.summary.text for f in front}:
                self.clashes.add(call)  # a front item is a cache key a system item has too
        self.items[slot] = front
        self.count[slot] = len(front)
        self.summaries[slot] = sum(not (f.ledger or f.kept) for f in front)
        tokens[slot] = sum(f.tokens for f in front)
        key = tuple(f.summary.ident for f in front)
        ids[slot] = self._ids.setdefault(key, len(self._ids)) if front else -1

    def drop(self, slots: np.ndarray, room: np.ndarray, tokens: np.ndarray,
             ids: np.ndarray) -> np.ndarray:  # fmt: skip
        """Truncation: each slot's oldest front items go until the rest fit `room` tokens.

        Returns how many went.
        """
        out = np.zeros(len(slots), dtype=I64)
        for n, (slot, fits) in enumerate(zip(slots.tolist(), room.tolist(), strict=True)):
            front = self.items.get(slot, [])
            left = sum(f.tokens for f in front)
            while front and left > fits:
                left -= front[0].tokens
                front = front[1:]
                out[n] += 1
            self._set(slot, front, tokens, ids)
        return out

    def cached(self, slots: np.ndarray, front_id: np.ndarray, front: np.ndarray,
               start: np.ndarray, now: np.ndarray, ttl: float) -> np.ndarray:  # fmt: skip
        """Tokens of each request's front in a live cached path; then store the front.

        An item first after the instructions is a cache key by its text (a front item, or
        a seed's note beginning the window): a request matches its front's first items as
        far as an earlier response (of the session, or of the call under an
        organization-wide cache) stored a path that began with them, within the time to
        live. Each slot keeps what it stored first last, and when; the others wait in
        `_used` until one comes back.
        """
        first = self.src[np.minimum(start, len(self.src) - 1)]
        note = first >= len(self.batch.kind)
        state = np.where(front_id >= 0, front_id, np.where(note, -2 - first, -1))
        same = state == self._state[slots]
        live = now - self._last[slots] < ttl
        out: np.ndarray = np.where(same & (front_id >= 0) & live, front, 0).astype(I64)
        for n in np.flatnonzero(~same).tolist():  # a new front, or a note first (rare)
            slot = int(slots[n])
            unit = int(self.order[slot])
            call = int(self.unit_call[unit])
            scope = call if self.shared else -1 - unit
            held = self._held[slot]
            for k in range(1, len(held) + 1):  # what the slot held waits
                self._used[(scope, held[:k])] = float(self._last[slot])
            items = self.items.get(slot, []) if front_id[n] >= 0 else []
            key: tuple[Any, ...] = tuple(f.summary.ident for f in items)
            if not items and note[n]:
                key = (from_text(self.notes[int(first[n])]).ident,)
            for k in range(1, len(key) + 1):
                if self.shared:
                    holders = self._holders.setdefault((call, key[:k]), set())
                    holders.add(unit)
                    if len(holders) > 1:
                        self.clashes.add(call)
                seen = self._used.get((scope, key[:k]))
                if not items or seen is None or now[n] - seen >= ttl:
                    break
                out[n] += items[k - 1].tokens
            self._held[slot] = key
        self._state[slots] = state
        stored = state != -1
        self._last[slots[stored]] = now[stored]
        return out

    def merge(self, rule: Any, slots: np.ndarray, tokens: np.ndarray, ids: np.ndarray) -> None:
        """`Hierarchical`: each slot's summaries merged into one, first."""
        for slot in slots.tolist():
            call = int(self.unit_call[self.order[slot]])
            front = self.items.get(slot, [])
            previous = joined([f.summary for f in front if not f.kept])
            made = self.summary(call, np.zeros(0, dtype=I64), rule.budget, previous,
                                rule.summarizer)  # fmt: skip
            kept = [f for f in front if f.kept]
            self._set(slot, [*self._item(made, rule.summarizer), *kept], tokens, ids)

    def fold(self, rule: Any, slots: np.ndarray, start: np.ndarray, cut: np.ndarray,
             tokens: np.ndarray, ids: np.ndarray, window: np.ndarray | None = None,
             ) -> None:  # fmt: skip
        """Fold each slot's ``[start, cut)`` into its front under `rule`, in place.

        `RollingSummary`: one summary of the folded items and the summaries before, first.
        `Ledger`: the ledger of their facts first, then (with a summary budget) a summary.
        `Hierarchical`: a summary of the folded turns after the summaries before; what came
        before the first turn (from `window`, a seed's note) stays, first after them.
        """
        if rule.chunk:
            assert window is not None
            self._fold_chunk(rule, slots, start, cut, tokens, ids, window)
            return
        for slot, a, b in zip(slots.tolist(), start.tolist(), cut.tolist(), strict=True):
            call = int(self.unit_call[self.order[slot]])
            front = self.items.get(slot, [])
            summaries = [f.summary for f in front if not f.ledger]
            prior = joined(summaries) if summaries else None
            folded = self.src[a:b]
            if rule.ledger is None:
                made = self.summary(call, folded, rule.budget, prior, rule.summarizer)
                kept = [f for f in front if f.ledger]
                self._set(slot, [*self._item(made, rule.summarizer), *kept], tokens, ids)
                continue
            ledger: Ledger = replace(rule.ledger, memo=shared_memo())
            ledgers = [f.summary.text for f in front if f.ledger]
            said = messages(self.batch, self.stats, call, folded, self.notes)
            text = ledger.text(ledger.facts(said, ledgers[-1] if ledgers else None),
                               self.counter, rule.budget)  # fmt: skip
            new = [Front(from_text(text), self._tokens(text), True)] if text else []
            if rule.summary_budget:
                made = self.summary(call, folded, rule.summary_budget, prior, rule.summarizer)
                new += self._item(made, rule.summarizer)
            else:
                new += [f for f in front if not f.ledger]
            self._set(slot, new, tokens, ids)

    def _fold_chunk(self, rule: Any, slots: np.ndarray, start: np.ndarray, cut: np.ndarray,
                    tokens: np.ndarray, ids: np.ndarray, window: np.ndarray) -> None:  # fmt: skip
        for slot, w, a, b in zip(slots.tolist(), window.tolist(), start.tolist(), cut.tolist(),
                                 strict=True):  # fmt: skip
            unit = int(self.order[slot])
            call = int(self.unit_call[unit])
            front = self.items.get(slot, [])
            left = [int(x) for x in self.src[w:a]]
            if any(x < len(self.batch.kind) for x in left):
                # Items of a turn the server cut stay between the summaries and the turns:
                # the arrays keep no such middle (the reference path takes the call).
                self.clashes.add(call)
            notes = [Front(from_text(self.notes[x]), self._tokens(self.notes[x]), kept=True)
                     for x in left if x in self.notes]  # fmt: skip
            made = self.summary(call, self.src[a:b], rule.budget, None, rule.summarizer)
            summaries = [f for f in front if not f.kept]
            kept = [f for f in front if f.kept]
            new = [*summaries, *self._item(made, rule.summarizer), *kept, *notes]
            self._set(slot, new, tokens, ids)

    def _item(self, made: Summary, summarizer: ExtractiveSummarizer) -> list[Front]:
        if not made.tokens:  # nothing fit the budget: no item takes the turns' place
            return []
        if summarizer.encoding == self.counter.profile.encoding:
            return [Front(made, self.counter.profile.item_overhead_tokens + made.tokens)]
        return [Front(made, self._tokens(made.text))]

    def _tokens(self, text: str) -> int:
        return self.counter.item(Message(role="system", text=text)).full.total


def summary(batch: CallBatch, stats: FillerStats | None, memo: dict[Any, Summary], call: int,
            items: np.ndarray, budget: int, previous: Summary | None,
            summarizer: ExtractiveSummarizer, note: str | None = None) -> Summary:  # fmt: skip
    """`extractive.summarize`, made once per input (`memo`: kept across the passes).

    A batch of given calls (no `stats`) has no filler arrays: its items themselves go through
    the summarizer, as the strategies give them.
    """
    # A folded window is a run of the batch's items (a seed's and then the session's own).
    run = len(items) and int(items[-1]) - int(items[0]) + 1 == len(items)
    span = (int(items[0]), len(items)) if run else items.tobytes()
    prior = previous.ident if previous is not None else None
    key = (call, span, note, prior, budget, summarizer.recency, summarizer.encoding)
    made = memo.get(key)
    if made is None and batch.source_items is not None:
        said = source_items(batch, call, items, {})
        if note is not None:
            said.insert(0, Message(role="system", text=note))
        made = memo[key] = summarize_items(said, budget, previous, summarizer)
    elif made is None:
        assert stats is not None
        made = summarize(batch, stats, call, items, budget_tokens=budget, previous=previous,
                         summarizer=summarizer, note=note)  # fmt: skip
        memo[key] = made
    return made


def carried_seeds(
    batch: CallBatch,
    stats: FillerStats | None,
    memo: dict[Any, Summary],
    units: Units,
    final: Mapping[int, Summary],
    rollover: RolloverPolicy,
    counter: TokenCounter,
    fronts: Fronts | None,
    shared: bool,
) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[tuple[int, int], str], set[int]]:
    """The seeds that carry a summary or a ledger, given each session's memory (by unit).

    `RolloverPolicy.draft` on the arrays: with ``carry="summary"`` or ``"ledger"``, or
    ``recent`` after a session that kept a summary or a ledger, the recent turns get the
    budget less the reserve, and a note first carries the older history folded into that
    memory. Returns the seeds (for `plan_sessions`), the notes' texts, and the calls whose
    note repeats an item a session began a stored path with under a shared cache (the
    reference path takes those).
    """
    seeds: dict[tuple[int, int], tuple[int, int]] = {}
    notes: dict[tuple[int, int], str] = {}
    clashes: set[int] = set()
    assert units.turns is not None
    reserve = min(rollover.summary_tokens, rollover.budget_tokens)
    room = max(reserve - counter.profile.item_overhead_tokens, 0)
    chosen = rollover.summarizer
    summarizer = chosen if isinstance(chosen, ExtractiveSummarizer) else ExtractiveSummarizer()
    earlier: dict[int, set[str]] = {}  # each call's notes so far
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
                note = previous  # nothing new to fold, and the memory fits
            elif rollover.carry == "ledger":
                ledger = Ledger(memo=shared_memo())
                said = messages(batch, stats, call, older, {})
                lines = ledger.facts(said, previous.text if previous is not None else None)
                note = from_text(ledger.text(lines, counter, room))
            else:
                note = summary(batch, stats, memo, call, older, room, previous, summarizer)
        text = note.text if note is not None else ""
        tokens = counter.item(Message(role="system", text=text)).full.total if text else 0
        seeds[(call, session)] = (rollover.budget_tokens - reserve, tokens)
        if note is not None and text:
            notes[(call, session)] = text
            # Under a shared cache a note the same as one a session before began with (or
            # held first) can match that session's path: not modelled.
            known = earlier.setdefault(call, set())
            held = fronts is not None and fronts.held(call, note.ident, unit + 1)
            if shared and (text in known or held):
                clashes.add(call)
            if batch.source_items is not None and text in system_texts(batch, call):
                clashes.add(call)  # the note is a cache key a system item has too
            known.add(text)
    return seeds, notes, clashes


def system_texts(batch: CallBatch, call: int) -> set[str]:
    """The texts of a given call's system messages (a summary with one is an equal cache key)."""
    assert batch.source_items is not None
    return {i.text for i in batch.source_items[call]
            if isinstance(i, Message) and i.role == "system"}  # fmt: skip


def final_texts(batch: CallBatch, stats: FillerStats | None, units: Units, win: Any,
                r_offsets: np.ndarray, notes: Mapping[tuple[int, int], str],
                fronts: Fronts | None) -> list[list[str]]:  # fmt: skip
    """Per call, what its last session holds at the end that can hold a planted fact.

    Its front items' texts, then the window's notes and statements in order; ``""`` marks
    filler items between them (filler holds no fact: `texts.vocabulary`), so a text that
    reads across two of them in the call reads across them here too, and no other. A batch
    of given calls (no `stats`) gives every item's text (`facts.item_text`).
    """
    by_src = {len(batch.kind) + j: notes[key] for j, key in enumerate(units.note_keys)}
    responded = np.diff(r_offsets) > 0
    starts = np.where(responded, win.final_start, units.start)
    last = np.searchsorted(units.call, np.arange(len(batch)), side="right") - 1
    out: list[list[str]] = []
    for call, unit in enumerate(last.tolist()):
        held = fronts.texts(unit) if fronts is not None and unit >= 0 else []
        if unit < 0 or units.call[unit] != call:
            out.append(held)
            continue
        statements = {int(batch.offsets[call]) + f.item: f.statement
                      for f in (batch.facts[call] if batch.facts else ())}  # fmt: skip
        window = units.src[int(starts[unit]) : int(units.end[unit])]
        if batch.source_items is not None:
            held += [item_text(i) for i in source_items(batch, call, window, by_src)]
            out.append(held)
            continue
        assert stats is not None
        for item in window.tolist():
            if item in by_src:
                held.append(by_src[item])
            elif item < len(batch.kind) and stats.lead[item]:
                words = [vocabulary()[w] for w in stats.ids(item).tolist()]
                held.append(compose(words, lead=statements[item]))
            elif not held or held[-1]:
                held.append("")  # filler between
        out.append(held)
    return out
