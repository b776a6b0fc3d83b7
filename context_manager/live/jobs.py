"""Compaction jobs: a strategy's planning (its summarizer, mostly) as work for another thread.

In a voice agent the event loop must never wait for a summary: silence is heard. With
`ContextEngine.offload` set (the realtime adapter sets it), the engine does not plan inside
`feed`; it hands out a `CompactionJob` (a snapshot of the conversation and the strategy), the
adapter runs it in a worker thread with a deadline, and gives the plan back
(`ContextEngine.compaction_ready`), which sends it if it still fits the conversation.

A job that raises or misses its deadline falls back to the same strategy with the offline
extractive summarizer; if that fails too, nothing is compacted (the server's truncation still
keeps the window) and the failure is counted.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..compaction.plan import ROOT, CompactionPlan
from ..compaction.strategies import CompactionContext, CompactionStrategy
from ..compaction.summarizers import ExtractiveSummarizer
from ..items import Item

__all__ = ["CompactionJob", "fits"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompactionJob:
    """One planning of `strategy` over a snapshot of the conversation."""

    strategy: CompactionStrategy
    context: CompactionContext
    session: int
    """The engine's session index when the job was made (a plan for an older one is void)."""

    @property
    def tokens_before(self) -> int:
        """The conversation's tokens when the job was made."""
        return self.context.tokens()

    def run(self) -> CompactionPlan | None:
        """Plan with the strategy as configured (may be slow; raises what it raises).

        The fallback's summarizer reads the newest items first, so that a fallback, when it
        comes, only chooses sentences (a cold one reads the whole history while the event
        loop waits for the interpreter's lock).
        """
        if not isinstance(getattr(self.strategy, "summarizer", None), ExtractiveSummarizer):
            _offline().observe(self.context.newest())
        return self.strategy.plan(self.context)

    def fallback(self) -> CompactionPlan | None:
        """Plan with the offline extractive summarizer instead (``None``: no other way)."""
        summarizer = getattr(self.strategy, "summarizer", None)
        if summarizer is None or isinstance(summarizer, ExtractiveSummarizer):
            return None
        strategy: Any = self.strategy
        if not hasattr(strategy, "__dataclass_fields__"):
            return None  # a strategy of the caller's own: no way to swap its summarizer
        offline: Any = dataclasses.replace(strategy, summarizer=_offline())
        plan: CompactionPlan | None = offline.plan(self.context)
        return plan

    def plan_here(self) -> CompactionPlan | None:
        """`run`, falling back as documented, in the calling thread (never raises)."""
        for attempt in (self.run, self.fallback):
            try:
                return attempt()
            except Exception as exc:  # a summarizer's failure is never the call's
                log.warning("compaction planning failed: %s", type(exc).__name__)
        return None


@functools.cache
def _offline() -> ExtractiveSummarizer:
    """One extractive summarizer for every fallback of the process (its memo stays warm)."""
    return ExtractiveSummarizer()


def fits(plan: CompactionPlan, items: Iterable[Item]) -> bool:
    """Whether `plan` can still be applied to the conversation `items` (it may be stale)."""
    present = {i.id for i in items}
    created = {c.item.id for c in plan.creates}
    if not set(plan.deletes) <= present or created & present:
        return False
    places: Sequence[str | None] = [c.previous_item_id for c in plan.creates]
    return all(p in (None, ROOT) or p in present or p in created for p in places)
