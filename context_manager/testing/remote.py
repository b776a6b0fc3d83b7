"""The fake server in a process of its own, so the application's event loop is measured alone.

In one process the fake server's work (its conversation, cache model and socket writes) shares
the application's event loop and heap, so a lag measured there is partly the fake's. A real
agent's process holds only the client side. `ServerProcess` runs a `FakeRealtimeServer` (and
a `FaultInjector`) in a spawned process; `SharedClock` is a `ManualClock` kept in shared
memory, so the application and the server move and read one virtual clock.

>>> clock = SharedClock(5.0)
>>> clock.advance(1.5)
6.5
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..server.model import ManualClock

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from ..profiles import ProviderProfile
    from .faults import Fault
    from .replies import Responder

__all__ = ["ServerProcess", "SharedClock"]

_SPAWN = multiprocessing.get_context("spawn")


class SharedClock(ManualClock):
    """A `ManualClock` whose time is in shared memory: both processes see every move."""

    def __init__(self, start: float = 0.0) -> None:
        self._value: Any = _SPAWN.Value("d", start, lock=False)

    @property
    def now(self) -> float:
        return float(self._value.value)

    @now.setter
    def now(self, t: float) -> None:
        self._value.value = t


class ServerProcess:
    """A `FakeRealtimeServer` with `faults` in a spawned process; ``base_url`` once entered.

    The responder must be picklable (a module-level function). The server's own checks
    (a fake's bug) stop the process, and the next client call fails as a dropped socket would.
    """

    def __init__(
        self,
        provider: ProviderProfile,
        clock: SharedClock,
        responder: Responder,
        faults: Sequence[Fault] = (),
    ) -> None:
        self._args = (provider, clock, responder, list(faults))
        self._process: Any = None
        self._pipe: Connection | None = None
        self.base_url = ""

    async def __aenter__(self) -> ServerProcess:
        ours, theirs = _SPAWN.Pipe()
        self._pipe = ours
        self._process = _SPAWN.Process(target=_serve, args=(theirs, *self._args), daemon=True)
        self._process.start()
        # Start-up (the child's imports, about a second) is before any call: off the loop anyway.
        self.base_url = str(await asyncio.to_thread(self._started))
        return self

    def _started(self) -> object:
        assert self._pipe is not None
        while not self._pipe.poll(0.1):
            if not self._process.is_alive():
                raise ConfigurationError(
                    f"the fake server's process ended at start-up (exit code "
                    f"{self._process.exitcode}); its error is on standard error"
                )
        return self._pipe.recv()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._pipe is not None
        with contextlib.suppress(OSError):  # already gone
            self._pipe.send("stop")
        await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.kill()


def _serve(
    pipe: Connection,
    provider: ProviderProfile,
    clock: SharedClock,
    responder: Responder,
    faults: list[Fault],
) -> None:
    asyncio.run(_run(pipe, provider, clock, responder, faults))


async def _run(
    pipe: Connection,
    provider: ProviderProfile,
    clock: SharedClock,
    responder: Responder,
    faults: list[Fault],
) -> None:
    from .faults import FaultInjector
    from .server import FakeRealtimeServer

    async with FakeRealtimeServer(provider=provider, clock=clock, responder=responder) as server:
        FaultInjector(server, faults).install()
        pipe.send(server.base_url)
        await asyncio.to_thread(pipe.recv)
