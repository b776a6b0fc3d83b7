"""The vectorized path's one sequential part: each session's retained window, rank by rank.

A session's window depends on where its previous request (and a compaction after it) left it,
so `advance` steps through the response ranks, all sessions at once: truncation by prefix sums
and a binary search, and the client's compaction, asked before a cold request and after every
response (`compacting.RankCompaction`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..server import SessionConfig
from .compacting import ConvertRule, RankCompaction
from .layout import Layout

__all__ = ["Windows", "advance"]

I64 = np.int64


@dataclass(slots=True)
class Windows:
    """Per response: its request's retained window, and what the rank loop saw on the way."""

    start: np.ndarray  # the first retained position
    dropped: np.ndarray  # items the request's truncation dropped (a summary item counts)
    overflow: np.ndarray  # the request overflowed (the reference path takes the call)
    compactions: np.ndarray  # compactions asked before it (cold) and after it
    converted: np.ndarray | None  # converting: items before this are in text form
    latest: np.ndarray  # the latest assistant audio item still with its audio (-1: none)
    front: np.ndarray  # tokens of the summary item first in the request (0: none)
    front_id: np.ndarray  # which summary that is (-1: none): equal texts, equal ids
    front_matched: np.ndarray  # tokens of its first items in a live cached path
    front_items: np.ndarray  # how many items the front has
    final_front: np.ndarray  # per unit: the summary tokens after its last response
    final_start: np.ndarray  # per unit: its window's first position after its last response


