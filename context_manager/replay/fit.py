"""`fit_profile`: the profile switches that match recorded sessions best.

Steepest descent over the uncertain switches (item overheads, transcript-in-context
switches, cache block and minimum, the reasoning models' request preamble): each round tries
every single-switch change from the current best and keeps the one that lowers the total
absolute error of input text, input audio and cached tokens the most, until no change helps.
(Taking switches in turn instead stalls where one overhead half-compensates for another.)
The preamble's candidates come from the residual: the median text the model misses on the
responses without tools (the fixed preamble) and with tools (the part tools add), and a few
tokens either side.

The reasoning tokens a response makes are not in the request, so they do not move the input
error: `fit_profile` sets ``reasoning_output_tokens`` to the mean of the
``output_token_details.reasoning_tokens`` the logs report, where they report it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ..profiles import ModelProfile, ProviderProfile
from .log import LogEvent
from .report import ReplayReport
from .run import replay

__all__ = ["fit_profile", "reported_reasoning_tokens"]

_SEARCH: dict[str, Sequence[Any]] = {
    "item_overhead_tokens": range(9),
    "user_audio_overhead_tokens": range(9),
    "assistant_audio_overhead_tokens": range(13),
    "function_overhead_tokens": range(9),
    "user_transcript_in_context": (False, True),
    "assistant_transcript_in_context": (False, True),
    "cache.block_tokens": (64, 128),
    "cache.min_prefix_tokens": (0, 64, 1024),
}
_NEAR = (-2, -1, 1, 2)


def _with(profile: ModelProfile, key: str, value: Any) -> ModelProfile:
    if key.startswith("cache."):
        return profile.model_copy(
            update={"cache": profile.cache.model_copy(update={key[6:]: value})}
        )
    return profile.model_copy(update={key: value})


def _has_tools(log: Sequence[LogEvent]) -> bool:
    for e in log:
        session = e.event.get("session")
        kind = e.event.get("type")
        told = e.direction == "server" and kind in ("session.created", "session.updated")
        if told and isinstance(session, dict) and session.get("tools"):
            return True
    return False


def _preamble_candidates(
    profile: ModelProfile, logs: Sequence[Sequence[LogEvent]], reports: list[ReplayReport]
) -> dict[str, list[int]]:
    """Candidate preamble sizes from the median missed text, without and with tools."""
    missed: dict[bool, list[int]] = {False: [], True: []}
    for log, report in zip(logs, reports, strict=True):
        tools = _has_tools(log)
        for r in report.compared():
            missed[tools].append(r.observed.input.text - r.predicted.input.text)
    out: dict[str, list[int]] = {}
    for key, tools in (("request_preamble_tokens", False), ("tools_preamble_tokens", True)):
        now = getattr(profile, key)
        guess = now + round(statistics.median(missed[tools])) if missed[tools] else now
        out[key] = sorted({max(0, v) for v in (guess, *(now + d for d in _NEAR))})
    return out


def reported_reasoning_tokens(logs: Sequence[Sequence[LogEvent]]) -> list[int]:
    """The ``reasoning_tokens`` each ``response.done`` of the logs reports (where it does)."""
    found = []
    for log in logs:
        for e in log:
            if e.direction != "server" or e.event.get("type") != "response.done":
                continue
            usage = (e.event.get("response") or {}).get("usage") or {}
            details = usage.get("output_token_details") if isinstance(usage, dict) else None
            value = details.get("reasoning_tokens") if isinstance(details, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                found.append(value)
    return found


def fit_profile(
    logs: Sequence[Sequence[LogEvent]],
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    *,
    rounds: int = 10,
) -> tuple[ModelProfile, int, int]:
    """Search the uncertain switches for the profile that matches the logs best.

    Returns:
        The fitted profile, its error, and the error of `profile` itself.
    """

    def run(candidate: ModelProfile) -> list[ReplayReport]:
        return [replay(log, candidate, provider, follow_session_model=False) for log in logs]

    best = profile
    reasoning = reported_reasoning_tokens(logs)
    if reasoning:
        best = _with(best, "reasoning_output_tokens", round(statistics.mean(reasoning)))
    reports = run(best)
    best_error = start_error = sum(r.error() for r in reports)
    for _ in range(rounds):
        step, step_error, step_reports = best, best_error, reports
        search = {**_SEARCH, **_preamble_candidates(best, logs, reports)}
        for key, values in search.items():
            for value in values:
                candidate = _with(best, key, value)
                tried = run(candidate)
                e = sum(r.error() for r in tried)
                if e < step_error:
                    step, step_error, step_reports = candidate, e, tried
        if step is best:
            break
        best, best_error, reports = step, step_error, step_reports
    return best, best_error, start_error
