"""The openai adapter: a Realtime connection whose context is managed, across sessions.

`connect` wraps ``AsyncOpenAI().realtime.connect(...)``. The application uses what it gets as it
would use the SDK's connection: ``await conn.session.update(...)``,
``await conn.conversation.item.create(...)``, ``await conn.response.create()``,
``await conn.send({...})``, and ``async for event in conn`` (or ``await conn.recv()``). Behind
it:

* the engine (`ContextEngine`) sees every server event and every client event; the client
  events it plans (compactions, a ``session.update`` setting the wanted truncation) are sent
  on the connection as they come;
* what the engine asks to persist is written to an `AsyncStore` by a background task, in order,
  so the event loop never waits for the database (`ManagedConnection.flush` waits for it);
* **rollover**: when the engine says it is time (before the provider's maximum, at a safe
  point) the adapter opens a new connection, configures it like the old one, seeds it, and
  closes the old one. When the server ends a session unexpectedly (``session_expired``) or the
  connection drops, it does the same from the store.

What the application sees at a rollover, exactly:

* one event of type ``context_manager.rollover`` (`RolloverEvent`: reason ``rollover``,
  ``expired``, ``disconnected`` or ``resume``; the new session's index; the seed's size) in
  place of the new session's own ``session.created``/``session.updated`` and the seed items'
  ``conversation.item.added``/``.done``, which the adapter consumes;
* an ``error`` with code ``session_expired`` is consumed too (it is the cue to roll over);
* events it sends while the switch runs wait, then go to the new session;
* audio appended but not committed when the old session ended is lost (a planned rollover waits
  until the user is not speaking, unless the cut is less than a quarter of the margin away).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigurationError, RolloverError
from .live import ContextEngine, Record
from .rollover import RolloverPlan

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

    from .store import AsyncStore
    from .store.recorder import Recorder

__all__ = ["ManagedConnection", "RolloverEvent", "connect"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RolloverEvent:
    """What the application receives when its call moved to a new session."""

    reason: str
    """``rollover`` (planned), ``expired``, ``disconnected`` or ``resume`` (a stored call)."""
    session: int
    """0-based index of the new session in the call."""
    seed_items: int
    seed_tokens: int
    type: Literal["context_manager.rollover"] = "context_manager.rollover"


def connect(
    client: AsyncOpenAI,
    *,
    model: str,
    engine: ContextEngine,
    store: AsyncStore | None = None,
    conversation_id: str | None = None,
    poll_seconds: float = 1.0,
    **connect_options: Any,
) -> ManagedConnection:
    """A managed Realtime connection; use it with ``async with``.

    Args:
        client: an ``AsyncOpenAI`` (or ``AsyncAzureOpenAI``) client.
        model: the model (Azure: the deployment).
        engine: the context engine of this call.
        store: where the call is persisted (``None``: nowhere; a resume after a drop then uses
            the engine's own history).
        conversation_id: the stored conversation to continue (seeded into the first session),
            or the id to give a new one (default: a new id).
        poll_seconds: how often an idle ``recv`` re-checks whether a rollover is due.
        connect_options: passed to ``client.realtime.connect``.
    """
    return ManagedConnection(
        client,
        model=model,
        engine=engine,
        store=store,
        conversation_id=conversation_id,
        poll_seconds=poll_seconds,
        connect_options=connect_options,
    )


class _Flush:
    def __init__(self) -> None:
        self.done = asyncio.Event()


class ManagedConnection:
    """A Realtime connection the engine manages (see the module docstring)."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        engine: ContextEngine,
        store: AsyncStore | None,
        conversation_id: str | None,
        poll_seconds: float,
        connect_options: Mapping[str, Any],
    ) -> None:
        try:
            from openai.resources.realtime.realtime import (
                AsyncRealtimeConversationResource,
                AsyncRealtimeInputAudioBufferResource,
                AsyncRealtimeOutputAudioBufferResource,
                AsyncRealtimeResponseResource,
                AsyncRealtimeSessionResource,
            )
        except ImportError:  # pragma: no cover - the extra is missing
            raise ConfigurationError(
                'the realtime adapter needs openai: pip install "context-manager[openai]"'
            ) from None
        self.client, self.model, self.engine, self.store = client, model, engine, store
        self.conversation_id = conversation_id
        self.poll_seconds = poll_seconds
        self._options = dict(connect_options)
        me: Any = self  # the SDK's resources only call `send`
        self.session = AsyncRealtimeSessionResource(me)
        self.response = AsyncRealtimeResponseResource(me)
        self.conversation = AsyncRealtimeConversationResource(me)
        self.input_audio_buffer = AsyncRealtimeInputAudioBufferResource(me)
        self.output_audio_buffer = AsyncRealtimeOutputAudioBufferResource(me)
        self._conn: AsyncRealtimeConnection | None = None
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[Record | _Flush] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None
        self._resume = False
        self._closing = False
        self._notices: deque[RolloverEvent] = deque()
        # Client events the server has not acknowledged yet: re-sent to a new session when the
        # old one dies under them (an item create by its id; a response request until created).
        self._unacked: dict[str, dict[str, Any]] = {}
        self._requested: dict[str, Any] | None = None
        self.rollovers: list[RolloverEvent] = []
        """Every rollover of the call, in order."""
        self.persist_errors: list[BaseException] = []
        """Store writes that failed (logged; the first is raised by `close`)."""

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ManagedConnection:
        if self.store is not None:
            known = set(await self.store.conversations())
            if self.conversation_id in known:
                self._resume = True
            else:
                self.conversation_id = await self.store.create_conversation(self.conversation_id)
            from .store.recorder import Recorder  # the store extra: only with a store

            self._recorder = Recorder(
                self.store,
                self.conversation_id,
                provider=self.engine.provider.name,
                model=self.model,
            )
            self._writer = asyncio.create_task(self._write())
        self._conn = await self._open()
        first = await self._first_event(self._conn)
        if self._resume:
            await self._switch(self._conn, first, "resume", close_old=None)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection, and write everything still queued to the store."""
        self._closing = True
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        if self._writer is not None:
            self._queue_records()
            await self.flush()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self.persist_errors:
            raise self.persist_errors[0]

    async def _open(self) -> AsyncRealtimeConnection:
        manager = self.client.realtime.connect(model=self.model, **self._options)
        return await manager.enter()

    async def _first_event(self, conn: AsyncRealtimeConnection) -> dict[str, Any]:
        raw = json.loads(await conn.recv_bytes())
        if raw.get("type") != "session.created":
            raise RolloverError(
                f"a new session began with {raw.get('type')!r}, not session.created"
            )
        await self._send_all(conn, self.engine.feed(raw))
        self._queue_records()
        return dict(raw)

    # ------------------------------------------------------------------ sending

    async def send(self, event: Any) -> None:
        """Send a client event (a dict or an SDK model); the engine sees it too.

        An item created without an id gets one, so the adapter can tell when the server has it.
        If the connection is found dead, the call resumes in a new session first.
        """
        from websockets.exceptions import ConnectionClosed

        data = _as_dict(event)
        kind = data.get("type")
        if kind == "conversation.item.create":
            item = dict(data.get("item") or {})
            item.setdefault("id", f"app_{uuid.uuid4().hex[:24]}")
            data = {**data, "item": item}
        async with self._lock:
            if self.engine.rollover_due and not self.engine.expired:
                # Due: the event belongs to the new session, so switch first.
                self._notices.append(await self._roll_locked("rollover"))
            if kind == "conversation.item.create":
                self._unacked[data["item"]["id"]] = data
            elif kind == "response.create":
                self._requested = data
            self.engine.sent(data)
            assert self._conn is not None
            try:
                await self._conn.send(data)  # type: ignore[arg-type]
            except ConnectionClosed:
                if self._closing:
                    raise
                self.engine.disconnected()
                reason = "expired" if self._expired_error else "disconnected"
                # The new session gets this event too: it is among the unacknowledged.
                self._notices.append(await self._roll_locked(reason))

    async def _send_all(self, conn: AsyncRealtimeConnection, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.engine.sent(event)
            await conn.send(event)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ receiving

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while not self._closing:
            try:
                yield await self.recv()
            except _Closed:
                return

    async def recv(self) -> Any:
        """The next server event (an SDK model), or a `RolloverEvent`."""
        from websockets.exceptions import ConnectionClosed

        while True:
            if self._notices:
                return self._notices.popleft()
            if self.engine.rollover_due and not self.engine.expired:
                return await self._roll("rollover")
            assert self._conn is not None
            try:
                data = await asyncio.wait_for(self._conn.recv_bytes(), self.poll_seconds)
            except TimeoutError:
                continue  # idle: check the rollover clock again
            except ConnectionClosed:
                if self._closing:
                    raise _Closed from None
                self.engine.disconnected()
                return await self._roll("expired" if self._expired_error else "disconnected")
            raw = json.loads(data)
            if (
                raw.get("type") == "error"
                and (raw.get("error") or {}).get("code") == "session_expired"
            ):
                self.engine.feed(raw)
                self._queue_records()
                continue  # the close follows; the rollover replaces both
            self._acknowledge(raw)
            out = self.engine.feed(raw)
            if out:
                async with self._lock:
                    await self._send_all(self._conn, out)
            self._queue_records()
            event = self._conn.parse_event(data)
            if self.engine.rollover_due and not self.engine.expired:
                # Switch now, before the application sends into the old session again.
                self._notices.append(await self._roll("rollover"))
            return event

    def _acknowledge(self, raw: Mapping[str, Any]) -> None:
        kind = raw.get("type")
        if kind in ("conversation.item.added", "conversation.item.created"):
            item_id = (raw.get("item") or {}).get("id")
            if isinstance(item_id, str):
                self._unacked.pop(item_id, None)
        elif kind == "response.created":
            self._requested = None

    @property
    def _expired_error(self) -> bool:
        return bool(self.engine.errors) and self.engine.errors[-1].get("code") == "session_expired"

    # ------------------------------------------------------------------ rollover

    async def _roll(self, reason: str) -> RolloverEvent:
        async with self._lock:
            return await self._roll_locked(reason)

    async def _roll_locked(self, reason: str) -> RolloverEvent:
        old = self._conn
        try:
            new = await self._open()
        except Exception as exc:
            raise RolloverError(f"could not open a new session ({reason}): {exc}") from exc
        first = await self._first_event(new)
        planned = reason == "rollover"
        event = await self._switch(new, first, reason, close_old=old if planned else None)
        if not planned and old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        # What the old session never acknowledged goes to the new one, in order.
        resend = [*self._unacked.values(), *([self._requested] if self._requested else [])]
        await self._send_all(new, resend)
        return event

    async def _plan(self, reason: str) -> RolloverPlan:
        if self.store is None or reason == "rollover":
            return self.engine.plan_rollover(reason)
        # Unplanned: the store is the record of the call (everything queued is written first).
        await self.flush()
        assert self.conversation_id is not None
        stored = await self.store.load(self.conversation_id)
        return self.engine.plan_rollover(reason, history=stored.items, summary=stored.summary)

    async def _switch(
        self,
        new: AsyncRealtimeConnection,
        first: Mapping[str, Any],
        reason: str,
        close_old: AsyncRealtimeConnection | None,
    ) -> RolloverEvent:
        plan = await self._plan(reason)
        await self._send_all(new, plan.events)
        waiting = {i.id for i in plan.seed if i.id is not None}
        updated = False
        while waiting or not updated:
            raw = json.loads(await new.recv_bytes())
            kind = raw.get("type")
            await self._send_all(new, self.engine.feed(raw))
            if kind == "session.updated":
                updated = True
            elif kind == "conversation.item.done":
                waiting.discard((raw.get("item") or {}).get("id"))
            elif kind == "error":
                raise RolloverError(f"the new session refused the seed: {raw.get('error')}")
        self.engine.seeded(plan)
        self._queue_records()
        self._conn = new
        if close_old is not None:
            with contextlib.suppress(Exception):
                await close_old.close()
        event = RolloverEvent(reason, self.engine.session_index, len(plan.seed), plan.seed_tokens)
        self.rollovers.append(event)
        log.info("%s: session %d seeded with %d items", reason, event.session, event.seed_items)
        return event

    # ------------------------------------------------------------------ persistence

    def _queue_records(self) -> None:
        records = self.engine.take_records()
        if self._writer is None:
            return
        for record in records:
            self._queue.put_nowait(record)

    async def flush(self) -> None:
        """Wait until every record so far is written to the store."""
        if self._writer is None:
            return
        self._queue_records()
        marker = _Flush()
        self._queue.put_nowait(marker)
        await marker.done.wait()

    async def _write(self) -> None:
        while True:
            record = await self._queue.get()
            if isinstance(record, _Flush):
                record.done.set()
                continue
            assert self._recorder is not None
            try:
                await self._recorder.write(record)
            except Exception as exc:  # logged, kept, raised at close
                log.error("could not store %s: %s", type(record).__name__, exc)
                self.persist_errors.append(exc)


class _Closed(Exception):
    """The application closed the connection."""


def _as_dict(event: Any) -> dict[str, Any]:
    if isinstance(event, Mapping):
        return dict(event)
    dump = getattr(event, "model_dump", None)
    if dump is None:
        raise ConfigurationError(f"cannot send {type(event).__name__}: not a dict or an SDK model")
    result: dict[str, Any] = dump(mode="json", by_alias=True, exclude_unset=True)
    return result
