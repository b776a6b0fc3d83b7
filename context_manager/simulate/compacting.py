"""Client compaction on the vectorized path: the strategies the arrays can run exactly.

The vectorized path advances every server session one response rank at a time
(`vectorized._truncate`). A strategy that only deletes the oldest whole turns moves a
session's retained window start, exactly as the server's own truncation does, so it runs in
the same loop: `DropOldest` (and `WhenCold` around it, whose lowered trigger applies when the
next request misses the cache anyway). The rule is `DropOldest.plan`'s, written for arrays:

* past ``floor(trigger x limit)`` retained tokens (the latest-assistant-audio rule applied), the
  oldest whole turns go until at most ``floor(target x limit)`` remain, never the newest turn;
* a turn starts at a user item that follows a non-user item, or at the first item (what is
  left of a turn the server cut is the oldest turn);
* asked before a response when its request is cold (the session's first, or its cached prefix
  expired), and after every response, with the response's output in the conversation.

A window is one range of items before and after: the turns go from its start. Strategies that
write summaries or convert items are not modelled here (`vector_rule` gives ``None``) and run
on the reference path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compaction.strategies import DropOldest, WhenCold

__all__ = ["DropRule", "drop_cut", "vector_rule"]

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


def vector_rule(strategy: Any, limit: int) -> DropRule | None:
    """The arrays' form of `strategy` under the history `limit`, or ``None`` if it has none."""
    early = None
    if isinstance(strategy, WhenCold):
        early, strategy = strategy.early, strategy.strategy
    if type(strategy) is not DropOldest:
        return None
    # The strategy compares an integer count with a float product: the same as comparing it
    # with the product's floor.
    trigger = math.floor(strategy.trigger * limit)
    cold = trigger
    if early is not None and early < strategy.trigger:
        cold = math.floor(early * limit)
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
