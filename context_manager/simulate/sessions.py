"""The vectorized path's sessions: where each call rolls over, and what each new one is seeded with.

Every call's session limits are found together, round by round, with NumPy; each session of
a call becomes a unit (its seed range and its live range of the batch's items), and the
responses of every unit are laid out for `simulate_batch`'s loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..rollover import RolloverPolicy
from .workloads import ASSISTANT, CALL, USER, CallBatch

__all__ = [
    "Carried",
    "SeedTurns",
    "Units",
    "first_per_segment",
    "plan_sessions",
    "prefix_sums",
    "ranges",
]

I64 = np.int64


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + length)`` for each pair."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=I64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    out: np.ndarray = np.repeat(starts, lengths) + (np.arange(total, dtype=I64) - offsets)
    return out


def first_per_segment(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The first position of each segment [offsets[i], offsets[i+1]) where `mask` holds.

    A segment with none gives its end.
    """
    positions = np.where(mask, np.arange(len(mask), dtype=I64), np.iinfo(I64).max)
    out = np.full(len(offsets) - 1, 0, dtype=I64)
    nonempty = offsets[1:] > offsets[:-1]
    if nonempty.any():
        out[nonempty] = np.minimum.reduceat(positions, offsets[:-1][nonempty])
    first: np.ndarray = np.minimum(out, offsets[1:])
    return first


def prefix_sums(values: np.ndarray) -> np.ndarray:
    """Sums of every prefix: ``out[k]`` is the sum of the first `k` values."""
    out = np.zeros(len(values) + 1, dtype=I64)
    np.cumsum(values, out=out[1:])
    return out


# ------------------------------------------------------------------------- the engine


@dataclass(frozen=True, slots=True)
class SeedTurns:
    """A batch's turn starts and its items' text forms, summed: where a seed's turns begin."""

    ts_pos: np.ndarray  # every turn start (a user item after a non-user one, or a call's first)
    ts_sum: np.ndarray  # the text forms' prefix sum at each turn start
    as_text_sum: np.ndarray  # prefix sums of the items' text forms (with overheads)
    first_turn: np.ndarray  # per call: its first turn start's index in `ts_pos`

    @classmethod
    def of(cls, batch: CallBatch, as_text: np.ndarray) -> SeedTurns:
        """The seed turns of `batch`, whose items re-sent as text take `as_text` tokens."""
        kind, offsets = batch.kind, batch.offsets
        starts_call = np.zeros(len(kind), dtype=bool)
        starts_call[offsets[:-1][np.diff(offsets) > 0]] = True
        is_user = kind == USER
        turn_start = is_user & (~np.concatenate([[False], is_user[:-1]]) | starts_call)
        ts_pos = np.flatnonzero(turn_start)
        as_text_sum = prefix_sums(as_text)
        first_turn = np.searchsorted(ts_pos, offsets[:-1], side="left")
        return cls(ts_pos, as_text_sum[ts_pos], as_text_sum, first_turn)

    def first(self, call: int, seed_end: int, budget: int) -> int:
        """Where the latest whole turns before `seed_end` within `budget` tokens begin.

        `RolloverPolicy.first_seeded` on the arrays (`seed_end`: no turn fits).
        """
        threshold = self.as_text_sum[seed_end] - budget
        k = max(
            int(np.searchsorted(self.ts_sum, threshold, side="left")), int(self.first_turn[call])
        )
        if k < len(self.ts_pos) and self.ts_pos[k] < seed_end:
            return int(self.ts_pos[k])
        return seed_end


@dataclass(slots=True)
class Units:
    """The server sessions of a batch, as flat unit-item arrays."""

    call: np.ndarray  # per unit: its call
    index: np.ndarray  # per unit: 0, 1, ... within its call
    start: np.ndarray  # per unit: first position in the unit-item arrays
    end: np.ndarray  # per unit: one past its last position
    seed_tokens: np.ndarray  # per unit: tokens re-sent at its start
    head_last_used: np.ndarray  # per unit: last store of the call before it (-inf: none)
    src: np.ndarray  # per unit-item: the batch item it is
    seeded: np.ndarray  # per unit-item: re-sent as text
    responses: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # unit, end, out end, t
    fallback: np.ndarray  # per call
    expired: np.ndarray  # per call: ended at a limit with no rollover
    identity: bool  # the unit items are the batch items in order (no rollover, no cut)
    notes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    """Tokens of each carried summary a seed begins with (unit item ``len(batch) + j``)."""
    note_keys: tuple[tuple[int, int], ...] = ()
    """The (call, session) each note seeds."""
    boundary: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=I64))
    """Per unit: the batch item its own items begin at (where the session before it ended)."""
    turns: SeedTurns | None = None


