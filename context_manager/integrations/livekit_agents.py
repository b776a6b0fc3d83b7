"""LiveKit Agents: an OpenAI realtime model whose context the engine manages.

`ManagedRealtimeModel` is LiveKit's own OpenAI realtime model
(``livekit.plugins.openai.realtime.RealtimeModel``) with one difference: each session's socket
is a `ManagedConnection`. An agent builder changes the ``llm`` of an ``AgentSession``::

    engine = ContextEngine("gpt-realtime", "azure", compaction=RollingSummary(),
                           rollover=RolloverPolicy(carry="summary"))
    model = ManagedRealtimeModel(engine, client=AsyncAzureOpenAI(...), store=store,
                                 conversation_id="call-42", modalities=["audio"])
    session = AgentSession(llm=model)                     # the rest is unchanged
    model.on("context_report", print)

What the session then has, with nothing else changed in the agent:

* **rollover before the cut** instead of LiveKit's own reconnect: LiveKit recycles its
  connection every ``max_session_duration`` (20 minutes by default) and replays the whole chat
  context into the new session; here its timer is off and the connection moves to a new
  session before the provider's cut (60 minutes on OpenAI, 30 on Azure), at a safe point,
  seeded with a summary and the latest turns (tool calls carried, user audio re-sent). A
  dropped socket does the same. LiveKit's session never sees the switch: what it sends
  meanwhile waits, and ids of items the new session holds as copies are translated
  (`context_manager.realtime.stale`);
* **compaction** by the engine's strategy, sent as Realtime client events on the same socket;
* **persistence and resume** through an `AsyncStore`: every item is stored before it is sent,
  and a new process with the same ``conversation_id`` resumes the call from the store;
* **the live budget and cost**: after every response (out-of-band ones included) and every
  rollover, a `ContextReport` is emitted as a ``"context_report"`` event of the model and of
  the realtime session (LiveKit's components report their metrics as events the same way);
  the model's ``engine`` holds the rest (forecast, calibration). LiveKit's own
  ``metrics_collected`` events are untouched.

The one hook used, ``RealtimeSession._create_ws_conn``, is private to LiveKit: the extra pins
``livekit-agents`` to the versions it is tested with (see the docs page). LiveKit's own URL,
API key and Azure options are not used: the connection is made by the ``AsyncOpenAI`` client
given (``AsyncAzureOpenAI`` for Azure), as `context_manager.realtime.connect` makes it, and it
speaks the GA protocol on both. If the managed connection gives up reconnecting, LiveKit's
session ends with a non-retryable connection error (its own reconnect, a full replay, is not
used).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigurationError
from ..realtime import ConnectionLostEvent, ManagedConnection, connect
from .report import ContextReport, check_arguments, relay

try:
    import aiohttp
    from livekit import rtc
    from livekit.agents import APIConnectionError
    from livekit.plugins.openai import realtime as _openai_realtime
except ImportError:  # pragma: no cover - the extra is missing
    raise ConfigurationError(
        "the LiveKit Agents integration needs livekit-agents and its OpenAI plugin:"
        ' pip install "context-manager[livekit]"'
    ) from None

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from ..live import ContextEngine
    from ..store import AsyncStore

__all__ = ["ContextReport", "ManagedRealtimeModel", "ManagedRealtimeSession"]

_Emitter = rtc.EventEmitter[Literal["context_report"]]
_CLOSED = aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)


class _Socket:
    """What LiveKit's session reads and writes (an aiohttp WebSocket), over a connection."""

    def __init__(self, conn: ManagedConnection, session: ManagedRealtimeSession) -> None:
        self.conn = conn
        self._events: AsyncIterator[dict[str, Any] | ConnectionLostEvent] = relay(
            conn, session._emit_report
        )

    async def send_str(self, data: str) -> None:
        await self.conn.send(json.loads(data))

    async def receive(self) -> aiohttp.WSMessage:
        # A lost connection (reconnects exhausted) reads as the socket closing.
        event = await anext(self._events, None)
        if event is None or isinstance(event, ConnectionLostEvent):
            return _CLOSED
        return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, json.dumps(event), None)

    async def close(self) -> None:
        await self.conn.close()


