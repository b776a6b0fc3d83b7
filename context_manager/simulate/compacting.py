"""Client compaction on the vectorized path: the strategies the arrays can run exactly.

The vectorized path advances every server session one response rank at a time
(`vectorized._truncate`), and asks the strategy there: before a response whose request is cold
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
write summaries are not modelled here (`vector_rule` gives ``None``) and run on the reference
path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compaction.strategies import AudioToText, DropOldest, WhenCold

__all__ = ["ConvertRule", "DropRule", "RankCompaction", "drop_cut", "vector_rule"]

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


Rule = DropRule | ConvertRule


def vector_rule(strategy: Any, limit: int) -> Rule | None:
    """The arrays' form of `strategy` under the history `limit`, or ``None`` if it has none."""
    early = None
    if isinstance(strategy, WhenCold):
        early, strategy = strategy.early, strategy.strategy
    if type(strategy) not in (DropOldest, AudioToText):
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

    def ask(self, ss: np.ndarray, conv: np.ndarray, end: np.ndarray, latest: np.ndarray,
            add: np.ndarray, cold: np.ndarray, asked: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """The rule on the windows ``[ss, end)`` where `asked`.

        Returns the windows' new starts, their conversion pointers, and which compacted.
        `latest` is each window's latest assistant audio item still with its audio (-1:
        none), `add` what its audio adds.
        """
        cc = np.maximum(conv, ss)
        total = self.total(ss, cc, end, latest, add)
        rule = self.rule
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
