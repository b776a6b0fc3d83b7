"""The store for asyncio code: every call runs in a worker thread, so the event loop never waits.

`AsyncStore` wraps a `Store` and offers the same methods as coroutines. Database drivers block,
so each call is handed to a thread of its own small pool (one thread by default: the calls of
one store then run in the order they were made, which keeps a conversation's appends in order).

A write the database cannot take (it is unreachable or locked, even after the `Store`'s own
retries) is not lost: the store keeps it in memory, returns as if it were written (with the ids
it will have; a new session's or compaction's id is provisional, a negative number this store
maps to the real one once it is written) and writes it before any later write, so the order
holds. Later writes join the queue until the database is back; each is a chance to retry, at
most as often as a growing backoff allows (50 ms doubling to 5 s; reset by any progress).
`AsyncStore.pending` says how many are kept. At most `max_pending` are kept: past that a write
is refused with a `StoreError` whose ``reason`` is ``pending`` (none is ever dropped). A read
first writes what is kept (it would miss it otherwise) and, if it cannot, raises that same
error. `flush` writes everything now (retrying for up to `flush_seconds`); `close` flushes and
raises if anything could not be written.

>>> import asyncio, tempfile
>>> from context_manager import Message
>>> async def demo(url: str) -> int:
...     async with AsyncStore(url) as store:
...         cid = await store.create_conversation()
...         await store.append(cid, [Message(role="user", text="hello")])
...         return len((await store.load(cid)).items)
>>> with tempfile.TemporaryDirectory() as tmp:
...     asyncio.run(demo(f"sqlite:///{tmp}/demo.db"))
1
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from ..errors import StoreError
from ..items import Item
from ..rollover import RolloverPolicy
from ..server.usage import Usage
from ..tokens import TokenCounter
from .database import DEFAULT_URL, Call
from .models import ItemStatus
from .repository import Store, StoredConversation

__all__ = ["AsyncStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_WAIT, _MAX_WAIT = 0.05, 5.0
"""The backoff between retries of kept writes, in seconds: doubling from the first to the max."""


class AsyncStore:
    """`Store`'s methods as coroutines, run off the event loop.

    Args:
        url: an SQLAlchemy URL (default: `DEFAULT_URL`).
        counter: as for `Store`.
        threads: worker threads (1 keeps calls in order; more allow parallel reads).
        max_pending: how many writes the store keeps in memory while the database cannot take
            them; one more is refused with a `StoreError` (reason ``pending``).
        retry_seconds: as for `Store`: how long one call retries a transient failure before
            its write is kept (and how long a read waits for the kept ones to be written).
        flush_seconds: how long `flush` (and `close`) keep retrying the kept writes.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        counter: TokenCounter | None = None,
        threads: int = 1,
        max_pending: int = 10_000,
        retry_seconds: float = 2.0,
        flush_seconds: float = 10.0,
    ) -> None:
        self._url, self._counter, self._retry_seconds = url, counter, retry_seconds
        self.flush_seconds = flush_seconds
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="context-manager-store")
        self._store: Store | None = None
        self.max_pending = max_pending
        self._pending: deque[Call] = deque()
        self._refused: list[StoreError] = []
        self._cause: StoreError | None = None
        self._lock = threading.Lock()
        self._wait, self._next_try = _FIRST_WAIT, 0.0
        self._provisional = 0
        self._closed = False

    @property
    def pending(self) -> int:
        """How many writes are kept in memory, not yet stored."""
        return len(self._pending)

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))

    async def _sync(self) -> Store:
        if self._store is None:  # the migration and the first connection, off the loop too
            self._store = await self._run(
                Store, self._url, counter=self._counter, retry_seconds=self._retry_seconds
            )
        return self._store

    async def __aenter__(self) -> AsyncStore:
        await self._sync()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def flush(self) -> None:
        """Write every kept write now, retrying for up to `flush_seconds`.

        Raises:
            StoreError: some are still kept (reason ``pending``, with the count in
                ``pending``), or the database refused some when they were retried (a
                reference that no longer holds, say): those are gone, and the error says so.
        """
        if self._store is not None:
            await self._run(self._flush, self._store)

    async def close(self) -> None:
        """Write what is kept, release the connections and the worker threads.

        Raises:
            StoreError: as `flush`; the writes still kept are then lost (``pending`` counts
                them).
        """
        if self._closed:
            return
        self._closed = True
        error: StoreError | None = None
        if self._store is not None:
            try:
                await self.flush()
            except StoreError as exc:
                error = exc
            await self._run(self._store.close)
        self._pool.shutdown(wait=True)
        if error is not None:
            lost = len(self._pending)
            self._pending.clear()
            raise StoreError(
                f"closed with {lost} writes never stored: {error}" if lost else str(error),
                reason=error.reason,
                transient=False,
                pending=lost,
            )

    # ------------------------------------------------------------------ kept writes
    async def _write(self, prepare: Callable[[Store], Call]) -> Any:
        store = await self._sync()
        return await self._run(self._write_now, store, prepare)

    def _write_now(self, store: Store, prepare: Callable[[Store], Call]) -> Any:
        call = prepare(store)  # a value the store refuses is refused here, and nothing is kept
        with self._lock:
            if self._pending:
                self._drain(store, force=False)
            if not self._pending:
                try:
                    return store.run(call)
                except StoreError as exc:
                    if not exc.transient:
                        raise
                    self._cause = exc
            return self._keep(call)

    def _keep(self, call: Call) -> Any:
        if len(self._pending) >= self.max_pending:
            raise self._error(f"refusing to {call.what}")
        if call.new_id is not None:
            self._provisional -= 1
            call.result = self._provisional
        self._pending.append(call)
        if len(self._pending) == 1:
            log.warning("keeping store writes in memory until the database takes them: %s",
                        self._cause)  # fmt: skip
            self._wait, self._next_try = _FIRST_WAIT, time.monotonic() + _FIRST_WAIT
        return call.result

    def _drain(self, store: Store, *, force: bool) -> None:
        """Write the kept writes, oldest first, until one fails (``force``: retry each)."""
        written = 0
        while self._pending:
            if not force and time.monotonic() < self._next_try:
                return
            call = self._pending[0]
            try:
                result = store.run(call, retry=force)
            except StoreError as exc:
                if exc.transient:
                    self._cause = exc
                    self._wait = min(self._wait * 2, _MAX_WAIT)
                    self._next_try = time.monotonic() + self._wait
                    return
                self._pending.popleft()
                self._refused.append(exc)
                log.error("a kept store write was refused when retried: %s", exc)
                continue
            self._pending.popleft()
            written += 1
            self._wait = _FIRST_WAIT  # progress: the next failure waits the least again
            if call.new_id == "session":
                store.aliases[call.result] = result
        if written:
            log.info("the database took the %d kept store writes", written)

    def _drain_for(self, store: Store, seconds: float) -> None:
        """Write the kept writes, retrying transient failures for `seconds` (with backoff)."""
        deadline, wait = time.monotonic() + seconds, _FIRST_WAIT
        while True:
            before = len(self._pending)
            self._drain(store, force=True)
            if not self._pending or time.monotonic() + wait > deadline:
                return
            wait = _FIRST_WAIT if len(self._pending) < before else min(wait * 2, _MAX_WAIT)
            time.sleep(wait)

    def _flush(self, store: Store) -> None:
        with self._lock:
            self._drain_for(store, self.flush_seconds)
            refused, self._refused = self._refused, []
            if self._pending:
                raise self._error("cannot write them now")
            if refused:
                raise StoreError(
                    f"{len(refused)} kept writes were refused when retried (lost); the first:"
                    f" {refused[0]}",
                    reason=refused[0].reason,
                )

    def _error(self, doing: str) -> StoreError:
        count = len(self._pending)
        return StoreError(
            f"{count} writes are waiting for the database ({self._cause}); {doing}",
            reason="pending",
            transient=True,
            pending=count,
        )

    async def _read(self, read: Callable[..., T], *args: Any) -> T:
        store = await self._sync()
        return await self._run(self._read_now, store, read, *args)

    def _read_now(self, store: Store, read: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._pending:  # a read now would miss them
                self._drain_for(store, self._retry_seconds)
                if self._pending:
                    raise self._error("a read now would miss them")
        return read(store, *args)

    # ------------------------------------------------------------------ the store's methods
    async def create_conversation(
        self, conversation_id: str | None = None, title: str | None = None
    ) -> str:
        """See `Store.create_conversation`."""
        result: str = await self._write(lambda s: s._create_conversation(conversation_id, title))
        return result

    async def conversations(self) -> list[str]:
        """See `Store.conversations`."""
        return await self._read(Store.conversations)

    async def start_session(
        self, conversation_id: str, *, provider: str, model: str, started_at: datetime | None = None
    ) -> int:
        """See `Store.start_session` (the id is provisional while the write is kept)."""
        result: int = await self._write(
            lambda s: s._start_session(conversation_id, provider, model, started_at)
        )
        return result

    async def end_session(
        self, session_id: int, reason: str, ended_at: datetime | None = None
    ) -> None:
        """See `Store.end_session`."""
        await self._write(lambda s: s._end_session(session_id, reason, ended_at))

    async def note_uncarried(self, session_id: int, keys: Sequence[str]) -> None:
        """See `Store.note_uncarried`."""
        chosen = list(keys)
        await self._write(lambda s: s._note_uncarried(session_id, chosen))

    async def note_open_turn(self, session_id: int, ms: int | None) -> None:
        """See `Store.note_open_turn`."""
        await self._write(lambda s: s._note_open_turn(session_id, ms))

    async def open_turns(self, conversation_id: str) -> list[int]:
        """See `Store.open_turns`."""
        return await self._read(Store.open_turns, conversation_id)

    async def end_open_sessions(self, conversation_id: str, reason: str) -> None:
        """See `Store.end_open_sessions`."""
        await self._write(lambda s: s._end_open_sessions(conversation_id, reason))

    async def append(
        self,
        conversation_id: str,
        items: Iterable[Item],
        *,
        session_id: int | None = None,
        uids: Sequence[str] | None = None,
    ) -> list[str]:
        """See `Store.append`."""
        items = list(items)
        uids = None if uids is None else list(uids)
        result: list[str] = await self._write(
            lambda s: s._append(conversation_id, items, session_id, uids)
        )
        return result

    async def update_item(self, conversation_id: str, uid: str, item: Item) -> None:
        """See `Store.update_item`."""
        await self._write(lambda s: s._update_item(conversation_id, uid, item))

    async def record_server_ids(
        self, conversation_id: str, session_id: int, server_ids: Mapping[str, str]
    ) -> None:
        """See `Store.record_server_ids`."""
        ids = dict(server_ids)
        await self._write(lambda s: s._record_server_ids(conversation_id, session_id, ids))

    async def server_ids(self, conversation_id: str, session_id: int) -> dict[str, str]:
        """See `Store.server_ids`."""
        return await self._read(Store.server_ids, conversation_id, session_id)

    async def mark(self, conversation_id: str, uids: Sequence[str], status: ItemStatus) -> None:
        """See `Store.mark`."""
        keys = list(uids)
        await self._write(lambda s: s._mark(conversation_id, keys, status))

    async def record_compaction(self, conversation_id: str, **kwargs: Any) -> int:
        """See `Store.record_compaction` (same keywords; the id is provisional while kept)."""
        result: int = await self._write(lambda s: s._record_compaction(conversation_id, **kwargs))
        return result

    async def record_usage(self, conversation_id: str, observed: Usage, **kwargs: Any) -> None:
        """See `Store.record_usage` (same keyword arguments)."""
        await self._write(lambda s: s._record_usage(conversation_id, observed, **kwargs))

    async def usage(self, conversation_id: str) -> list[dict[str, Any]]:
        """See `Store.usage`."""
        return await self._read(Store.usage, conversation_id)

    async def load(self, conversation_id: str) -> StoredConversation:
        """See `Store.load`."""
        return await self._read(Store.load, conversation_id)

    async def seed(self, conversation_id: str, policy: RolloverPolicy | None = None) -> list[Item]:
        """See `Store.seed`."""
        return await self._read(Store.seed, conversation_id, policy)