class ManagedRealtimeSession(_openai_realtime.RealtimeSession):
    """LiveKit's OpenAI realtime session over a `ManagedConnection` (made by the model)."""

    _realtime_model: ManagedRealtimeModel

    connection: ManagedConnection | None = None
    """The managed connection of this session (its rollovers, its store)."""

    async def _create_ws_conn(self) -> Any:
        model = self._realtime_model
        if self.connection is not None:
            # The connection already retried as configured: LiveKit's reconnect (a full
            # replay into a blank session) would only lose the seed's shape.
            raise APIConnectionError("the managed connection was lost", retryable=False)
        conn = connect(model.client, model=model.model, engine=model.engine, store=model.store,
                       conversation_id=model.conversation_id, raw=True,
                       **model._connect_options)  # fmt: skip
        try:
            await conn.__aenter__()
        except Exception as exc:  # its retries spent (the cause may name the host: not kept)
            raise APIConnectionError(str(exc), retryable=False) from None
        self.connection = conn
        model.conversation_id = conn.conversation_id
        return _Socket(conn, self)

    async def _emit_report(self, report: ContextReport) -> None:
        self.emit("context_report", report)  # type: ignore[arg-type]
        self._realtime_model._report(report)


class ManagedRealtimeModel(_openai_realtime.RealtimeModel, _Emitter):
    """LiveKit's OpenAI realtime model, its context managed by `engine` (see the module).

    Args:
        engine: the context engine of this call (its profile and provider, compaction and
            rollover policy).
        client: an ``AsyncOpenAI`` or ``AsyncAzureOpenAI`` client the sessions are opened with.
        model: the model (Azure: the deployment).
        store: where the call is persisted (``None``: nowhere).
        conversation_id: the stored call to continue, or the id to give a new one.
        connect_options: passed to `context_manager.realtime.connect` (timeouts, retries).
        **options: LiveKit's own model options (``voice``, ``modalities``, ``turn_detection``,
            ``input_audio_transcription``, ...); not ``api_key``, ``base_url``, the Azure
            options or ``max_session_duration`` (see the module).
    """

    def __init__(
        self,
        engine: ContextEngine,
        *,
        client: AsyncOpenAI,
        model: str = "gpt-realtime",
        store: AsyncStore | None = None,
        conversation_id: str | None = None,
        connect_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        check_arguments("ManagedRealtimeModel", client, options, _NOT_OURS)
        # The API key is the client's; LiveKit's model asks for one it will not use.
        super().__init__(model=model, api_key="unused", max_session_duration=None, **options)
        rtc.EventEmitter.__init__(self)
        self.engine = engine
        self.client = client
        self.store = store
        self.conversation_id = conversation_id
        self._connect_options = dict(connect_options or {})
        self.reports: list[ContextReport] = []
        """Every report emitted, in order."""
        self.latest: ManagedRealtimeSession | None = None
        """The newest session LiveKit asked for."""

    def session(self, *, turn_detection_disabled: bool = False) -> ManagedRealtimeSession:
        """A realtime session over a managed connection of this model's call."""
        sess = ManagedRealtimeSession(self, turn_detection_disabled=turn_detection_disabled)
        self._sessions.add(sess)
        self.latest = sess
        return sess

    def _report(self, report: ContextReport) -> None:
        self.reports.append(report)
        self.emit("context_report", report)

    @property
    def connection(self) -> ManagedConnection | None:
        """The managed connection of the newest session (``None`` before it connects)."""
        return self.latest.connection if self.latest is not None else None


_NOT_OURS = frozenset(
    {"api_key", "base_url", "http_session", "azure_deployment", "entra_token", "api_version",
     "max_session_duration"}
)  # fmt: skip
