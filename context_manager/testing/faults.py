"""Fault injection for the live path: faults at chosen moments, and a call that counts losses.

`FaultInjector` makes a `FakeRealtimeServer` fail a session when a chosen client event
arrives (the n-th ``conversation.item.create`` of the second session, say): a ``drop`` (the
socket cut with no close frame, as a network failure) or an ``expire`` (``session_expired``
then a close, as the real server at its maximum). `flaky_store` makes a share of an
`AsyncStore`'s writes fail. `run_call` drives a seeded call through `connect` with the real
``openai`` client and reports what a demanding user checks: every turn stored exactly once,
a usage row per response, the rollovers the application saw, the event loop's worst lateness
and the longest a ``recv`` took to deliver a rollover.

>>> Fault(session=1, kind="conversation.item.create", nth=2, how="drop")
Fault(session=1, kind='conversation.item.create', nth=2, how='drop', fired=False)

Needs the ``testing``, ``openai`` and ``store`` extras.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigurationError, SessionExpiredError, StoreError
from ..items import Item
from .remote import ServerProcess, SharedClock
from .replies import Reply
from .server import FakeRealtimeServer
from .session import FakeSession

if TYPE_CHECKING:
    from ..live import ContextEngine
    from ..store import AsyncStore

__all__ = [
    "CallReport",
    "Fault",
    "FaultInjector",
    "LagMonitor",
    "SlowSteps",
    "flaky_store",
    "run_call",
]


@dataclass
class Fault:
    """Fail the `session`-th session (0-based) at its `nth` client event of type `kind`.

    `how` is ``drop`` (no close frame: the client sees 1006) or ``expire``.
    """

    session: int
    kind: str
    nth: int
    how: str = "drop"
    fired: bool = False


@dataclass
class FaultInjector:
    """Wraps every new session of `server` so that `faults` fire when their event arrives."""

    server: FakeRealtimeServer
    faults: list[Fault]
    counts: Counter[tuple[int, str]] = field(default_factory=Counter)

    def install(self) -> None:
        """Start injecting (sessions opened from now on)."""
        make = self.server._new_session

        def new_session(model: str | None) -> FakeSession:
            session = make(model)
            index = len(self.server.sessions) - 1
            receive = session.receive_raw

            def receive_raw(message: str | bytes) -> list[dict[str, Any]]:
                events = receive(message)
                kind = str(session.received[-1].get("type")) if session.received else ""
                self.counts[index, kind] += 1
                for fault in self.faults:
                    if fault.fired or (fault.session, fault.kind) != (index, kind):
                        continue
                    if self.counts[index, kind] != fault.nth:
                        continue
                    fault.fired = True
                    return self._fire(fault, session, events)
                return events

            session.receive_raw = receive_raw  # type: ignore[method-assign]
            return session

        self.server._new_session = new_session  # type: ignore[method-assign,assignment]

    def _fire(
        self, fault: Fault, session: FakeSession, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        connection = self.server._open[session]
        loop = asyncio.get_running_loop()
        if fault.how == "expire":
            limit = self.server.provider.max_session_seconds
            error = session._expire(SessionExpiredError(max_session_seconds=limit, elapsed=limit))
            session.sent.append(error)
            # The server's close (1001) follows; the socket goes once it is sent.
            loop.call_later(0.05, connection.transport.abort)
            return [error]
        session.close("dropped")
        loop.call_soon(connection.transport.abort)
        return events


class LagMonitor:
    """The event loop's worst lateness: a task that asks to wake every `period` seconds."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.worst = 0.0
        self.samples: list[float] = []
        """Every wake-up's lateness, in seconds."""
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.period)
            late = time.perf_counter() - start - self.period
            self.samples.append(late)
            self.worst = max(self.worst, late)

    def percentile(self, q: float) -> float:
        """The `q`-th percentile of the lateness (0 before any sample)."""
        return float(np.percentile(self.samples, q)) if self.samples else 0.0

    def __enter__(self) -> LagMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


class SlowSteps(logging.Handler):
    """The event loop's longest single step (a callback or a task's run until its next await).

    Timer lateness on a loop the simulation keeps saturated measures the queue, not a stall:
    what a voice agent hears as silence is one step that holds the loop. This turns on the
    loop's debug mode, which reports every step longer than `threshold` seconds, and keeps the
    longest.
    """

    _TOOK = re.compile(r"took (\d+(?:\.\d+)?) seconds")

    def __init__(self, threshold: float = 0.005) -> None:
        super().__init__(logging.WARNING)
        self.threshold = threshold
        self.longest = 0.0
        self.longest_step = ""  # asyncio's name for it: the task or callback
        self.slow: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = self._TOOK.search(record.getMessage())
        if found:
            seconds = float(found.group(1))
            self.slow.append(seconds)
            if seconds > self.longest:
                self.longest = seconds
                self.longest_step = record.getMessage()

    def __enter__(self) -> SlowSteps:
        loop = asyncio.get_running_loop()
        self._on = math.isfinite(self.threshold)
        if not self._on:
            return self  # measuring off: the loop stays out of debug mode (it is slower)
        self._debug = loop.get_debug()
        loop.set_debug(True)
        loop.slow_callback_duration = self.threshold
        self._logger = logging.getLogger("asyncio")
        self._propagate = self._logger.propagate
        self._logger.propagate = False  # counted here, not printed
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._on:
            return
        loop = asyncio.get_running_loop()
        loop.set_debug(self._debug)
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


