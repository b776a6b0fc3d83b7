"""What each call's last session holds at the end, item by item (for the benchmark's metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .sessions import Units
from .workloads import CallBatch

__all__ = ["held_items"]


def held_items(
    batch: CallBatch,
    units: Units,
    win: Any,
    r_offsets: np.ndarray,
    notes: Mapping[tuple[int, int], str],
    fronts: Any,
) -> list[list[int | str]]:
    """Per call, its last session's items at the end, in order.

    An entry is the index of one of the call's items (in its text form, if it was converted),
    or the text of an item the run made: a summary, a ledger, or a seed's note (``system``
    items, first in the session).
    """
    by_src = {len(batch.kind) + j: notes[key] for j, key in enumerate(units.note_keys)}
    responded = np.diff(r_offsets) > 0
    starts = np.where(responded, win.final_start, units.start)
    last = np.searchsorted(units.call, np.arange(len(batch)), side="right") - 1
    out: list[list[int | str]] = []
    for call, unit in enumerate(last.tolist()):
        held: list[int | str] = list(fronts.texts(unit)) if fronts is not None and unit >= 0 else []
        if unit >= 0 and units.call[unit] == call:
            base = int(batch.offsets[call])
            for item in units.src[int(starts[unit]) : int(units.end[unit])].tolist():
                held.append(by_src[item] if item in by_src else item - base)
        out.append(held)
    return out
