"""Client compaction on the vectorized path: the strategies the arrays can run exactly.

The vectorized path advances every server session one response rank at a time
(`ranks.advance`), and asks the strategy there: before a response whose request is cold
(the session's first, or its cached prefix expired) and after every response, with its output
in the conversation. Two strategies need no text to do so (each also inside `WhenCold`, whose
lowered trigger applies when the request is cold):

* `DropOldest` deletes the oldest whole turns: it moves a session's window start, exactly as
  the server's own truncation does.
* `AudioToText` (``keep >= 1``) replaces the audio messages before the last `keep` turns by
  their transcripts, in place: a session keeps a conversion pointer, and the items before it
  count in their text form (a second prefix-sum array). The next request's cached prefix ends
  at the first item it converted.

`DropOldest.plan`'s rule, written for arrays:

* past ``floor(trigger x limit)`` retained tokens (the latest-assistant-audio rule applied), the
  oldest whole turns go until at most ``floor(target x limit)`` remain, never the newest turn;
* a turn starts at a user item that follows a non-user item, or at the first item (what is
  left of a turn the server cut is the oldest turn).

`AudioToText.plan`'s: past its trigger, the audio messages before the keep-th last turn start
(turns begin at user items) convert, if any is left to convert.

A window is one range of items before and after: the turns go from its start. Strategies that
write summaries (`RollingSummary`, `Ledger`, `Hierarchical` with the extractive summarizer)
keep their items first in the session, ahead of the window: `SummaryRule` here, the items and
the folding in `summarizing`. `vector_rule` gives ``None`` for any other strategy (another
summarizer, ``keep=0`` conversion), which runs on the reference path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compaction.strategies import (
    AudioToText,
    DropOldest,
    Hierarchical,
    Ledger,
    RollingSummary,
    WhenCold,
)
from ..compaction.summarizers import ExtractiveSummarizer
from ..tokens import TokenCounter
from .extractive import FillerStats, Summary
from .layout import ItemTokens, Layout
from .sessions import Units
from .summarizing import Fronts
from .workloads import ASSISTANT, SYSTEM, USER, CallBatch

__all__ = [
    "ConvertRule",
    "DropRule",
    "RankCompaction",
    "SummaryRule",
    "drop_cut",
    "rank_compaction",
    "vector_rule",
]

I64 = np.int64


@dataclass(frozen=True, slots=True)
class DropRule:
    """`DropOldest` in integers: its trigger and goal in tokens, warm and cold."""

    trigger: int
    """Compact above this many retained tokens (``floor(trigger x limit)``)."""
    cold_trigger: int
    """The same when the next request is cold (`WhenCold` lowers it)."""
    goal: int
    """Keep at most this many (``floor(target x limit)``)."""


@dataclass(frozen=True, slots=True)
class ConvertRule:
    """`AudioToText` in integers: its trigger in tokens, warm and cold, and the turns kept."""

    trigger: int
    cold_trigger: int
    keep: int


@dataclass(frozen=True, slots=True)
class SummaryRule:
    """`RollingSummary` or `Ledger` with the extractive summarizer, in integers."""

    trigger: int
    cold_trigger: int
    keep: int
    budget: int
    summarizer: ExtractiveSummarizer
    ledger: Ledger | None = None
    """The ledger strategy (its facts and text): ``None`` for a rolling summary."""
    summary_budget: int = 0
    """A ledger's summary after it (0: none)."""
    chunk: int = 0
    """`Hierarchical`: turns per chunk summary (0: not hierarchical)."""
    max_summaries: int = 0
    """`Hierarchical`: chunk summaries kept before they are merged."""


Rule = DropRule | ConvertRule | SummaryRule


