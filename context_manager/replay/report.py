"""`ReplayReport`: every response of a log, predicted against observed, in tokens and dollars."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..live.mirror import UNFINISHED
from ..live.records import ResponseOutcome
from ..profiles import ModelProfile
from ..server import Usage

__all__ = ["UNFINISHED", "ReplayReport", "iter_rows", "observed"]


@dataclass(slots=True)
class ReplayReport:
    """Every response of one log, predicted against observed, and the notes of the replay.

    Out-of-band responses (``conversation: "none"``) are rows too (`ResponseOutcome.in_band`
    False, response number -1). A response that never got its ``response.done`` is a row of
    status ``unfinished``: predicted, with no observed usage, not compared.
    """

    profile: ModelProfile
    rows: list[ResponseOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def compared(self) -> list[ResponseOutcome]:
        """The rows that count in the comparison."""
        return [r for r in self.rows if r.compared]

    def error(self) -> int:
        """Sum of absolute errors of input text, input audio and cached tokens."""
        total = 0
        for r in self.compared():
            total += abs(r.predicted.input.text - r.observed.input.text)
            total += abs(r.predicted.input.audio - r.observed.input.audio)
            total += abs(r.predicted.cached_tokens - r.observed.cached_tokens)
        return total

    def note_counts(self) -> list[str]:
        """The notes, each once, with how many times it was taken."""
        counts = Counter(self.notes)
        return [n if counts[n] == 1 else f"{n} (x{counts[n]})" for n in dict.fromkeys(self.notes)]

    def to_dict(self) -> dict[str, Any]:
        """Rows and summary as plain data (costs in US dollars at the profile's prices)."""
        compared = self.compared()
        predicted = sum(r.predicted_cost.total for r in compared)
        observed = sum(r.observed_cost.total for r in compared)
        return {
            "model": self.profile.name,
            "responses": len(self.rows),
            "out_of_band": sum(1 for r in self.rows if not r.in_band),
            "compared": len(compared),
            "input_audio_exact": sum(
                1 for r in compared if r.predicted.input.audio == r.observed.input.audio
            ),
            "input_text_within_5pct": sum(
                1 for r in compared if _within(r.predicted.input.text, r.observed.input.text, 0.05)
            ),
            "cached_exact": sum(
                1 for r in compared if r.predicted.cached_tokens == r.observed.cached_tokens
            ),
            "absolute_error": self.error(),
            "cost_usd": {
                "predicted": round(predicted, 6),
                "observed": round(observed, 6),
                "difference": round(predicted - observed, 6),
            },
            "rows": [_row(r) for r in self.rows],
            "notes": self.note_counts(),
        }


def _row(r: ResponseOutcome) -> dict[str, Any]:
    p, o = r.predicted_cost.total, r.observed_cost.total
    seen = observed(r)  # an unfinished response has no observed usage: nulls, not zeros
    return {
        "session": r.session,
        "response": r.response,
        "response_id": r.response_id,
        "out_of_band": not r.in_band,
        "status": r.status,
        "compared": r.compared,
        "predicted": _flat(r.predicted),
        "observed": _flat(r.observed) if seen else None,
        "input_error": r.predicted.input_tokens - r.observed.input_tokens if seen else None,
        "cached_error": r.predicted.cached_tokens - r.observed.cached_tokens if seen else None,
        "cost_usd": {
            "predicted": round(p, 6),
            "observed": round(o, 6) if seen else None,
            "difference": round(p - o, 6) if seen else None,
        },
    }


def observed(r: ResponseOutcome) -> bool:
    """Whether the row has an observed usage (its ``response.done`` was in the log)."""
    return r.status != UNFINISHED


def _flat(u: Usage) -> dict[str, int]:
    return {
        "input_tokens": u.input_tokens,
        "text_tokens": u.input.text,
        "audio_tokens": u.input.audio,
        "image_tokens": u.input.image,
        "cached_tokens": u.cached_tokens,
        "output_tokens": u.output_tokens,
    }


def _within(predicted: int, observed: int, tolerance: float) -> bool:
    return abs(predicted - observed) <= tolerance * max(observed, 1)


def iter_rows(report: ReplayReport) -> Iterator[dict[str, Any]]:
    """Rows for a table: predicted and observed side by side, errors, dollars."""
    for r in report.rows:
        p, o = r.predicted, r.observed
        seen = observed(r)
        # Input error without the cache: the cache is the least certain part of the model.
        yield {
            "session": r.session,
            "response": r.response if r.in_band else "oob",
            "status": r.status,
            "input": (p.input_tokens, o.input_tokens if seen else None),
            "text": (p.input.text, o.input.text if seen else None),
            "audio": (p.input.audio, o.input.audio if seen else None),
            "cached": (p.cached_tokens, o.cached_tokens if seen else None),
            "error_pct": 100.0 * (p.input_tokens - o.input_tokens) / max(o.input_tokens, 1)
            if seen
            else None,
            "usd": (r.predicted_cost.total, r.observed_cost.total if seen else None),
        }
