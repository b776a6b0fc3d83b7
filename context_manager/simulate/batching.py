"""Pieces of a batch: calls selected from a chunk, and sub-batches that bound memory.

A chunk of `CHUNK_CALLS` calls is the unit of seeding (its calls come from one random
stream), not the unit of work: the calls of a chunk are independent, so a slice of them can
run as its own task (spreading slow, reference-bound chunks over every worker) and a long
chunk can be simulated in sub-batches of at most `SUB_BATCH_ITEMS` items (the vectorized
path's temporaries grow with the items it holds, so memory then stays flat as calls grow
longer). Either way each call's figures are the same.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .workloads import CallBatch

__all__ = ["SUB_BATCH_ITEMS", "select", "sub_batches"]

SUB_BATCH_ITEMS = 200_000
"""Most items the vectorized path holds at once (about 60 MB of its temporaries)."""


def select(batch: CallBatch, start: int, stop: int) -> CallBatch:
    """Calls ``start`` to ``stop`` (exclusive) of `batch`, as a batch of their own."""
    if start == 0 and stop == len(batch):
        return batch
    lo, hi = int(batch.offsets[start]), int(batch.offsets[stop])
    return replace(
        batch,
        offsets=batch.offsets[start : stop + 1] - lo,
        kind=batch.kind[lo:hi],
        audio_ms=batch.audio_ms[lo:hi],
        text_tokens=batch.text_tokens[lo:hi],
        t=batch.t[lo:hi],
        text_seed=batch.text_seed[start:stop],
        facts=batch.facts[start:stop] if batch.facts else (),
        source_items=(batch.source_items[start:stop] if batch.source_items is not None else None),
    )


def sub_batches(batch: CallBatch, max_items: int = SUB_BATCH_ITEMS) -> list[tuple[int, int]]:
    """Consecutive call ranges covering `batch`, each of at most `max_items` items.

    A single call longer than `max_items` is a range of its own.
    """
    calls = len(batch)
    out: list[tuple[int, int]] = []
    start = 0
    while start < calls:
        limit = batch.offsets[start] + max_items
        stop = int(np.searchsorted(batch.offsets, limit, side="right")) - 1
        stop = min(max(stop, start + 1), calls)
        out.append((start, stop))
        start = stop
    return out
