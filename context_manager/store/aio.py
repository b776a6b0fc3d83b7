"""The store for asyncio code: every call runs in a worker thread, so the event loop never waits.

`AsyncStore` wraps a `Store` and offers the same methods as coroutines. Database drivers block,
so each call is handed to a thread of its own small pool (one thread by default: the calls of
one store then run in the order they were made, which keeps a conversation's appends in order).

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from ..items import Item
from ..rollover import RolloverPolicy
from ..server.usage import Usage
from ..tokens import TokenCounter
from .models import ItemStatus
from .repository import DEFAULT_URL, Store, StoredConversation

__all__ = ["AsyncStore"]

T = TypeVar("T")


class AsyncStore:
    """`Store`'s methods as coroutines, run off the event loop.

    Args:
        url: an SQLAlchemy URL (default: `DEFAULT_URL`).
        counter: as for `Store`.
        threads: worker threads (1 keeps calls in order; more allow parallel reads).
    """

    def __init__(
        self, url: str = DEFAULT_URL, *, counter: TokenCounter | None = None, threads: int = 1
    ) -> None:
        self._url, self._counter = url, counter
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="context-manager-store")
        self._store: Store | None = None

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))

    async def _sync(self) -> Store:
        if self._store is None:  # the migration and the first connection, off the loop too
            self._store = await self._run(Store, self._url, counter=self._counter)
        return self._store

    async def __aenter__(self) -> AsyncStore:
        await self._sync()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connections and the worker threads."""
        if self._store is not None:
            await self._run(self._store.close)
        self._pool.shutdown(wait=True)

    async def create_conversation(
        self, conversation_id: str | None = None, title: str | None = None
    ) -> str:
        """See `Store.create_conversation`."""
        return await self._run((await self._sync()).create_conversation, conversation_id, title)

    async def conversations(self) -> list[str]:
        """See `Store.conversations`."""
        return await self._run((await self._sync()).conversations)

    async def start_session(
        self, conversation_id: str, *, provider: str, model: str, started_at: datetime | None = None
    ) -> int:
        """See `Store.start_session`."""
        store = await self._sync()
        return await self._run(store.start_session, conversation_id, provider=provider,
                               model=model, started_at=started_at)  # fmt: skip

    async def end_session(
        self, session_id: int, reason: str, ended_at: datetime | None = None
    ) -> None:
        """See `Store.end_session`."""
        await self._run((await self._sync()).end_session, session_id, reason, ended_at)

    async def append(
        self,
        conversation_id: str,
        items: Iterable[Item],
        *,
        session_id: int | None = None,
        uids: Sequence[str] | None = None,
    ) -> list[str]:
        """See `Store.append`."""
        store = await self._sync()
        return await self._run(
            store.append, conversation_id, list(items), session_id=session_id, uids=uids
        )

    async def update_item(self, conversation_id: str, uid: str, item: Item) -> None:
        """See `Store.update_item`."""
        await self._run((await self._sync()).update_item, conversation_id, uid, item)

    async def record_server_ids(
        self, conversation_id: str, session_id: int, server_ids: Mapping[str, str]
    ) -> None:
        """See `Store.record_server_ids`."""
        store = await self._sync()
        await self._run(store.record_server_ids, conversation_id, session_id, dict(server_ids))

    async def server_ids(self, conversation_id: str, session_id: int) -> dict[str, str]:
        """See `Store.server_ids`."""
        return await self._run((await self._sync()).server_ids, conversation_id, session_id)

    async def mark(self, conversation_id: str, uids: Sequence[str], status: ItemStatus) -> None:
        """See `Store.mark`."""
        await self._run((await self._sync()).mark, conversation_id, uids, status)

    async def record_compaction(self, conversation_id: str, **kwargs: Any) -> int:
        """See `Store.record_compaction` (same keyword arguments)."""
        return await self._run((await self._sync()).record_compaction, conversation_id, **kwargs)

    async def record_usage(self, conversation_id: str, observed: Usage, **kwargs: Any) -> None:
        """See `Store.record_usage` (same keyword arguments)."""
        await self._run((await self._sync()).record_usage, conversation_id, observed, **kwargs)

    async def usage(self, conversation_id: str) -> list[dict[str, Any]]:
        """See `Store.usage`."""
        return await self._run((await self._sync()).usage, conversation_id)

    async def load(self, conversation_id: str) -> StoredConversation:
        """See `Store.load`."""
        return await self._run((await self._sync()).load, conversation_id)

    async def seed(self, conversation_id: str, policy: RolloverPolicy | None = None) -> list[Item]:
        """See `Store.seed`."""
        return await self._run((await self._sync()).seed, conversation_id, policy)