Carried = Mapping[tuple[int, int], tuple[int, int]]
"""Seeds that carry a summary: (call, session) -> (recent turns' budget, the note's tokens, 0
for no note)."""


def plan_sessions(
    batch: CallBatch,
    as_text: np.ndarray,
    max_seconds: float,
    rollover: RolloverPolicy | None,
    shared_cache: bool,
    carried: Carried | None = None,
) -> Units:
    """Where each call rolls over, what each new session is seeded with, and its responses.

    An operation (an input item's creation, or a response at its first output item) at or
    past the session's limit finds it expired; the call then goes on in a new session,
    seeded with the most recent whole turns whose text fits the rollover budget. A seed in
    `carried` takes its recent turns within its own budget, after a note (a summary of what
    came before) of the given tokens.
    """
    calls = len(batch)
    offsets = batch.offsets
    t = batch.t
    kind = batch.kind
    call_of = np.repeat(np.arange(calls, dtype=I64), np.diff(offsets))
    is_out = (kind == ASSISTANT) | (kind == CALL)
    starts_call = np.zeros(len(kind), dtype=bool)
    starts_call[offsets[:-1][np.diff(offsets) > 0]] = True
    run_start = is_out & (~np.concatenate([[False], is_out[:-1]]) | starts_call)
    is_op = ~is_out | run_start
    fallback = np.zeros(calls, dtype=bool)
    expired = np.zeros(calls, dtype=bool)
    turns = SeedTurns.of(batch, as_text)

    # Rollover points, round by round: the first operation at or past the session's limit.
    t0 = np.zeros(calls)
    after = offsets[:-1].copy()  # operations at or after this item are in the current session
    boundaries: list[list[int]] = [[] for _ in range(calls)]
    active = np.diff(offsets) > 0
    while active.any():
        op_mask = is_op & active[call_of] & (np.arange(len(kind)) >= after[call_of])
        hit = op_mask & (t - t0[call_of] >= max_seconds)
        first = first_per_segment(hit, offsets)
        found = active & (first < offsets[1:])
        if not found.any():
            break
        if rollover is None:
            expired |= found
            for hit_call in np.flatnonzero(found):
                boundaries[hit_call].append(int(first[hit_call]))
            break
        for hit_call in np.flatnonzero(found):
            boundaries[hit_call].append(int(first[hit_call]))
        t0[found] = t[first[found]]
        after[found] = first[found]
        active = found

    if not any(boundaries):
        # No session reached its limit: one unit per call, its own items, no seed.
        lo = offsets[:-1].astype(I64)
        u_call_a = np.arange(calls, dtype=I64)
        u_index_a = np.zeros(calls, dtype=I64)
        u_seed_first_a, u_seed_end_a = lo, lo
        u_live_first_a, u_live_end_a = lo, offsets[1:].astype(I64)
        u_seed_tokens_a = np.zeros(calls, dtype=I64)
        u_note_a = np.zeros(calls, dtype=I64)
    else:
        (u_call_a, u_index_a, u_seed_first_a, u_seed_end_a, u_live_first_a, u_live_end_a,
         u_seed_tokens_a, u_note_a) = _units_with_rollovers(
            batch, boundaries, rollover, shared_cache, turns, fallback, carried or {},
        )  # fmt: skip
    # A seed's note, if any, is a unit item of its own, numbered after the batch's items.
    has_note = u_note_a > 0
    note_len = has_note.astype(I64)
    note_start = len(kind) + np.cumsum(note_len) - note_len
    call_arr = u_call_a
    seed_first_a = u_seed_first_a
    seed_len = u_seed_end_a - seed_first_a
    live_first_a = u_live_first_a
    live_len = u_live_end_a - live_first_a
    unit_len = note_len + seed_len + live_len
    unit_start = (
        np.concatenate([[0], np.cumsum(unit_len)[:-1]]).astype(I64)
        if len(unit_len)
        else np.zeros(0, I64)
    )
    # Interleave each unit's note, seed range and live range.
    starts = np.stack([note_start, seed_first_a, live_first_a], axis=1).ravel()
    lengths = np.stack([note_len, seed_len, live_len], axis=1).ravel()
    src = ranges(starts, lengths)
    seeded = np.repeat(np.tile([True, True, False], len(unit_len)), lengths)
    # Responses: the run starts among each unit's live items.
    position_of = np.full(len(kind), -1, dtype=I64)
    live_positions = ranges(unit_start + note_len + seed_len, live_len)
    live_sources = ranges(live_first_a, live_len)
    position_of[live_sources] = live_positions
    unit_of_item = np.repeat(np.arange(len(unit_len), dtype=I64), live_len)
    run_starts = live_sources[is_op[live_sources] & is_out[live_sources]]
    run_unit = unit_of_item[is_op[live_sources] & is_out[live_sources]]
    # A run ends at the next input item (or the unit's end).
    next_input = np.minimum.accumulate(
        np.where(~is_out, np.arange(len(kind), dtype=I64), len(kind))[::-1]
    )[::-1]
    run_end_src = np.minimum(next_input[run_starts], u_live_end_a[run_unit])
    r_end = position_of[run_starts]
    r_out_end = r_end + (run_end_src - run_starts)
    r_t = t[run_starts]
    head_last = np.full(len(unit_len), -np.inf)
    # Under org scope the head stays warm from the sessions before: the last response of any
    # of them (a session with no response leaves the one before it warm).
    has_before = u_index_a > 0
    if has_before.any() and len(run_unit):
        last_resp = np.full(len(unit_len), -np.inf)
        np.maximum.at(last_resp, run_unit, r_t)
        warm = -np.inf
        for unit, (later, last) in enumerate(zip(has_before.tolist(), last_resp.tolist(),
                                                 strict=True)):  # fmt: skip
            if not later:
                warm = -np.inf  # a call's first session: nothing before it
            head_last[unit] = warm
            warm = max(warm, last)
    return Units(
        call=call_arr,
        index=u_index_a,
        start=unit_start,
        end=unit_start + unit_len,
        seed_tokens=u_seed_tokens_a,
        head_last_used=head_last,
        src=src,
        seeded=seeded,
        responses=(run_unit, r_end, r_out_end, r_t),
        fallback=fallback,
        expired=expired,
        identity=bool(
            len(src) == len(kind) and not seeded.any() and np.array_equal(src, np.arange(len(kind)))
        ),
        notes=u_note_a[has_note],
        boundary=u_live_first_a,
        turns=turns,
        note_keys=tuple(
            zip(u_call_a[has_note].tolist(), u_index_a[has_note].tolist(), strict=True)
        ),  # fmt: skip
    )


