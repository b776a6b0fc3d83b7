"""How much work a simulation may ask for: bounds that catch typos before any allocation."""

from __future__ import annotations

import os

from ..errors import WorkSizeError

__all__ = ["MOST_MINUTES", "check_size"]

MOST_MINUTES = 7 * 24 * 60
"""The longest call a workload may ask for (a week): past it a length is a typo."""

_BYTES_PER_TURN = 640  # per turn of a call: `generate` peaks at ~300 B, the simulation as much


def check_size(calls: int, turns: int) -> None:
    """Refuse a draw that would not fit in memory, before allocating it."""
    need = calls * turns * _BYTES_PER_TURN
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no guard
        return
    if need > free // 2:
        raise WorkSizeError(
            f"drawing {calls:,} calls of {turns:,} turns needs about {need / 2**30:.1f} GiB at"
            f" once, more than half of the {free / 2**30:.1f} GiB free: shorten the calls"
        )
