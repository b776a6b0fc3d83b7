"""The live engine's compaction steps: when to plan, planning off the loop, confirmation.

`CompactionSteps` is the part of `ContextEngine` that runs its compaction strategy: after a
``response.done`` at a safe point it plans (in place, or handed out as a `CompactionJob` for a
worker thread when `offload` is set), sends a plan that still fits the conversation, and counts
the compaction once the server has confirmed every step (`PendingCompaction`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..compaction.plan import CompactionPlan
from ..compaction.strategies import CompactionContext, CompactionStrategy
from ..profiles import ModelProfile
from ..tokens import TokenCounter
from .confirm import PendingCompaction
from .history import CallHistory
from .jobs import CompactionJob, fits
from .mirror import SessionMirror
from .records import Record

__all__ = ["CompactionSteps"]


class CompactionSteps:
    """Compaction for `ContextEngine` (a mixin: the engine holds the state)."""

    compaction: CompactionStrategy | None
    mirror: SessionMirror
    history: CallHistory
    profile: ModelProfile
    clock: Callable[[], float]
    session_index: int
    expired: bool
    offload: bool
    compactions: int
    compaction_failures: int
    _records: list[Record]
    _pending: PendingCompaction
    _job: CompactionJob | None
    _ready: tuple[CompactionPlan, int] | None
    _last_response_at: float | None

    @property
    def counter(self) -> TokenCounter:
        """The token counter of the (calibrated) profile."""
        return self.mirror.counter

    @property
    def leaving(self) -> set[str]:
        """Server ids a compaction sent deletes for, not yet confirmed."""
        plan = self._pending.plan
        return set(plan.deletes) & self._pending.waiting if plan is not None else set()

    @property
    def safe(self) -> bool:
        """Nothing in flight: no response, function call, speech, plan or transcript.

        A response counts from its request (or the commit that starts it) to its end; a
        response or a transcript on its way would be lost with its session at a rollover.
        """
        mirror = self.mirror
        return not (
            mirror.responding or mirror.awaiting or mirror.speaking or mirror.transcribing
            or self.history.pending_calls or self._pending.waiting
        )  # fmt: skip

    def _cold(self) -> bool:
        if self._last_response_at is None or self.mirror.server.responses_created <= 1:
            return True
        return self.clock() - self._last_response_at >= self.profile.cache.ttl_seconds

    def _compact(self) -> list[dict[str, Any]]:
        if self.compaction is None or not self.safe or self.expired:
            return []
        if self._ready is not None:  # a plan came back while the call was busy: send it now
            plan, tokens, self._ready = *self._ready, None
            return self._send_plan(plan, tokens)
        if self._job is not None:
            return []  # one planning at a time
        job = CompactionJob(
            self.compaction,
            CompactionContext(
                items=self.mirror.items,
                counter=self.counter,
                limit=self.mirror.history_limit,
                cold=self._cold(),
                total=self.mirror.history_tokens(),
            ),
            self.session_index,
        )
        if self.offload:
            self._job = job
            return []
        return self._send_plan(job.plan_here(), job.tokens_before)

    def take_compaction_job(self) -> CompactionJob | None:
        """The planning to run off the event loop, when `offload` is set.

        Run it (`CompactionJob.plan_here`, in a worker thread) and give its plan to
        `compaction_ready`.
        """
        job, self._job = self._job, None
        return job

    def compaction_ready(
        self, job: CompactionJob, plan: CompactionPlan | None
    ) -> list[dict[str, Any]]:
        """A job's plan is back (``None``: it failed); returns the client events to send now.

        A plan for an earlier session, or one the conversation has moved past, is dropped;
        one that arrives while a response runs waits for the next safe point.
        """
        if plan is None:
            self.compaction_failures += 1
            return []
        if job.session != self.session_index or self.expired:
            return []
        if not self.safe:
            self._ready = (plan, job.tokens_before)
            return []
        return self._send_plan(plan, job.tokens_before)

    def _send_plan(self, plan: CompactionPlan | None, tokens_before: int) -> list[dict[str, Any]]:
        if plan is None or plan.empty:
            return []
        if not fits(plan, self.mirror.items):
            self.mirror.note("compaction: the plan no longer fits the conversation; dropped")
            return []
        self._pending = PendingCompaction.of(plan, tokens_before)
        return plan.client_events()

    def _confirm(self, item_id: str) -> None:
        strategy = getattr(self.compaction, "name", "compaction")
        done = self._pending.confirm(
            item_id, self.history, session=self.session_index, strategy=strategy
        )
        if done is None:
            return
        self.compactions += 1
        self._records.append(replace(done, tokens_after=self.mirror.history_tokens()))
        self._pending = PendingCompaction()