def flaky_store(store: AsyncStore, share: float, rng: np.random.Generator) -> None:
    """Make `share` of `store`'s writes fail (a `StoreError`), as a database going away."""
    for name in ("append", "update_item", "mark", "record_usage", "record_compaction"):
        method = getattr(store, name)

        def flaky(*args: Any, _method: Callable[..., Any] = method, **kwargs: Any) -> Any:
            if rng.random() < share:
                raise StoreError(
                    "injected: the database went away", reason="unavailable", transient=True
                )
            return _method(*args, **kwargs)

        setattr(store, name, flaky)


@dataclass
class CallReport:
    """What a call through faults kept and lost."""

    texts: list[str]
    """The user turns the application sent, in order."""
    stored: Counter[str]
    """How often each user text is stored (every row of the conversation, compacted or not)."""
    responses: int
    """``response.done`` events the application received."""
    usage_rows: int
    engine_responses: int
    rollovers: list[str]
    """The reasons of the rollover events the application received."""
    lost: bool
    """The application got a `ConnectionLostEvent`."""
    worst_lag: float
    """The event loop's worst lateness during the turns, in seconds."""
    p99_lag: float
    """Its 99th percentile."""
    longest_step: float
    """The loop's longest single step during the turns, in seconds (`SlowSteps`)."""
    longest_recv: float
    """The longest a single ``recv`` took, in seconds (a switch to a new session, mostly: the
    fake server itself answers at once)."""
    write_failures: int
    switch_failures: int

    @property
    def turns_lost(self) -> int:
        """User turns sent and never stored."""
        return sum(1 for t in self.texts if self.stored[t] == 0)

    @property
    def duplicates(self) -> int:
        """Extra stored copies of user turns."""
        return sum(n - 1 for n in self.stored.values() if n > 1)


def _answer(items: Sequence[Item]) -> Reply:
    return Reply.speech("Noted. Anything else?")


async def run_call(
    engine: ContextEngine,
    db_url: str,
    *,
    faults: Sequence[Fault] = (),
    minutes: float = 11.0,
    seconds_per_turn: float = 6.0,
    failing_writes: float = 0.0,
    seed: int = 0,
    summary_timeout_seconds: float = 0.3,
    measure_steps: bool = False,
    server_process: bool = False,
) -> CallReport:
    """Drive a call through `connect` against a fake server with `faults`, and report it.

    A text turn and a response every `seconds_per_turn` of the engine's clock (which must be
    a `ManualClock`), for `minutes`. With `server_process` the fake server runs in a process
    of its own (`remote.ServerProcess`; the clock must be a `remote.SharedClock`), so the lag
    measured is the application's alone.
    """
    from openai import AsyncOpenAI
    from sqlalchemy import create_engine, select

    from ..realtime import connect
    from ..store import AsyncStore, Store
    from ..store.models import ItemRow

    clock: Any = engine.clock
    texts: list[str] = []
    responses, rollovers, lost, longest = 0, [], False, 0.0
    server: FakeRealtimeServer | ServerProcess
    if server_process:
        if not isinstance(clock, SharedClock):
            raise ConfigurationError(
                "a server in its own process needs the engine on a SharedClock"
            )
        server = ServerProcess(engine.provider, clock, _answer, faults)
    else:
        server = FakeRealtimeServer(provider=engine.provider, clock=clock, responder=_answer)
    async with server, AsyncStore(db_url) as store:
        if isinstance(server, FakeRealtimeServer):
            FaultInjector(server, list(faults)).install()
        if failing_writes:
            flaky_store(store, failing_writes, np.random.default_rng(seed))
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(
            client, model="gpt-realtime", engine=engine, store=store,
            reconnect_backoff_seconds=0.01, summary_timeout_seconds=summary_timeout_seconds,
        ) as conn:  # fmt: skip
            # Measured from the first turn: opening the first connection of a process imports
            # the SDK's websocket modules once (about 0.3 s), before anyone speaks.
            steps = SlowSteps(threshold=0.005 if measure_steps else math.inf)
            with LagMonitor() as lag, steps:
                turn = 0
                while clock.now < minutes * 60 and not lost:
                    clock.advance(seconds_per_turn)
                    text = f"Turn {turn}: my booking code is K{turn:04d}, please keep it."
                    await conn.conversation.item.create(item={
                        "type": "message", "role": "user",
                        "content": [{"type": "input_text", "text": text}]})  # fmt: skip
                    texts.append(text)
                    await conn.response.create()
                    while True:
                        start = time.perf_counter()
                        event = await conn.recv()
                        longest = max(longest, time.perf_counter() - start)
                        if event.type == "context_manager.rollover":
                            rollovers.append(event.reason)
                        elif event.type == "context_manager.connection_lost":
                            lost = True
                            break
                        elif event.type == "response.done":
                            responses += 1
                            break
                    turn += 1
            await conn.flush()
            cid = conn.conversation_id
            write_failures = conn._writer.failures if conn._writer is not None else 0
            switch_failures = conn.switch_failures
        await client.close()
    assert cid is not None
    sync = Store(db_url)
    try:
        usage = len(sync.usage(cid))
    finally:
        sync.close()
    db = create_engine(db_url)
    with db.connect() as c:
        rows = c.execute(select(ItemRow.content).where(ItemRow.conversation_id == cid)).all()
    db.dispose()
    stored = Counter(str(r.content.get("text")) for r in rows if r.content.get("role") == "user")
    return CallReport(
        texts, stored, responses, usage, engine.responses, rollovers, lost, lag.worst,
        lag.percentile(99), steps.longest, longest, write_failures, switch_failures,
    )  # fmt: skip
