"""The adapter's own work beside the call: compaction off the loop, summaries, records.

A mixin of `ManagedConnection`: compaction is planned in a worker thread with a deadline (a
slow or failing summarizer falls back to the extractive summary), its plan sent if it still
fits; a planned rollover waits for the realtime model's summary of what its seed cannot carry
as it is, asked out of band while the old session can still answer; `busy` and `idle` tell an
application (or a test) when that work is under way; records go to the store's writer in
order (`flush` waits for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import RolloverError
from ..live import ContextEngine
from ..live.jobs import CompactionJob
from ..live.records import TurnInProgress
from ..rollover import SeedSummary
from .inflight import InFlight
from .oob import OutOfBand, RealtimeSummarizer, SummaryAhead, summary_ahead
from .writer import RecordWriter

if TYPE_CHECKING:
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

__all__ = ["ADAPTER_EVENT", "BesideTheCall"]

ADAPTER_EVENT = "cm_"
"""How the ``event_id`` of every client event of the adapter's own begins."""

log = logging.getLogger("context_manager.realtime.connection")


class BesideTheCall:
    """The adapter's background work (see the module); `ManagedConnection` sets the state."""

    engine: ContextEngine
    summary_timeout_seconds: float
    _tasks: set[asyncio.Task[Any]]
    _summary: asyncio.Future[Any] | None
    _compacting: asyncio.Task[Any] | None
    _summary_thread: ThreadPoolExecutor
    _fallback_thread: ThreadPoolExecutor
    _lock: asyncio.Lock
    _conn: AsyncRealtimeConnection | None
    _closing: bool
    _inflight: InFlight
    _oob: OutOfBand
    _ahead: SummaryAhead
    _writer: RecordWriter | None

    def _background(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send_all(
        self, conn: AsyncRealtimeConnection, events: list[dict[str, Any]], *, ours: bool = True
    ) -> None:
        for event in events:
            if ours:
                # Named as the adapter's, so an error answering it is not the application's.
                event = {"event_id": f"{ADAPTER_EVENT}{uuid.uuid4().hex[:20]}", **event}
                self._inflight.adapter_sent(event)
            self.engine.sent(event)
            await conn.send(event)  # type: ignore[arg-type]
            # A send returns without yielding while the socket's buffer has room: a long
            # seed would hold the loop for all of its events (30-60 ms measured).
            await asyncio.sleep(0)

    def _start_jobs(self) -> None:
        # One summary at a time, in a thread of its own: a summarizer that hangs past its
        # deadline keeps its thread, and no other planning starts until it lets go (the
        # engine keeps the job meanwhile), so hung summaries never pile up.
        if self._summary is not None and not self._summary.done():
            return
        job = self.engine.take_compaction_job()
        if job is not None:
            self._compacting = self._background(self._compact(job))

    @property
    def busy(self) -> bool:
        """Whether the adapter's own work is under way.

        That is a compaction being planned or sent, a summary asked of the model, or a
        rollover's summary being written. Its events come in through `recv` like any other
        (and are kept from the application), so keep reading while it is busy. A test that
        wants the same call every run waits for it (`idle`) at each turn.
        """
        return bool(self._unsettled())

    async def idle(self) -> None:
        """Wait until `busy` is false (another task must keep reading meanwhile)."""
        while waits := self._unsettled():
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)

    def _unsettled(self) -> list[asyncio.Future[Any]]:
        running = (self._summary, self._compacting, self._ahead.future, *self._oob.waiting)
        return [f for f in running if f is not None and not f.done()]

    async def _compact(self, job: CompactionJob) -> None:
        """Plan off the loop, with a deadline; then send the plan if it still fits."""
        loop = asyncio.get_running_loop()
        self._summary = loop.run_in_executor(self._summary_thread, job.run)
        try:
            plan = await asyncio.wait_for(
                asyncio.shield(self._summary), self.summary_timeout_seconds
            )
        except Exception as exc:  # slow or failing summarizer: the extractive fallback
            log.warning("compaction summary failed (%s); falling back", type(exc).__name__)
            try:
                plan = await asyncio.wait_for(
                    loop.run_in_executor(self._fallback_thread, job.fallback),
                    self.summary_timeout_seconds,
                )
            except Exception as again:
                log.warning("compaction fallback failed (%s)", type(again).__name__)
                plan = None
        events = self.engine.compaction_ready(job, plan)
        if not events:
            return
        async with self._lock:
            conn = self._conn
            if conn is None or self._closing:
                return
            with contextlib.suppress(Exception):  # a drop now: the plan is simply not sent
                await self._send_all(conn, events)

    # ------------------------------------------------------------------ the model's summaries

    def _rollover_now(self) -> bool:
        """A planned rollover is due, and the summary its seed carries is in.

        The realtime model writes that summary ahead of the switch, while the old session
        can still answer; any other summarizer writes it during the switch.
        """
        engine = self.engine
        if not engine.rollover_due or engine.expired:
            return False
        summarizer = engine.rollover.summarizer
        if not isinstance(summarizer, RealtimeSummarizer) or engine.rollover.carry != "summary":
            return True
        return self._ahead.ready(engine, lambda: self._summary_ahead(summarizer))

    async def _summary_ahead(self, summarizer: RealtimeSummarizer) -> SeedSummary | None:
        return await summary_ahead(
            self.engine, summarizer, self._summary_thread, self.summary_timeout_seconds,
            resent=tuple(self._inflight.unacked),
        )  # fmt: skip

    def _live_ids(self) -> dict[str, str]:
        """Server ids of the items the session holds now, by history key and by themselves."""
        # Not an item a compaction is deleting (its delete may be on its way).
        held = {i.id for i in self.engine.mirror.items} - self.engine.leaving
        return {k: v for k, v in self.engine.history.server_ids().items() if v in held}

    async def _send_oob(self, event: dict[str, Any]) -> None:
        async with self._lock:
            if self._conn is None or not self._oob.open:
                raise RolloverError("no live session for an out-of-band request")
            await self._send_all(self._conn, [event])

    def _queue_records(self) -> None:
        records = self.engine.take_records()
        if self._writer is not None:
            self._writer.put(records)

    def _note(self, *records: TurnInProgress | None) -> None:
        """Records of the adapter's own, after the engine's so far (so their sessions exist)."""
        self._queue_records()
        if self._writer is not None:
            self._writer.put([r for r in records if r is not None])

    async def flush(self) -> None:
        """Wait until every record so far is written to the store.

        Raises:
            StoreError: the store would not take them within 10 s (they stay queued).
        """
        if self._writer is None:
            return
        self._queue_records()
        await self._writer.flush(10.0)
