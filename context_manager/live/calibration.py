"""Calibration: the per-item overhead refitted from the usage the server reports.

At each compared ``response.done`` the input-token error (observed minus predicted) is
measured at the profile's starting overhead, and a least-squares line of that error on the
response's item count gives the overhead that explains it (the slope). Three responses with
distinct item counts are needed before the slope means anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import ResponseOutcome

__all__ = ["Calibration", "OverheadFit"]


@dataclass(frozen=True, slots=True)
class Calibration:
    """How well the model predicts the server, and the correction it applies."""

    responses: int
    """Responses compared."""
    last_error: int
    """Observed minus predicted input tokens of the latest compared response."""
    mean_abs_error: float
    """Mean absolute input-token error over the compared responses."""
    item_overhead_tokens: int
    """The per-item overhead the model now uses (the profile's, refitted)."""


@dataclass(slots=True)
class OverheadFit:
    """Least squares of the input error on the item count: error = a + d x items."""

    base: int
    """The profile's own per-item overhead, where the errors are measured."""
    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    abs_error: int = 0
    last: int = 0

    def add(self, outcome: ResponseOutcome, current: int) -> None:
        """Count a compared response predicted with overhead `current`."""
        items, error = outcome.items, outcome.input_error
        # Errors at the starting overhead, so every response measures the same quantity.
        at_base = error + (current - self.base) * items
        self.n += 1
        self.sx += items
        self.sy += at_base
        self.sxx += items * items
        self.sxy += items * at_base
        self.abs_error += abs(error)
        self.last = error

    def overhead(self) -> int | None:
        """The overhead that best explains the errors so far (``None``: too few to tell)."""
        spread = self.n * self.sxx - self.sx * self.sx
        if self.n < 3 or spread <= 0:
            return None  # not enough distinct item counts to tell overhead from a constant
        slope = (self.n * self.sxy - self.sx * self.sy) / spread
        return max(round(self.base + slope), 0)

    def view(self, current: int) -> Calibration:
        """The figures so far, with the overhead in use."""
        mean = self.abs_error / self.n if self.n else 0.0
        return Calibration(self.n, self.last, mean, current)
