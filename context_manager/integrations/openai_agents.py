"""The OpenAI Agents SDK: a realtime model whose context the engine manages.

`ManagedRealtimeModel` is the SDK's own WebSocket model (``OpenAIRealtimeWebSocketModel``)
with one difference: its socket is a `ManagedConnection`. An agent builder adds a few lines::

    engine = ContextEngine("gpt-realtime", "azure", compaction=RollingSummary(),
                           rollover=RolloverPolicy(carry="summary"))
    model = ManagedRealtimeModel(engine, client=AsyncOpenAI(), store=store,
                                 conversation_id="call-42")
    runner = RealtimeRunner(agent, model=model)          # the rest is unchanged
    async with await runner.run() as session: ...

What the session then has, with nothing else changed in the agent:

* **rollover before the cut**: before the provider ends a session (60 minutes on OpenAI, 30 on
  Azure) the connection moves to a new session, at a safe point, seeded with a summary and the
  latest turns (tool calls carried); a dropped socket does the same. The SDK's session never
  sees the switch: the new session's setup and seed events are consumed, and what it sends
  meanwhile waits and goes to the new session;
* **compaction** by the engine's strategy, sent as Realtime client events on the same socket;
* **persistence and resume** through an `AsyncStore`: every item is stored before it is sent,
  and a new process with the same ``conversation_id`` resumes the call from the store;
* **the live budget and cost**: after every response the agent sees (its out-of-band ones
  included) and every rollover the model emits a `ContextReport` (its cost counts the
  engine's own out-of-band summaries too), which the session delivers as a
  ``raw_model_event`` whose data has ``type == "other"`` (the SDK's channel for events of a
  model of its own); `ManagedRealtimeModel.engine` holds the rest (forecast, calibration).

The one hook used, ``_create_websocket_connection``, is private to the SDK: the extra pins
``openai-agents`` to the versions it is tested with (``>=0.22,<0.25``). The SDK's own URL,
headers and API key are not used: the connection is made by the ``AsyncOpenAI`` client given
(``AsyncAzureOpenAI`` for Azure), as `context_manager.realtime.connect` makes it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..realtime import ConnectionLostEvent, ManagedConnection, connect
from .report import ContextReport, check_arguments, relay

try:
    from agents.realtime.model_events import RealtimeModelOtherEvent
    from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel
except ImportError:  # pragma: no cover - the extra is missing
    raise ConfigurationError(
        "the OpenAI Agents SDK integration needs openai-agents:"
        ' pip install "context-manager[agents]"'
    ) from None

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from ..live import ContextEngine
    from ..store import AsyncStore

__all__ = ["ContextReport", "ManagedRealtimeModel"]


class _Socket:
    """What the SDK's model reads and writes, over a `ManagedConnection`.

    The model only iterates over JSON messages, sends JSON messages and closes.
    """

    def __init__(self, conn: ManagedConnection, report: Callable[[ContextReport], Awaitable[None]]):
        self.conn = conn
        self._report = report

    async def send(self, payload: str | bytes) -> None:
        await self.conn.send(json.loads(payload))

    def __aiter__(self) -> AsyncIterator[str]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str]:
        from websockets.exceptions import ConnectionClosedError

        async for event in relay(self.conn, self._report):
            if isinstance(event, ConnectionLostEvent):
                raise ConnectionClosedError(None, None)  # the SDK's model reports the loss
            yield json.dumps(event)

    async def close(self) -> None:
        await self.conn.close()


class ManagedRealtimeModel(OpenAIRealtimeWebSocketModel):
    """The Agents SDK's realtime model, its context managed by `engine` (see the module).

    Args:
        engine: the context engine of this call (its profile and provider, compaction and
            rollover policy).
        client: an ``AsyncOpenAI`` or ``AsyncAzureOpenAI`` client the sessions are opened with.
        model: the model (Azure: the deployment); default: the SDK's model setting.
        store: where the call is persisted (``None``: nowhere).
        conversation_id: the stored call to continue, or the id to give a new one.
        connect_options: passed to `context_manager.realtime.connect` (timeouts, retries).
    """

    def __init__(
        self,
        engine: ContextEngine,
        *,
        client: AsyncOpenAI,
        model: str | None = None,
        store: AsyncStore | None = None,
        conversation_id: str | None = None,
        **connect_options: Any,
    ) -> None:
        check_arguments("ManagedRealtimeModel", client, {})
        super().__init__()
        self.engine = engine
        self.client = client
        if model is not None:
            self.model = model
        self.store = store
        self.conversation_id = conversation_id
        self._connect_options = connect_options
        self.connection: ManagedConnection | None = None
        """The managed connection of the current `connect` (its rollovers, its store)."""
        self.reports: list[ContextReport] = []
        """Every report emitted, in order."""

    async def connect(self, options: Any) -> None:
        """Open the managed connection (the SDK's ``api_key``, ``url`` and ``headers`` unused)."""
        # Headers given: the SDK asks for no API key (the client has its own).
        settings: Any = {**options, "headers": {}}
        await super().connect(settings)

    async def _create_websocket_connection(self, url: str, headers: dict[str, str],
                                           transport_config: Any = None) -> Any:  # fmt: skip
        # The SDK's URL and headers are replaced by the client's own (see the module).
        conn = connect(self.client, model=self.model, engine=self.engine, store=self.store,
                       conversation_id=self.conversation_id, raw=True,
                       **self._connect_options)  # fmt: skip
        await conn.__aenter__()
        self.connection = conn
        self.conversation_id = conn.conversation_id
        return _Socket(conn, self._emit_report)

    async def _emit_report(self, report: ContextReport) -> None:
        self.reports.append(report)
        await self._emit_event(RealtimeModelOtherEvent(data=report))