def vector_rule(strategy: Any, limit: int) -> Rule | None:
    """The arrays' form of `strategy` under the history `limit`, or ``None`` if it has none."""
    early = None
    if isinstance(strategy, WhenCold):
        early, strategy = strategy.early, strategy.strategy
    if type(strategy) in (RollingSummary, Ledger, Hierarchical):
        # A summary by the extractive summarizer only (a ledger with no summary needs none).
        needed = type(strategy) is not Ledger or strategy.summary_budget > 0
        if needed and type(strategy.summarizer) is not ExtractiveSummarizer:
            return None
    elif type(strategy) not in (DropOldest, AudioToText):
        return None
    if type(strategy) is AudioToText and strategy.keep < 1:
        return None  # keep=0 converts the newest items too: the reference path follows it
    # The strategy compares an integer count with a float product: the same as comparing it
    # with the product's floor.
    trigger = math.floor(strategy.trigger * limit)
    cold = trigger
    if early is not None and early < strategy.trigger:
        cold = math.floor(early * limit)
    if isinstance(strategy, AudioToText):
        return ConvertRule(trigger, cold, strategy.keep)
    if isinstance(strategy, Hierarchical):
        assert isinstance(strategy.summarizer, ExtractiveSummarizer)
        return SummaryRule(trigger, cold, strategy.keep, strategy.budget, strategy.summarizer,
                           chunk=strategy.chunk, max_summaries=strategy.max_summaries)  # fmt: skip
    if isinstance(strategy, RollingSummary | Ledger):
        summarizer = strategy.summarizer
        if not isinstance(summarizer, ExtractiveSummarizer):
            summarizer = ExtractiveSummarizer()  # a ledger with no summary: never asked
        if isinstance(strategy, Ledger):
            return SummaryRule(trigger, cold, strategy.keep, strategy.budget, summarizer,
                               strategy, strategy.summary_budget)  # fmt: skip
        return SummaryRule(trigger, cold, strategy.keep, strategy.budget, summarizer)
    return DropRule(trigger, cold, math.floor(strategy.target * limit))


