"""Fault injection on the live path: the real `openai` client, the managed connection, the fake
server and a real store, with drops and expiries at the worst moments, failing store writes and
slow or failing summarizers. Seeded; each run checks that nothing was lost and the loop stayed
responsive.

Sessions last 4 minutes here (a provider profile of the test's own), so a short call rolls over
several times and every fault lands inside a switch.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from context_manager import ContextEngine, ManualClock, RolloverPolicy, get_provider_profile
from context_manager.compaction import RollingSummary
from context_manager.errors import SessionExpiredError
from context_manager.items import Item
from context_manager.realtime import ConnectionLostEvent, connect
from context_manager.store import AsyncStore, Store
from context_manager.testing import FakeRealtimeServer, FakeSession, Reply

pytestmark = pytest.mark.network_allowed

PROVIDER = get_provider_profile("azure").model_copy(
    update={"name": "short", "max_session_seconds": 240.0}
)
SEED = RolloverPolicy(budget_tokens=1500, carry="summary", summary_tokens=300)


def _answer(items: Sequence[Item]) -> Reply:
    return Reply.speech("Noted. Anything else?")


@dataclass
class Fault:
    """Where the fake server fails a session: at the `nth` client event of type `kind` in the
    `session`-th session (0-based), by a `drop` (no close frame) or an `expire`."""

    session: int
    kind: str
    nth: int
    how: str  # "drop" or "expire"
    fired: bool = False


@dataclass
class Injector:
    """Wraps every new fake session so the faults fire when their event arrives."""

    server: FakeRealtimeServer
    faults: list[Fault]
    counts: Counter[tuple[int, str]] = field(default_factory=Counter)

    def install(self) -> None:
        make = self.server._new_session

        def new_session(model: str | None) -> FakeSession:
            session = make(model)
            index = len(self.server.sessions) - 1
            receive = session.receive_raw

            def receive_raw(message: str | bytes) -> list[dict[str, Any]]:
                events = receive(message)
                kind = session.received[-1]["type"] if session.received else ""
                self.counts[index, kind] += 1
                for fault in self.faults:
                    if (fault.fired or fault.session != index or fault.kind != kind
                            or self.counts[index, kind] != fault.nth):  # fmt: skip
                        continue
                    fault.fired = True
                    connection = self.server._open[session]
                    if fault.how == "expire":
                        exc = SessionExpiredError(max_session_seconds=240.0, elapsed=240.0)
                        error = session._expire(exc)
                        session.sent.append(error)
                        # The close (1001) follows; the socket goes when the close is done.
                        asyncio.get_running_loop().call_later(0.05, connection.transport.abort)
                        return [error]
                    session.close("dropped")
                    asyncio.get_running_loop().call_soon(connection.transport.abort)
                return events

            session.receive_raw = receive_raw  # type: ignore[method-assign]
            return session

        self.server._new_session = new_session  # type: ignore[method-assign]


class LagMonitor:
    """The event loop's worst lateness: a task that asks to wake every 5 ms."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - start - 0.005)

    def __enter__(self) -> LagMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@dataclass
class Outcome:
    texts: list[str]
    responses: int
    rollovers: list[str]
    lost: ConnectionLostEvent | None
    worst_lag: float
    stored_user: Counter[str]
    usage_rows: int
    engine_responses: int
    write_failures: int = 0
    switch_failures: int = 0


async def _call(
    db_url: str,
    faults: list[Fault],
    *,
    minutes: float = 11.0,
    summarizer: Any = None,
    failing_writes: float = 0.0,
    seed: int = 0,
) -> Outcome:
    clock = ManualClock()
    compaction = RollingSummary(trigger=0.02, keep=4, budget=200)
    if summarizer is not None:
        compaction = RollingSummary(trigger=0.02, keep=4, budget=200, summarizer=summarizer)
    engine = ContextEngine(
        "gpt-realtime", PROVIDER, compaction=compaction, rollover=SEED,
        rollover_margin_seconds=40, clock=clock,
    )  # fmt: skip
    texts: list[str] = []
    responses = 0
    rollovers: list[str] = []
    lost = None
    rng = random.Random(seed)
    async with (
        FakeRealtimeServer(provider=PROVIDER, clock=clock, responder=_answer) as server,
        AsyncStore(db_url) as store,
    ):
        Injector(server, faults).install()
        if failing_writes:
            _fail_writes(store, failing_writes, rng)
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        async with connect(
            client, model="gpt-realtime", engine=engine, store=store,
            reconnect_backoff_seconds=0.01, summary_timeout_seconds=0.3,
        ) as conn:  # fmt: skip
            # Measured from the first turn: opening the first connection of a process imports
            # the SDK's websocket modules once (about 0.3 s here), before anyone speaks.
            with LagMonitor() as lag:
                turn = 0
                while clock.now < minutes * 60 and lost is None:
                    clock.advance(6.0)
                    text = f"Turn {turn}: my booking code is K{turn:04d}, please keep it."
                    await conn.conversation.item.create(item={
                        "type": "message", "role": "user",
                        "content": [{"type": "input_text", "text": text}]})  # fmt: skip
                    texts.append(text)
                    await conn.response.create()
                    while True:
                        event = await conn.recv()
                        if event.type == "context_manager.rollover":
                            rollovers.append(event.reason)
                        elif event.type == "context_manager.connection_lost":
                            lost = event
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
        stored = Counter(i.text for i in sync.load(cid).items if getattr(i, "role", None) == "user")
        usage = len(sync.usage(cid))
    finally:
        sync.close()
    # Items compacted away are not in `load`; count every stored row instead.
    return Outcome(
        texts, responses, rollovers, lost, lag.worst, stored, usage, engine.responses,
        write_failures, switch_failures,
    )  # fmt: skip


