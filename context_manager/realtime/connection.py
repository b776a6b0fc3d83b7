"""`ManagedConnection`: a Realtime connection whose context is managed, across sessions.

The application uses it as it would use the SDK's connection: ``await conn.session.update(...)``,
``await conn.conversation.item.create(...)``, ``await conn.response.create()``,
``await conn.send({...})``, and ``async for event in conn`` (or ``await conn.recv()``). Behind it:

* the engine (`ContextEngine`) sees every server event and every client event; the client
  events it plans (compactions, a ``session.update`` setting the wanted truncation) are sent on
  the connection as they come. Compaction planning (a summarizer, maybe a slow model) runs in a
  worker thread with a deadline, never on the event loop;
* every item the application sends is written to the store before it goes out (the outbox), and
  what the engine asks to persist is written by a background task, in order, retried until the
  store takes it (`ManagedConnection.flush` waits for it);
* **rollover**: when the engine says it is time (before the provider's maximum, at a safe
  point) the adapter opens a new session, configures it like the old one, seeds it, and closes
  the old one in the background. When the server ends a session unexpectedly
  (``session_expired``) or the connection drops, it does the same. A switch that fails (a drop
  during seeding, a refused seed, a session that will not open) is tried again with backoff;
  when every attempt fails the application gets a `ConnectionLostEvent`.

What the application sees at a rollover, exactly:

* one event of type ``context_manager.rollover`` (`RolloverEvent`: reason ``rollover``,
  ``expired``, ``disconnected`` or ``resume``; the new session's index; the seed's size) in
  place of the new session's own ``session.created``/``session.updated`` and the seed items'
  ``conversation.item.added``/``.done``, which the adapter consumes; a resumed call's first
  `recv` returns the ``resume`` event;
* an ``error`` with code ``session_expired`` is consumed too (it is the cue to roll over);
* events it sends while the switch runs wait, then go to the new session; items it sent that
  the old session never acknowledged are re-sent as they were, after the seed;
* audio appended but not committed when the old session ended (the user's turn in progress) is
  appended again to the new session after its seed, with a manual commit the old one never
  acknowledged (within `buffer_seconds`; a planned rollover waits until the user is not speaking,
  unless the cut is less than a quarter of the margin away).

Every exception the application gets from the adapter is a `ContextManagerError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, ContextManagerError, RolloverError, StoreError
from ..live import ContextEngine
from ..rollover import RolloverPlan
from ..wire import audio_ms_from_size
from .background import ADAPTER_EVENT, BesideTheCall
from .events import ConnectionLostEvent, RolloverEvent
from .inflight import InFlight, TurnNotes
from .oob import OutOfBand, RealtimeSummarizer, SummaryAhead
from .sockets import (
    _SwitchFailed,
    as_dict,
    close_quietly,
    describe,
    drain,
    parse_frame,
    recv_within,
    retire,
)
from .stale import app_view, restate
from .writer import RecordWriter

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

    from ..store import AsyncStore

__all__ = ["ManagedConnection"]

log = logging.getLogger(__name__)


class _Closed(Exception):
    """The application closed the connection."""


class ManagedConnection(BesideTheCall):
    """A Realtime connection the engine manages (see the module docstring and `connect`)."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        engine: ContextEngine,
        store: AsyncStore | None,
        conversation_id: str | None,
        poll_seconds: float = 1.0,
        reconnect_attempts: int = 5,
        reconnect_backoff_seconds: float = 0.5,
        switch_timeout_seconds: float = 15.0,
        summary_timeout_seconds: float = 20.0,
        buffer_seconds: float = 60.0,
        connect_options: Mapping[str, Any] | None = None,
        raw: bool = False,
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
        if reconnect_attempts < 1:
            raise ConfigurationError(f"reconnect_attempts must be >= 1, got {reconnect_attempts}")
        self.client, self.model, self.engine, self.store = client, model, engine, store
        self.conversation_id = conversation_id
        self.poll_seconds = poll_seconds
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_backoff_seconds = reconnect_backoff_seconds
        self.switch_timeout_seconds = switch_timeout_seconds
        self.summary_timeout_seconds = summary_timeout_seconds
        self._options = dict(connect_options or {})
        self._raw = raw  # server events as the JSON objects they came as (a framework parses)
        me: Any = self  # the SDK's resources only call `send`
        self.session = AsyncRealtimeSessionResource(me)
        self.response = AsyncRealtimeResponseResource(me)
        self.conversation = AsyncRealtimeConversationResource(me)
        self.input_audio_buffer = AsyncRealtimeInputAudioBufferResource(me)
        self.output_audio_buffer = AsyncRealtimeOutputAudioBufferResource(me)
        self._conn: AsyncRealtimeConnection | None = None
        self._lock = asyncio.Lock()
        self._writer: RecordWriter | None = None
        self._resume = False
        self._closing = False
        self._lost: ConnectionLostEvent | None = None
        # What `recv` gives before the server's next event: switches, and answers made here.
        self._notices: deque[Any] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._summary_thread = ThreadPoolExecutor(1, thread_name_prefix="context-manager-summary")
        self._fallback_thread = ThreadPoolExecutor(1, thread_name_prefix="context-manager-fallback")
        self._summary: asyncio.Future[Any] | None = None
        self._compacting: asyncio.Task[Any] | None = None
        self._inflight = InFlight(buffer_seconds)  # re-sent to a session that replaces one
        self._turns = TurnNotes()  # the store knows of a turn being spoken
        self._lost_turn_ms = 0
        self._oob = OutOfBand(self._send_oob, self._live_ids)
        self._ahead = SummaryAhead()  # a rollover seed's summary, made before the switch
        for summarizer in (
            getattr(engine.compaction, "summarizer", None), engine.rollover.summarizer
        ):  # fmt: skip
            if isinstance(summarizer, RealtimeSummarizer):
                summarizer.bind(self._oob)
        self.rollovers: list[RolloverEvent] = []
        """Every rollover of the call, in order."""
        self.switch_failures = 0
        """Attempts at a new session that failed and were retried."""
        engine.offload = True  # no summarizer on the event loop

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ManagedConnection:
        self._oob.loop = asyncio.get_running_loop()
        if self.store is not None:
            from ..store.recorder import Recorder  # the store extra: only with a store

            known = set(await self.store.conversations())
            if self.conversation_id in known:
                self._resume = True
                # The sessions of the process that ran the call before (it may have died
                # with them open) are over: a new one is about to begin.
                # A turn the caller was speaking then was never stored: it is reported.
                self._lost_turn_ms = sum(await self.store.open_turns(self.conversation_id))
                await self.store.end_open_sessions(self.conversation_id, "abandoned")
                if self._lost_turn_ms:
                    log.warning("resume: a user turn in progress was lost (%d ms of audio)",
                                self._lost_turn_ms)  # fmt: skip
            else:
                self.conversation_id = await self.store.create_conversation(self.conversation_id)
            recorder = Recorder(
                self.store,
                self.conversation_id,
                provider=self.engine.provider.name,
                model=self.model,
            )
            self._writer = RecordWriter(recorder.write)
            self._writer.start()
        if self._resume:
            self._notices.append(await self._connect("resume", old=None))
        else:
            try:
                self._conn = await self._open()
                await self._first_event(self._conn)
            except Exception as exc:  # unreachable, refused, not a Realtime server
                if self._writer is not None:
                    await self._writer.close()
                raise RolloverError(f"could not open a session ({describe(exc)})") from exc
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Close the connection, and write everything still queued to the store.

        Responses the session is still producing (the application's, or an out-of-band one)
        are read to their end first, for up to `drain_seconds`: their usage is billed
        whether or not anyone listens, so it is counted and stored too.

        Raises:
            StoreError: records the store would not take within 10 s (they are listed in
                ``self.pending_records``).
        """
        self._closing = True
        if self._conn is not None:
            inflight = self._inflight

            def coming() -> bool:
                return bool(inflight.responses or inflight.requested or self._oob.pending)

            await drain(self._conn, coming, self._drained, drain_seconds)
        self._oob.close()
        if self._conn is not None:
            self.engine.closed()  # the store's session row gets its end
            self._background(close_quietly(self._conn))
            self._conn = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        # A summary still running is abandoned (its thread ends when the summarizer returns).
        self._summary_thread.shutdown(wait=False, cancel_futures=True)
        self._fallback_thread.shutdown(wait=False, cancel_futures=True)
        if self._writer is not None:
            self._queue_records()
            await self._writer.close()

    def _drained(self, raw: dict[str, Any]) -> None:
        """An event read while closing: priced and recorded; nothing more is sent."""
        self._inflight.acknowledged(raw)
        self.engine.feed(raw)
        self._queue_records()
        self._oob.claim(raw)

    @property
    def pending_records(self) -> int:
        """Records not written to the store yet."""
        return 0 if self._writer is None else len(self._writer.pending)

    async def _open(self) -> AsyncRealtimeConnection:
        manager = self.client.realtime.connect(model=self.model, **self._options)
        conn: AsyncRealtimeConnection = await asyncio.wait_for(
            manager.enter(), self.switch_timeout_seconds
        )
        return conn

    async def _recv_json(self, conn: AsyncRealtimeConnection) -> dict[str, Any]:
        data = await recv_within(conn, self.switch_timeout_seconds)
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise _SwitchFailed("the server sent an event that is not an object")
        return raw

    async def _first_event(self, conn: AsyncRealtimeConnection) -> dict[str, Any]:
        raw = await self._recv_json(conn)
        if raw.get("type") != "session.created":
            raise _SwitchFailed(f"a new session began with {raw.get('type')!r}")
        await self._send_all(conn, self.engine.feed(raw))
        self._queue_records()
        return raw

    # ------------------------------------------------------------------ sending

    async def send(self, event: Any) -> None:
        """Send a client event (a dict or an SDK model); the engine sees it too.

        An item created without an id gets one, so the adapter can tell when the server has it;
        with a store, the item is written to it before it goes out. If the connection is found
        dead, the call continues in a new session first.

        Raises:
            RolloverError: the connection was lost and no new session could be had.
            StoreError: the store would not take the item (it was not sent).
        """
        from websockets.exceptions import ConnectionClosed

        if self._lost is not None:
            raise RolloverError(f"the connection was lost ({self._lost.error})")
        data = as_dict(event)
        kind = data.get("type")
        if kind == "input_audio_buffer.append" and self._turns.noted is None:
            await self._turn_starts(data)
        if kind == "conversation.item.create":
            item = dict(data.get("item") or {})
            item.setdefault("id", f"app_{uuid.uuid4().hex[:24]}")
            data = {**data, "item": item}
        async with self._lock:
            if self._rollover_now():
                # Due: the event belongs to the new session, so switch first.
                self._notices.append(await self._connect("rollover", old=self._conn))
            assert self._conn is not None
            restated, reply = restate(data, self.engine.history)
            if restated is None:  # nothing to send: the answer is made here
                assert reply is not None
                answer = reply if self._raw else self._conn.parse_event(json.dumps(reply))
                self._notices.append(answer)
                return
            data = restated
            self._inflight.sent(data)
            self.engine.sent(data)
            if kind == "input_audio_buffer.append":
                ms = audio_ms_from_size(self._inflight.turn_size, self.engine.mirror.input_format)
                self._note(self._turns.appended(self.engine.session_index, ms))
            if kind == "conversation.item.create" and self._writer is not None:
                self._queue_records()
                await self._writer.flush(self.switch_timeout_seconds)  # the outbox
            try:
                await self._conn.send(data)  # type: ignore[arg-type]
            except ConnectionClosed:
                if self._closing:
                    raise RolloverError("the connection is closed") from None
                # The new session gets this event too: it is among the unacknowledged.
                self._notices.append(await self._connect(self._lost_reason(), old=None))

    async def _turn_starts(self, append: Mapping[str, Any]) -> None:
        """The caller starts a turn: the store hears of it before its first audio goes out.

        A crash from here on is known. The wait is brief, and skipped while the store fails:
        the caller's audio never waits on a failing store (the note stays queued, and is
        written later).
        """
        audio = append.get("audio")
        size = len(audio) * 3 // 4 if isinstance(audio, str) else 0
        ms = audio_ms_from_size(size, self.engine.mirror.input_format)
        self._note(self._turns.appended(self.engine.session_index, ms))
        if self._writer is not None and not self._writer.failing:
            with contextlib.suppress(StoreError):
                await self._writer.flush(0.25)

    # ------------------------------------------------------------------ receiving

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while not self._closing:
            try:
                event = await self.recv()
            except _Closed:
                return
            yield event
            if isinstance(event, ConnectionLostEvent):
                return

    async def recv(self) -> Any:
        """The next server event, a `RolloverEvent` or a `ConnectionLostEvent`.

        A server event is an SDK model, or the JSON object it came as when made `raw`.

        Raises:
            RolloverError: after the `ConnectionLostEvent` was delivered.
        """
        try:
            return await self._recv()
        except (_Closed, ContextManagerError):
            raise
        except Exception as exc:  # anything else reaching the application is a bug made typed
            raise RolloverError(f"the connection failed ({type(exc).__name__})") from exc

    async def _recv(self) -> Any:
        from websockets.exceptions import ConnectionClosed

        while True:
            if self._notices:
                return self._notices.popleft()
            if self._lost is not None:
                raise RolloverError(f"the connection was lost ({self._lost.error})")
            if self._closing:
                raise _Closed
            conn = self._conn
            assert conn is not None
            if self._rollover_now():
                if (notice := await self._roll(conn, lost=False)) is not None:
                    return notice
                continue
            try:
                data = await recv_within(conn, self.poll_seconds)
            except TimeoutError:
                continue  # idle: check the rollover clock again
            except ConnectionClosed:
                if self._closing:
                    raise _Closed from None
                if (notice := await self._roll(conn, lost=True)) is not None:
                    return notice
                continue  # a switch replaced it meanwhile
            event = await self._take(conn, data)
            if event is None:
                continue
            # Due: switch now, before the application sends into the old session again.
            if self._rollover_now() and (notice := await self._roll(conn, lost=False)):
                self._notices.append(notice)
            return event

    async def _take(self, conn: AsyncRealtimeConnection, data: bytes) -> Any | None:
        """One frame of the live session: the engine's, then the application's (or ``None``)."""
        raw = parse_frame(data)
        if raw is None:
            return None
        error = raw.get("error") if raw.get("type") == "error" else None
        if isinstance(error, dict) and error.get("code") == "session_expired":
            self.engine.feed(raw)
            self._queue_records()
            return None  # the close follows; the rollover replaces both
        self._inflight.acknowledged(raw)
        out = self.engine.feed(raw)
        if out:
            async with self._lock:
                if self._conn is conn:
                    await self._send_all(conn, out)
        self._queue_records()
        self._note(self._turns.server(self.engine.session_index, raw))
        self._start_jobs()
        if self._oob.claim(raw):
            return None  # the adapter's own out-of-band request: priced, not delivered
        if isinstance(error, dict) and str(error.get("event_id")).startswith(ADAPTER_EVENT):
            return None  # refused an event of the adapter's own (the engine has seen it)
        history = self.engine.history
        if raw.get("type") == "conversation.item.deleted" and history.is_seed(
            str(raw.get("item_id"))
        ):
            return None  # a seed's copy, compacted: the application never saw it added
        if (seen := app_view(raw, history)) is not None:
            raw, data = seen, json.dumps(seen).encode()
        return raw if self._raw else conn.parse_event(data)

    @property
    def audio_dropped_bytes(self) -> int:
        """Bytes of a turn in progress that did not fit `buffer_seconds` (oldest first)."""
        return self._inflight.audio_dropped_bytes

    def _lost_reason(self) -> str:
        errors = self.engine.errors
        expired = bool(errors) and errors[-1].get("code") == "session_expired"
        self.engine.disconnected()
        return "expired" if expired else "disconnected"

    # ------------------------------------------------------------------ rollover

    async def _roll(
        self, seen: AsyncRealtimeConnection, *, lost: bool
    ) -> RolloverEvent | ConnectionLostEvent | None:
        """Switch from `seen` (it dropped, if `lost`; else a planned rollover is due).

        ``None`` when there is nothing to do once the lock is held: a send switched first
        (its notice is queued), or the rollover is no longer due.
        """
        async with self._lock:
            if self._conn is not seen or self._lost is not None:
                return None
            if lost:
                return await self._connect(self._lost_reason(), old=None)
            if not self._rollover_now():
                return None
            return await self._connect("rollover", old=seen)

    async def _connect(
        self, reason: str, *, old: AsyncRealtimeConnection | None
    ) -> RolloverEvent | ConnectionLostEvent:
        """A new session, seeded, with retries; `old` (if any) is closed in the background."""
        from websockets.exceptions import ConnectionClosed

        self._oob.close()  # no out-of-band request outlives its session, or crosses a switch
        running = self._inflight.switched()  # the old session's, read by `retire` from here
        before = self.engine.session_index

        delay = self.reconnect_backoff_seconds
        failure = ""
        for attempt in range(1, self.reconnect_attempts + 1):
            try:
                event = await self._attempt(reason, attempt)
            except (ConnectionClosed, OSError, TimeoutError, _SwitchFailed, RolloverError) as exc:
                self.switch_failures += 1
                failure = describe(exc)
                log.warning("%s: attempt %d failed (%s)", reason, attempt, failure)
                self.engine.disconnected()
                self._queue_records()
                if attempt < self.reconnect_attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
                continue
            except Exception as exc:  # the SDK's own errors (refused key, bad URL): retried
                self.switch_failures += 1
                failure = describe(exc)
                log.warning("%s: attempt %d failed (%s)", reason, attempt, failure)
                self.engine.disconnected()
                if attempt < self.reconnect_attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
                continue
            self._note(*self._turns.switched(before, self.engine.session_index))
            if old is not None:
                # Never under the lock: it may take long.
                self._background(retire(old, self._late, running))
            return event
        if old is not None:
            self._background(close_quietly(old))
        self._conn = None
        self._lost = ConnectionLostEvent(reason, self.reconnect_attempts, failure)
        log.error("%s: gave up after %d attempts (%s)", reason, self.reconnect_attempts, failure)
        return self._lost

    async def _attempt(self, reason: str, attempt: int) -> RolloverEvent:
        self._inflight.new_session()
        new = await self._open()
        try:
            await self._first_event(new)
            plan = await self._plan(reason)
            await self._seed(new, plan)
            # What the old session never acknowledged goes to the new one, in order: the
            # audio of the turn in progress first, then the items, then the response request.
            history = self.engine.history
            resend = [restate(e, history)[0] or e for e in self._inflight.resend()]
            await self._send_all(new, resend, ours=False)
        except BaseException:
            self._background(close_quietly(new))
            raise
        self._conn = new
        self._oob.open = True
        self._ahead.reset()
        lost = self._lost_turn_ms if reason == "resume" else 0
        event = RolloverEvent(
            reason, self.engine.session_index, len(plan.seed), plan.seed_tokens, attempt, lost
        )
        self.rollovers.append(event)
        log.info("%s: session %d seeded with %d items", reason, event.session, event.seed_items)
        return event

    def _late(self, response: Mapping[str, Any]) -> None:
        self.engine.late_response(response)
        self._queue_records()

    async def _plan(self, reason: str) -> RolloverPlan:
        resent = tuple(self._inflight.unacked)
        engine = self.engine
        if self.store is None or len(engine.history):
            history, summary = engine.rollover_source(resent=resent)
        else:
            # A call resumed in a new process: the store is its only record.
            if self._writer is not None:
                await self._writer.flush(self.switch_timeout_seconds)
            assert self.conversation_id is not None
            stored = await self.store.load(self.conversation_id)
            history, summary = engine.rollover_source(
                history=stored.items, summary=stored.summary, resent=resent
            )
        # The seed (a summary of a long call, maybe) is made off the event loop.
        ahead = self._ahead.result
        seed = await asyncio.get_running_loop().run_in_executor(
            self._fallback_thread, engine.rollover.draft,
            history, engine.counter, summary, engine.audio.snapshot(), ahead,
        )  # fmt: skip
        return engine.plan_rollover(reason, history=history, summary=summary, seed=seed)

    async def _seed(self, new: AsyncRealtimeConnection, plan: RolloverPlan) -> None:
        await self._send_all(new, plan.events)
        waiting = {i.id for i in plan.seed if i.id is not None}
        updated = False
        while waiting or not updated:
            raw = await self._recv_json(new)
            kind = raw.get("type")
            if kind == "error":
                error = raw.get("error")
                code = error.get("code") if isinstance(error, dict) else None
                self.engine.feed(raw)
                raise _SwitchFailed(f"the new session refused the seed ({code})")
            await self._send_all(new, self.engine.feed(raw))
            if kind == "session.updated":
                updated = True
            elif kind == "conversation.item.done":
                item = raw.get("item")
                waiting.discard(item.get("id") if isinstance(item, Mapping) else None)
        self.engine.seeded(plan)
        self._queue_records()