def _units_with_rollovers(
    batch: CallBatch,
    boundaries: list[list[int]],
    rollover: RolloverPolicy | None,
    shared_cache: bool,
    turns: SeedTurns,
    fallback: np.ndarray,
    carried: Carried,
) -> tuple[np.ndarray, ...]:
    """Each call's sessions (units) when some call rolls over: their seed and live ranges."""
    calls = len(batch)
    offsets = batch.offsets
    u_call: list[int] = []
    u_index: list[int] = []
    u_seed_first: list[int] = []
    u_seed_end: list[int] = []
    u_live_first: list[int] = []
    u_live_end: list[int] = []
    u_note: list[int] = []
    for c in range(calls):
        lo, hi = int(offsets[c]), int(offsets[c + 1])
        cuts = [int(x) for x in boundaries[c]]
        if rollover is None:
            # No rollover: one session, and the call ends at its first limit.
            u_call.append(c)
            u_index.append(0)
            u_seed_first.append(lo)
            u_seed_end.append(lo)
            u_live_first.append(lo)
            u_live_end.append(cuts[0] if cuts else hi)
            u_note.append(0)
            continue
        edges = [lo, *cuts, hi]
        for n in range(len(edges) - 1):
            seed_first = seed_end = edges[n]
            budget, note = carried.get((c, n), (rollover.budget_tokens, 0))
            if n > 0:
                # The most recent whole turns before the cut whose text fits the budget.
                seed_first = turns.first(c, seed_end, budget)
                # Under an organization-wide cache a new session can match more than the
                # instructions when its seed repeats items the session before held with the
                # same key: a text original, or a seed overlapping the one before. Rare (short
                # sessions, large seeds); such calls go to the reference path.
                repeats = seed_first < seed_end and (
                    batch.audio_ms[seed_first] < 0 or (n > 1 and seed_first < u_seed_end[-1])
                )
                if shared_cache and repeats:
                    fallback[c] = True
            u_call.append(c)
            u_index.append(n)
            u_seed_first.append(seed_first)
            u_seed_end.append(seed_end)
            u_live_first.append(edges[n])
            u_live_end.append(edges[n + 1])
            u_note.append(note)
    u_seed_tokens = [
        int(turns.as_text_sum[b] - turns.as_text_sum[a]) + note
        for a, b, note in zip(u_seed_first, u_seed_end, u_note, strict=True)
    ]
    return (
        np.array(u_call, dtype=I64),
        np.array(u_index, dtype=I64),
        np.array(u_seed_first, dtype=I64),
        np.array(u_seed_end, dtype=I64),
        np.array(u_live_first, dtype=I64),
        np.array(u_live_end, dtype=I64),
        np.array(u_seed_tokens, dtype=I64),
        np.array(u_note, dtype=I64),
    )