def _fail_writes(store: AsyncStore, share: float, rng: random.Random) -> None:
    """Make a share of the store's writes fail once, as a flaky database would."""
    from context_manager.errors import StoreError

    for name in ("append", "update_item", "mark", "record_usage", "record_compaction"):
        method = getattr(store, name)

        def flaky(*args: Any, _method: Callable[..., Any] = method, **kwargs: Any) -> Any:
            if rng.random() < share:
                raise StoreError("injected: the database went away")
            return _method(*args, **kwargs)

        setattr(store, name, flaky)


def _check(outcome: Outcome) -> None:
    assert outcome.lost is None
    every = Counter(outcome.texts)
    # Every turn the application sent is stored exactly once (compacted ones included).
    assert outcome.stored_user == every or set(outcome.stored_user) <= set(every)
    assert all(n == 1 for n in outcome.stored_user.values())
    assert outcome.usage_rows == outcome.engine_responses >= outcome.responses
    # Loop lag is measured, not asserted, here (benchmarks/soak_live.py prints it): timings in
    # tests lie on a loaded machine. What the tests assert is that nothing slow runs on it.


def _rows(db_url: str) -> Counter[str]:
    from sqlalchemy import create_engine, select

    from context_manager.store.models import ItemRow

    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(select(ItemRow.content)).all()
    engine.dispose()
    return Counter(str(r.content.get("text")) for r in rows if r.content.get("role") == "user")


FAULTS = {
    "drop while seeding": [Fault(1, "conversation.item.create", 2, "drop")],
    "drop on the new session.update": [Fault(1, "session.update", 1, "drop")],
    "expiry while seeding": [Fault(1, "conversation.item.create", 1, "expire")],
    "drop mid-call, then again while recovering": [
        Fault(0, "conversation.item.create", 10, "drop"),
        Fault(1, "conversation.item.create", 1, "drop"),
    ],
    "drop on a response.create": [Fault(0, "response.create", 7, "drop")],
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_at_the_worst_moment_loses_nothing(name: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    faults = [Fault(f.session, f.kind, f.nth, f.how) for f in FAULTS[name]]
    outcome = asyncio.run(_call(db, faults))
    assert all(f.fired for f in faults), "the fault was injected"
    # A fault inside a switch costs that attempt, and the next one succeeds.
    assert outcome.switch_failures == (0 if name == "drop on a response.create" else 1)
    _check(outcome)
    rows = _rows(db)
    assert all(rows[t] == 1 for t in outcome.texts), "every turn stored once, none twice"
    assert len(outcome.rollovers) >= 2


def test_failing_store_writes_lose_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    outcome = asyncio.run(_call(db, [], failing_writes=0.1, seed=3))
    assert outcome.write_failures > 5, "writes failed, and were retried"
    _check(outcome)
    rows = _rows(db)
    assert all(rows[t] == 1 for t in outcome.texts)


class _SlowSummarizer:
    """A model that takes its time: past the 0.3 s deadline. Notes the threads it ran in."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        self.threads.add(threading.get_ident())
        time.sleep(1.0)
        return "Slow summary."


class _FailingSummarizer(_SlowSummarizer):
    """A model that is down."""

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        self.threads.add(threading.get_ident())
        raise RuntimeError("the summary model is down")


@pytest.mark.parametrize(
    "summarizer", [_SlowSummarizer(), _FailingSummarizer()], ids=["slow", "failing"]
)
def test_a_slow_or_failing_summarizer_never_stalls_the_loop(
    summarizer: Any, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    outcome = asyncio.run(_call(db, [], minutes=5.0, summarizer=summarizer))
    _check(outcome)
    assert summarizer.threads, "the summarizer was asked"
    assert threading.get_ident() not in summarizer.threads, "never on the event loop's thread"
