"""`FakeRealtimeServer`: the fake Realtime API on a local WebSocket, for the real client.

Each connection is a `FakeSession`; the server adds the sockets, the endpoint's path, the
shared clock and prompt cache, the expiry timer and `FakeRealtimeServer.drop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigurationError
from ..profiles import ModelProfile, ProviderProfile, get_model_profile, get_provider_profile
from ..server.cache import PromptCache
from ..server.model import ManualClock
from ..tokens import TokenCounter
from .base import TranscriptionTiming
from .replies import Responder, Transcriber, echo_responder
from .session import FakeSession

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

__all__ = ["FakeRealtimeServer"]


class FakeRealtimeServer:
    """A local Realtime server for end-to-end tests of agents that use the ``openai`` client.

    ::

        async with FakeRealtimeServer("gpt-realtime", "azure") as server:
            client = AsyncOpenAI(api_key="test", base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                ...

    Every connection to a path ending in ``/realtime`` is a new `FakeSession` (in `sessions`,
    in connection order); any other path gets a 404. The ``Authorization`` header is not
    checked. A session's ``model`` is the one the client asked for (``?model=``), while the
    accounting follows `profile`. Sessions share one clock and one prompt cache. A session
    past the provider's maximum duration gets the ``session_expired`` error and a close 1001,
    whether the client sends something (the next event) or stays idle (a timer checks every
    `expiry_poll_seconds`).

    If the responder or the transcriber raises, the client gets a ``server_error`` event and
    the exception is kept in `failures`; leaving the ``async with`` block re-raises the first
    one, so a broken script fails the test instead of hanging it.

    Args:
        profile: the model profile (or its name).
        provider: the provider profile (or name): ``"openai"`` (60 minutes) or ``"azure"`` (30).
        clock: the virtual clock (a callable giving seconds); a new `ManualClock` at 0 by
            default.
        responder: gives each response's reply.
        transcriber: transcribes committed user audio, when a session asks for transcription.
        send_audio: send the output audio as ``response.output_audio.delta`` events (zeros).
        advance_clock: move a `ManualClock` by committed user audio and the assistant's speech.
        port: the port on 127.0.0.1; 0 picks a free one.
        expiry_poll_seconds: how often idle sessions are checked for expiry (``None``: never;
            expiry then shows only at the client's next event).
        transcription_timing: when input transcription events come (see `FakeSession`).
        cancelled_usage: the usage a cancelled response reports (see `FakeSession`).
    """

    def __init__(
        self,
        profile: ModelProfile | str = "gpt-realtime",
        provider: ProviderProfile | str = "openai",
        *,
        clock: Callable[[], float] | None = None,
        responder: Responder = echo_responder,
        transcriber: Transcriber | None = None,
        send_audio: bool = False,
        advance_clock: bool = True,
        port: int = 0,
        expiry_poll_seconds: float | None = 0.05,
        transcription_timing: TranscriptionTiming = "late",
        cancelled_usage: Literal["produced", "zero"] = "zero",
    ) -> None:
        self.transcription_timing: TranscriptionTiming = transcription_timing
        self.cancelled_usage: Literal["produced", "zero"] = cancelled_usage
        self.profile = get_model_profile(profile) if isinstance(profile, str) else profile
        self.provider = get_provider_profile(provider) if isinstance(provider, str) else provider
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
        self.responder = responder
        self.transcriber = transcriber
        self.send_audio = send_audio
        self.advance_clock = advance_clock
        self.expiry_poll_seconds = expiry_poll_seconds
        self.cache = PromptCache(self.profile.cache)
        """The prompt cache all sessions share."""
        self.sessions: list[FakeSession] = []
        """Every session, in connection order."""
        self.failures: list[Exception] = []
        """Exceptions raised by the responder or transcriber (or a bug in the fake)."""
        self._counter = TokenCounter(self.profile)
        self._port = port
        self._server: Server | None = None
        self._poller: asyncio.Task[None] | None = None
        self._open: dict[FakeSession, ServerConnection] = {}

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
        if exc_type is None and self.failures:
            raise self.failures[0]

    async def start(self) -> None:
        """Start listening on 127.0.0.1 (``async with`` does this)."""
        try:
            from websockets.asyncio.server import serve
        except ImportError as exc:
            raise ConfigurationError(
                'the fake realtime server needs websockets: pip install "context-manager[testing]"'
            ) from exc
        self._server = await serve(
            self._handle, "127.0.0.1", self._port, process_request=self._check_path
        )
        self._port = next(iter(self._server.sockets)).getsockname()[1]
        if self.expiry_poll_seconds is not None:
            self._poller = asyncio.create_task(self._poll(self.expiry_poll_seconds))

    async def close(self) -> None:
        """Stop: open connections are closed (1001) and the port is released."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def drop(self) -> None:
        """Cut every open connection abruptly, as a network failure would.

        No close frame is sent: the client sees an abnormal closure (1006). Those sessions
        are over; new connections are served as usual (a reconnecting client gets a new
        session, as from the real server).
        """
        dropped = list(self._open.items())
        for session, connection in dropped:
            session.close("dropped")
            connection.transport.abort()
        for _, connection in dropped:
            await connection.wait_closed()

    async def resume(self) -> None:
        """Let every response in progress (held by `Reply.pause_after_ms`) run to its end.

        The rest of their events go to their clients, in order.
        """
        from websockets.exceptions import ConnectionClosed

        for session, connection in list(self._open.items()):
            events = session.resume()
            with contextlib.suppress(ConnectionClosed):
                await self._send(connection, events)

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise ConfigurationError("the fake realtime server is not running; use async with")
        return self._port

    @property
    def base_url(self) -> str:
        """The client's ``base_url``: ``AsyncOpenAI(api_key="test", base_url=server.base_url)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def url(self) -> str:
        """The WebSocket URL of the realtime endpoint (add ``?model=...``)."""
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    # ------------------------------------------------------------------ connections

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if not path.endswith("/realtime"):
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"not found: {path}; the realtime endpoint is /v1/realtime\n"
            )
        return None

    def _new_session(self, model_name: str | None) -> FakeSession:
        session = FakeSession(
            profile=self.profile,
            provider=self.provider,
            clock=self.clock,
            responder=self.responder,
            transcriber=self.transcriber,
            cache=self.cache,
            session_id=f"sess_{len(self.sessions) + 1:03d}",
            model_name=model_name,
            send_audio=self.send_audio,
            advance_clock=self.advance_clock,
            counter=self._counter,
            transcription_timing=self.transcription_timing,
            cancelled_usage=self.cancelled_usage,
        )
        self.sessions.append(session)
        return session

    async def _handle(self, connection: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        assert connection.request is not None
        query = parse_qs(urlsplit(connection.request.path).query)
        session = self._new_session(query.get("model", [None])[0])
        self._open[session] = connection
        try:
            await self._send(connection, session.opening())
            async for message in connection:
                try:
                    events = session.receive_raw(message)
                except Exception as exc:  # the responder's or transcriber's, or a fake's bug
                    self.failures.append(exc)
                    error = session.error_event(
                        "server_error",
                        f"The fake server failed: {type(exc).__name__}: {exc}",
                        error_type="server_error",
                    )
                    session.sent.append(error)
                    events = [error]
                await self._send(connection, events)
                if session.closed:
                    await connection.close(1001, session.close_reason)
                    break
        except ConnectionClosed:
            pass
        finally:
            self._open.pop(session, None)

    async def _send(self, connection: ServerConnection, events: list[dict[str, Any]]) -> None:
        for event in events:
            await connection.send(json.dumps(event))

    async def _poll(self, interval: float) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            await asyncio.sleep(interval)
            for session, connection in list(self._open.items()):
                events = session.check_expiry()
                if events:
                    with contextlib.suppress(ConnectionClosed):
                        await self._send(connection, events)
                        await connection.close(1001, session.close_reason)
