"""The record writer: the engine's records written to the store in order, off the event loop.

A background task takes records from a queue and writes them through a `Recorder`. A write that
fails is not dropped: the writer keeps it at the head of the queue and tries again with backoff
(a database restarting, a network blip), so order is kept and nothing is lost; one the store
refuses for good (`StoreError.transient` false: a value it cannot hold) is set aside in
`rejected` so it does not block the writes after it; `flush` waits
until everything queued so far is written. `close` gives up after its deadline and raises a
`StoreError` naming how many records could not be written (they stay in `pending`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from ..errors import StoreError
from ..live import Record

__all__ = ["RecordWriter"]

log = logging.getLogger(__name__)


class RecordWriter:
    """Writes records through `write` (a `Recorder.write`) in a background task.

    Args:
        write: the coroutine that persists one record.
        backoff_seconds: the first wait after a failed write (doubled up to `max_backoff`).
        max_backoff: the longest wait between tries.
    """

    def __init__(
        self,
        write: Callable[[Record], Awaitable[None]],
        *,
        backoff_seconds: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        self._write = write
        self.backoff_seconds = backoff_seconds
        self.max_backoff = max_backoff
        self.pending: deque[Record] = deque()
        """Records not written yet, oldest first."""
        self.failures = 0
        """Failed write attempts so far (each was retried)."""
        self.rejected: list[Record] = []
        """Records the store refused for good (an invalid value): kept, never retried."""
        self.last_error: str | None = None
        """The type of the last failure (never its message: it may hold conversation text)."""
        self.failing = False
        """Whether the last write attempt failed (it is being retried)."""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task (in the running loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="context-manager-writer")

    def put(self, records: list[Record]) -> None:
        """Queue records to write (returns at once)."""
        if records:
            self.pending.extend(records)
            self._idle.clear()
            self._wake.set()

    async def flush(self, seconds: float | None = None) -> None:
        """Wait until everything queued so far is written.

        Raises:
            StoreError: the store still refuses after `seconds` (records stay queued).
        """
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            raise StoreError(
                f"{len(self.pending)} records could not be written yet"
                f" ({self.failures} failed tries, last: {self.last_error})"
            ) from None

    async def close(self, seconds: float = 10.0) -> None:
        """Write what is queued (waiting at most `seconds`), then stop."""
        try:
            await self.flush(seconds)
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None

    async def _run(self) -> None:
        delay = self.backoff_seconds
        while True:
            if not self.pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            record = self.pending[0]
            try:
                await self._write(record)
            except StoreError as exc:
                if exc.transient:
                    await self._retry(exc, record, delay)
                    delay = min(delay * 2, self.max_backoff)
                    continue
                # A value the store refuses for good (it would block every later write if
                # retried): kept here, counted, logged by kind, and the writer goes on.
                self.rejected.append(record)
                self.last_error = f"{type(exc).__name__} ({exc.reason})"
                log.error("the store refused a %s record (%s)", record.kind, exc.reason)
                self.pending.popleft()
                continue
            except Exception as exc:  # kept and retried: a write is never dropped
                await self._retry(exc, record, delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            self.pending.popleft()
            self.failing = False
            delay = self.backoff_seconds

    async def _retry(self, exc: Exception, record: Record, delay: float) -> None:
        self.failures += 1
        self.failing = True
        self.last_error = type(exc).__name__
        log.warning(
            "could not store a %s record (%s); retrying in %.2f s",
            record.kind,
            self.last_error,
            delay,
        )
        await asyncio.sleep(delay)