def advance(
    lay: Layout,
    r_offsets: np.ndarray,
    e: np.ndarray,
    lat: np.ndarray,
    unit_first: np.ndarray,
    limit: int,
    config: SessionConfig,
    rc: RankCompaction | None = None,
) -> Windows:
    """Each request's retained window (see `Windows`), rank by rank.

    One step per response rank, all sessions at once: the retained window of a session
    depends on where its previous request (and a compaction after it) left it. A summarizing
    strategy keeps a summary item first in the session (`front`), the oldest item of all: the
    server's truncation drops it first.
    """
    tr = config.truncation
    disabled = tr.mode == "disabled"
    target = math.floor(tr.retention_ratio * limit)
    pt = lay.prefix_total
    converting = rc is not None and isinstance(rc.rule, ConvertRule)
    ptx = rc.ptx if rc is not None else pt
    lat_safe = np.maximum(lat, 0)
    # What the latest assistant item adds when it keeps its audio.
    adj = np.where(lat >= 0, lay.kept_total[lat_safe] - lay.base_total[lat_safe], 0)
    last = np.maximum(e - 1, 0)
    newest = np.where(last == lat, lay.kept_total[last], lay.base_total[last])
    s_out = np.empty(len(e), dtype=I64)
    cc_out = np.empty(len(e), dtype=I64) if converting else None
    lat_out = lat.copy() if converting else lat
    dropped = np.zeros(len(e), dtype=I64)
    overflow = np.zeros(len(e), dtype=bool)
    compactions = np.zeros(len(e), dtype=I64)
    f_out = np.zeros(len(e), dtype=I64)
    fid_out = np.full(len(e), -1, dtype=I64)
    fc_out = np.zeros(len(e), dtype=I64)
    fn_out = np.zeros(len(e), dtype=I64)
    per_unit = np.diff(r_offsets)
    order = np.argsort(-per_unit, kind="stable")  # units with more responses first
    counts = per_unit[order]
    first_r = r_offsets[:-1][order]
    start = unit_first[np.minimum(first_r, max(len(e) - 1, 0))] if len(e) else first_r
    conv = start.copy()  # converting: each session's conversion end (nothing converted yet)
    front = np.zeros(len(order), dtype=I64)  # each session's summary item (0: none)
    front_id = np.full(len(order), -1, dtype=I64)
    if rc is not None:
        rc.begin(order)
    for rank in range(int(counts[0]) if len(counts) else 0):
        k = int(np.searchsorted(-counts, -rank, side="left"))  # the units with > rank responses
        r = first_r[:k] + rank
        ss, cv, ft, fi = start[:k], conv[:k], front[:k], front_id[:k]
        ee, ll = e[r], lat[r]
        if rc is not None:  # a cold request: the strategy is asked first
            cold = rc.cold(r, rank)
            if cold.any():
                still = np.where(ll >= np.maximum(cv, ss), ll, -1)
                ss, cv, fired = rc.ask(ss, cv, ft, fi, ee, still, adj[r], cold, cold)
                compactions[r[fired]] += 1
        cc = np.maximum(cv, ss)
        ll = np.where(ll >= cc, ll, -1)  # gone, or converted: no audio kept
        with_l = ll >= 0
        total = pt[ee] - pt[cc] + ptx[cc] - ptx[ss] + np.where(with_l, adj[r], 0) + ft
        over = total > limit
        if over.any():
            bad = over & (disabled | ((newest[r] > limit) & (ee > ss)))
            overflow[r[bad]] = True
            cut = np.flatnonzero(over & ~bad)
            if len(cut):
                ce, cs, cl, ca, ck = ee[cut], ss[cut], ll[cut], adj[r[cut]], cc[cut]
                # The summary item goes first; then the first position whose suffix fits the
                # target, with the latest item kept...
                low = np.maximum(cs, ck)
                cand_a = np.maximum(np.searchsorted(pt, pt[ce] + ca - target, side="left"), low)
                # ... or, past it, without.
                cand_b = np.searchsorted(pt, pt[ce] - target, side="left")
                cand_b = np.maximum(cand_b, np.maximum(low, cl + 1))
                first = np.where((cl >= low) & (cand_a <= cl), cand_a, cand_b)
                if converting:  # the converted items' suffix fits: the cut is among them
                    rest = pt[ce] - pt[ck] + np.where(cl >= 0, ca, 0)
                    fits = rest <= target
                    in_text = np.searchsorted(ptx, ptx[ck] + rest - target, side="left")
                    first = np.where(fits, np.maximum(in_text, cs), first)
                new = np.minimum(first, ce - 1)  # never the newest item
                if rc is not None and rc.fronts is not None and ft[cut].any():
                    # The front items go first, oldest first: where the window alone fits,
                    # only as many as needed; elsewhere all, and then the window is cut.
                    window = total[cut] - ft[cut]
                    alone = window <= target
                    room = np.where(alone, target - window, -1)
                    gone = rc.fronts.drop(cut, room, ft, fi)
                    new = np.where(alone, cs, new)
                    dropped[r[cut]] = gone
                dropped[r[cut]] += new - cs
                ss = ss.copy()
                ss[cut] = new
        s_out[r] = ss
        f_out[r] = ft
        fid_out[r] = fi
        if rc is not None and rc.fronts is not None:
            fc_out[r] = rc.fronts.cached(np.arange(k), fi, ft, ss, rc.now[r], rc.ttl)
            fn_out[r] = rc.fronts.count[:k]
        if converting:
            assert cc_out is not None
            cc = np.maximum(cv, ss)
            cc_out[r] = cc
            lat_out[r] = np.where(ll >= ss, ll, -1)
        if rc is not None:  # after the response, its output in
            oo = rc.out_end[r]
            la = rc.last_aa[np.maximum(oo - 1, 0)]
            la = np.where(rc.latest_only & (la >= np.maximum(cv, ss)), la, -1)
            add = rc.adj_total[np.maximum(la, 0)]
            warm = np.zeros(len(r), dtype=bool)
            ss, cv, fired = rc.ask(ss, cv, ft, fi, oo, la, add, warm, np.ones(len(r), dtype=bool))
            compactions[r[fired]] += 1
        start[:k] = ss
        conv[:k] = cv
    final = np.zeros(len(order), dtype=I64)
    final[order] = front
    final_start = np.zeros(len(order), dtype=I64)
    final_start[order] = start
    return Windows(s_out, dropped, overflow, compactions, cc_out, lat_out, f_out, fid_out,
                   fc_out, fn_out, final, final_start)  # fmt: skip
