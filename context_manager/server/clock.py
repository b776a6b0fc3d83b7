"""`ManualClock`: simulated time, for simulations, tests and replays."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """A clock that moves only when told: the default for simulations and tests.

    >>> clock = ManualClock(10.0)
    >>> clock.advance(2.5)
    12.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (never back) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self.now += seconds
        return self.now

    def set(self, t: float) -> None:
        """Move to time `t`, which must not be earlier than now."""
        if t < self.now:
            raise ValueError(f"a clock cannot go back (from {self.now} to {t})")
        self.now = t
