"""Pipecat: an OpenAI realtime LLM service whose context the engine manages.

`ManagedRealtimeLLMService` is Pipecat's own ``OpenAIRealtimeLLMService`` with one difference:
its socket is a `ManagedConnection`. An agent builder changes the service in the pipeline::

    engine = ContextEngine("gpt-realtime", "azure", compaction=RollingSummary(),
                           rollover=RolloverPolicy(carry="summary"))
    llm = ManagedRealtimeLLMService(engine, client=AsyncAzureOpenAI(...), store=store,
                                    conversation_id="call-42", settings=...)
    pipeline = Pipeline([transport.input(), llm, transport.output()])   # as before

    @llm.event_handler("on_context_report")
    async def on_report(service, report): ...

What the pipeline then has, with nothing else changed:

* **rollover before the cut**: Pipecat has none (at the provider's cut, 60 minutes on OpenAI
  and 30 on Azure, its receive loop ends on the server's error and the call goes deaf). Here
  the connection moves to a new session before the cut, at a safe point, seeded with a summary
  and the latest turns (tool calls carried, the caller's audio re-sent). A dropped socket does
  the same. The service never sees the switch;
* **compaction** by the engine's strategy, sent as Realtime client events on the same socket
  (Pipecat's own context summarizer cannot run with its realtime service, and would shrink only
  its local copy of the context);
* **persistence and resume** through an `AsyncStore`: every item is stored before it is sent,
  and a new process with the same ``conversation_id`` resumes the call from the store;
* **the live budget and cost**: after every response (out-of-band ones included) and every
  rollover the service calls its ``on_context_report`` handlers with a `ContextReport` and, when
  the pipeline has usage metrics on, pushes a ``MetricsFrame`` of `ContextMetricsData`
  (Pipecat's own ``LLMUsageMetricsData`` frames are untouched).

The one hook used, ``OpenAIRealtimeLLMService._connect``, is private to Pipecat: the extra pins
``pipecat-ai`` to the versions it is tested with (see the docs page). Pipecat's ``api_key`` and
``base_url`` are not used: the connection is made by the ``AsyncOpenAI`` client given
(``AsyncAzureOpenAI`` for Azure), as `context_manager.realtime.connect` makes it. Server events
of types the installed Pipecat does not know are not passed to it (before 1.14 one would end
its receive loop). ``reset_conversation`` (Pipecat's replay of its local context into a blank
session) is refused: the engine decides what a new session holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..realtime import ConnectionLostEvent, ManagedConnection, connect
from .report import ContextReport, check_arguments, relay

try:
    from pipecat.frames.frames import EndWorkerFrame, MetricsFrame
    from pipecat.metrics.metrics import MetricsData
    from pipecat.services.openai.realtime import events as _events
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
except ImportError:  # pragma: no cover - the extra is missing
    raise ConfigurationError(
        "the Pipecat integration needs pipecat-ai and its OpenAI service:"
        ' pip install "context-manager[pipecat]"'
    ) from None

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from ..live import ContextEngine
    from ..store import AsyncStore

__all__ = ["ContextMetricsData", "ContextReport", "ManagedRealtimeLLMService"]

# The server event types this Pipecat parses (an unknown one ends its receive loop before 1.14).
_KNOWN: frozenset[str] = frozenset(getattr(_events, "_server_event_types", {}))


class ContextMetricsData(MetricsData):
    """A `ContextReport` as Pipecat metrics (in a ``MetricsFrame``, with usage metrics on)."""

    value: ContextReport


class _Socket:
    """What Pipecat's service reads and writes (a ``websockets`` client), over a connection."""

    def __init__(self, conn: ManagedConnection, service: ManagedRealtimeLLMService) -> None:
        self.conn = conn
        self._service = service
        self.withheld: dict[str, int] = {}
        """Server events not passed to Pipecat, by type (types it does not know)."""

    async def send(self, message: str | bytes) -> None:
        await self.conn.send(json.loads(message))

    def __aiter__(self) -> AsyncIterator[str]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str]:
        async for event in relay(self.conn, self._service._report):
            if isinstance(event, ConnectionLostEvent):
                await self._service._give_up(
                    f"the realtime connection was lost ({event.reason}, {event.attempts}"
                    f" attempts: {event.error})"
                )
                return
            kind = str(event.get("type"))
            if _KNOWN and kind not in _KNOWN:
                self.withheld[kind] = self.withheld.get(kind, 0) + 1
                continue
            yield json.dumps(event)

    async def close(self) -> None:
        await self.conn.close()