def drop_cut(
    rule: DropRule,
    pt: np.ndarray,
    total: np.ndarray,
    start: np.ndarray,
    latest: np.ndarray,
    adj: np.ndarray,
    last_turn: np.ndarray,
    next_turn: np.ndarray,
    cold: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Where each session's window starts after the rule runs, and which sessions compacted.

    Args:
        rule: the strategy's integers.
        pt: prefix sums of the unit items' tokens (their form when not the latest assistant).
        total: each session's retained tokens (the latest assistant item with its audio).
        start: each window's first position (it begins the oldest turn).
        latest: the latest assistant audio position in each window (-1: none).
        adj: what that item adds with its audio kept.
        last_turn: the last turn start in each window (at most `start`: a single turn).
        next_turn: for every position, the first turn start at or after it.
        cold: whether each session's next request is cold.
    """
    trigger = np.where(cold, rule.cold_trigger, rule.trigger)
    fire = (total > trigger) & (last_turn > start)
    out = start.copy()
    if not fire.any():
        return out, fire
    f = np.flatnonzero(fire)
    s, lat, add = start[f], latest[f], adj[f]
    need = total[f] - rule.goal  # tokens the deleted turns must hold at least
    in_window = lat >= s
    # The first position whose deleted prefix holds enough, the latest item still kept...
    cand_a = np.searchsorted(pt, pt[s] + need, side="left")
    # ... or, past it, gone with its audio.
    cand_b = np.maximum(np.searchsorted(pt, pt[s] + need - add, side="left"), lat + 1)
    first = np.where(in_window & (cand_a <= lat), cand_a, np.where(in_window, cand_b, cand_a))
    # Whole turns: the next turn start, but never past the newest turn's.
    out[f] = np.minimum(next_turn[np.minimum(first, len(next_turn) - 1)], last_turn[f])
    return out, fire


@dataclass(slots=True)
class RankCompaction:
    """A strategy asked in the rank loop: its rule and the arrays it reads, per unit item.

    Positions are the vectorized path's unit items; `out_end` and `now` are per response.
    """

    rule: Rule
    pt: np.ndarray  # prefix sums of the items' totals (not the latest assistant's form)
    ptx: np.ndarray  # prefix sums of the items' totals in their text form
    next_turn: np.ndarray  # the first turn start at or after each position
    prev_turn: np.ndarray  # the last turn start at or before each position (-1: none)
    turn_starts: np.ndarray  # every position where a turn starts, in order
    is_user: np.ndarray
    next_audio: np.ndarray  # the first audio message at or after each position
    last_aa: np.ndarray
    adj_total: np.ndarray  # what each item adds as the latest assistant, with its audio
    latest_only: bool
    out_end: np.ndarray
    now: np.ndarray
    ttl: float
    fronts: Fronts | None = None  # a summarizing rule's texts and words

    def begin(self, order: np.ndarray) -> None:
        """A rank loop starts, its slot ``k`` being unit ``order[k]``."""
        if self.fronts is not None:
            self.fronts.begin(order)

    def cold(self, r: np.ndarray, rank: int) -> np.ndarray:
        """Whether each response's request misses the cache anyway (new session, or expired)."""
        if rank == 0:
            return np.ones(len(r), dtype=bool)
        return np.asarray(self.now[r] - self.now[r - 1] >= self.ttl)

    def total(self, ss: np.ndarray, cc: np.ndarray, end: np.ndarray, latest: np.ndarray,
              add: np.ndarray) -> np.ndarray:  # fmt: skip
        """Retained tokens of windows ``[ss, end)`` converted up to `cc`."""
        pt, ptx = self.pt, self.ptx
        out: np.ndarray = pt[end] - pt[cc] + ptx[cc] - ptx[ss] + np.where(latest >= 0, add, 0)
        return out

    def ask(self, ss: np.ndarray, conv: np.ndarray, front: np.ndarray, front_id: np.ndarray,
            end: np.ndarray, latest: np.ndarray, add: np.ndarray, cold: np.ndarray,
            asked: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """The rule on the windows ``[ss, end)`` where `asked`.

        Returns the windows' new starts, their conversion pointers, and which compacted.
        `latest` is each window's latest assistant audio item still with its audio (-1:
        none), `add` what its audio adds. A summarizing rule updates each window's summary
        item (`front`, `front_id`) in place.
        """
        cc = np.maximum(conv, ss)
        total = self.total(ss, cc, end, latest, add) + front
        rule = self.rule
        if isinstance(rule, SummaryRule):
            return self._summarize(rule, ss, conv, front, front_id, end, total, cold, asked)
        if isinstance(rule, DropRule):
            last = np.where(asked, self.prev_turn[np.maximum(end - 1, 0)], ss)
            new, fired = drop_cut(rule, self.pt, total, ss, latest, add, last, self.next_turn,
                                  cold)  # fmt: skip
            return new, conv, fired
        trigger = np.where(cold, rule.cold_trigger, rule.trigger)
        # The last `keep` turns stay: the items before the keep-th last turn start convert.
        # Turns begin at user items after non-user ones, and at the window's first item when
        # it is a user's.
        ends = np.searchsorted(self.turn_starts, end, side="left")
        inner = ends - np.searchsorted(self.turn_starts, ss + 1, side="left")
        old_end = np.where(
            inner >= rule.keep,
            self.turn_starts[np.maximum(ends - rule.keep, 0) % max(len(self.turn_starts), 1)],
            ss,
        )
        fired = asked & (total > trigger) & (self.next_audio[cc] < old_end)
        return ss, np.where(fired, old_end, conv), fired

    def _summarize(self, rule: SummaryRule, ss: np.ndarray, conv: np.ndarray,
                   front: np.ndarray, front_id: np.ndarray, end: np.ndarray, total: np.ndarray,
                   cold: np.ndarray, asked: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        # `CompactionContext.folded`: past the trigger, with more than `keep` turns, the items
        # before the keep-th last turn start fold (the summary item is no turn's).
        trigger = np.where(cold, rule.cold_trigger, rule.trigger)
        ends = np.searchsorted(self.turn_starts, end, side="left")
        after = np.searchsorted(self.turn_starts, ss + 1, side="left")
        user_first = self.is_user[np.minimum(ss, len(self.is_user) - 1)]
        turns = ends - after + user_first
        past = asked & (total > trigger)
        assert self.fronts is not None
        new = ss.copy()
        if rule.chunk:
            # `Hierarchical`: past the trigger, merge the chunk summaries when there are too
            # many; else fold the oldest `chunk` turns (before the last `keep`) into one.
            merge = past & (self.fronts.summaries[: len(ss)] > rule.max_summaries)
            fold = past & ~merge & (turns > rule.keep)
            if merge.any():
                self.fronts.merge(rule, np.flatnonzero(merge), front, front_id)
            f = np.flatnonzero(fold)
            if len(f):
                m = np.minimum(rule.chunk, turns[f] - rule.keep)
                # The window's turn starts: its first item when a user's, then the inner ones.
                nth = after[f] + m - user_first[f]
                first = np.where(user_first[f], ss[f], self.turn_starts[after[f]])
                cut = self.turn_starts[nth]
                self.fronts.fold(rule, f, first, cut, front, front_id, ss[f])
                new[f] = cut
            return new, conv, merge | fold
        # `CompactionContext.folded`: past the trigger, with more than `keep` turns, the items
        # before the keep-th last turn start fold (a front item is no turn's).
        fired = past & (turns > rule.keep)
        if not fired.any():
            return ss, conv, fired
        f = np.flatnonzero(fired)
        cut = self.turn_starts[ends[f] - rule.keep]
        self.fronts.fold(rule, f, ss[f], cut, front, front_id)
        new[f] = cut
        return new, conv, fired


def rank_compaction(batch: CallBatch, units: Units, lay: Layout, tok: ItemTokens,
                    rule: Rule | None, latest_only: bool, o: np.ndarray, now: np.ndarray,
                    ttl: float, counter: TokenCounter, shared: bool,
                    stats: FillerStats | None = None, notes: dict[int, str] | None = None,
                    memo: dict[Any, Summary] | None = None,
                    ) -> RankCompaction | None:  # fmt: skip
    """The arrays a compaction in the rank loop reads (`compacting.RankCompaction`)."""
    if rule is None:
        return None
    # Seeds' notes (their carried summaries) are system text items after the batch's items.
    kinds = np.concatenate([batch.kind, np.full(len(units.notes), SYSTEM, dtype=batch.kind.dtype)])
    audio_ms = np.concatenate([batch.audio_ms, np.full(len(units.notes), -1)])
    kind = kinds if units.identity else kinds[units.src]
    src = np.arange(len(kind), dtype=I64) if units.identity else units.src
    seeded = np.zeros(len(kind), dtype=bool) if units.identity else units.seeded
    is_user = kind == USER
    n = len(is_user)
    # A turn starts at a user item after a non-user one; a window's first item always
    # begins one for drop-oldest (what is left of a turn the server cut counts as a turn).
    inner = is_user & ~np.concatenate([[False], is_user[:-1]]) if n else is_user
    positions = np.arange(n, dtype=I64)
    next_turn = np.full(n + 1, n, dtype=I64)
    prev_turn = np.full(max(n, 1), -1, dtype=I64)
    audio = ((kind == USER) | (kind == ASSISTANT)) & (audio_ms[src] >= 0) & ~seeded
    next_audio = np.full(n + 1, n, dtype=I64)
    if n:
        next_turn[:n] = np.minimum.accumulate(np.where(inner, positions, n)[::-1])[::-1]
        prev_turn = np.maximum.accumulate(np.where(inner, positions, -1))
        next_audio[:n] = np.minimum.accumulate(np.where(audio, positions, n)[::-1])[::-1]
    ptx = np.zeros(n + 1, dtype=I64)
    np.cumsum(tok.as_text[src], out=ptx[1:])
    fronts = None
    if isinstance(rule, SummaryRule):
        assert stats is not None or batch.source_items is not None  # given calls: their items
        fronts = Fronts(batch, stats, src, units.call, counter, shared, notes or {},
                        memo if memo is not None else {})  # fmt: skip
    return RankCompaction(
        rule, lay.prefix_total, ptx, next_turn, prev_turn, np.flatnonzero(inner), is_user,
        next_audio, lay.last_aa, lay.kept_total - lay.base_total, latest_only, o, now, ttl,
        fronts,
    )  # fmt: skip