class ManagedRealtimeLLMService(OpenAIRealtimeLLMService):
    """Pipecat's OpenAI realtime service, its context managed by `engine` (see the module).

    Args:
        engine: the context engine of this call (its profile and provider, compaction and
            rollover policy).
        client: an ``AsyncOpenAI`` or ``AsyncAzureOpenAI`` client the sessions are opened with.
        store: where the call is persisted (``None``: nowhere).
        conversation_id: the stored call to continue, or the id to give a new one.
        connect_options: passed to `context_manager.realtime.connect` (timeouts, retries).
        **options: Pipecat's own service options (``settings``, ``start_audio_paused``, ...);
            not ``api_key`` or ``base_url`` (see the module). The model (Azure: the
            deployment) is the settings' ``model``.
    """

    def __init__(
        self,
        engine: ContextEngine,
        *,
        client: AsyncOpenAI,
        store: AsyncStore | None = None,
        conversation_id: str | None = None,
        connect_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        check_arguments("ManagedRealtimeLLMService", client, options, ("api_key", "base_url"))
        # The API key is the client's; Pipecat's service asks for one it will not use.
        super().__init__(api_key="unused", **options)
        self.engine = engine
        self.client = client
        self.store = store
        self.conversation_id = conversation_id
        self._connect_options = dict(connect_options or {})
        self.connection: ManagedConnection | None = None
        """The managed connection (its rollovers, its store); ``None`` before the start."""
        self.reports: list[ContextReport] = []
        """Every report emitted, in order."""
        self._register_event_handler("on_context_report")

    async def _connect(self) -> None:
        me: Any = self  # Pipecat's own attributes are untyped
        if me._websocket:
            return
        try:
            conn = connect(self.client, model=me._settings.model, engine=self.engine,
                           store=self.store, conversation_id=self.conversation_id, raw=True,
                           **self._connect_options)  # fmt: skip
            await conn.__aenter__()
        except Exception as exc:  # no session to be had (its retries spent): the call ends
            await self._give_up(f"could not connect: {exc}", exc)
            return
        self.connection = conn
        self.conversation_id = conn.conversation_id
        me._websocket = _Socket(conn, self)
        me._receive_task = self.create_task(me._receive_task_handler())
        # The connection took the session's ``session.created``, on which Pipecat configures
        # the session: configure it now, as Pipecat would have.
        await me._send_session_update()

    async def reset_conversation(self) -> None:
        """Refused: the engine decides what a new session holds (see the module).

        Raises:
            ConfigurationError: always.
        """
        raise ConfigurationError(
            "reset_conversation is not available on a managed service: the call rolls over"
            " into new sessions by itself; start a new call with a new conversation_id"
        )

    async def _give_up(self, message: str, exc: Exception | None = None) -> None:
        """The call cannot go on: an error frame (the service unusable), then the pipeline ends."""
        await self.push_error(error_msg=message, exception=exc, force_treat_as_permanent=True)
        await self.push_frame(EndWorkerFrame())

    async def _report(self, report: ContextReport) -> None:
        self.reports.append(report)
        await self._call_event_handler("on_context_report", report)
        if self.usage_metrics_enabled:
            model = getattr(self._settings, "model", None)
            data = ContextMetricsData(processor=self.name, model=model, value=report)
            await self.push_frame(MetricsFrame(data=[data]))
