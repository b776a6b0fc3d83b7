"""The openai adapter: a Realtime connection whose context is managed, across sessions.

`connect` wraps ``AsyncOpenAI().realtime.connect(...)`` in a `ManagedConnection`
(`context_manager.realtime.connection` says what it does behind the SDK's interface, and what
the application sees at a rollover). Needs the ``openai`` extra (and ``store`` for a store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connection import ManagedConnection
from .events import ConnectionLostEvent, RolloverEvent
from .oob import RealtimeSummarizer

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from ..live import ContextEngine
    from ..store import AsyncStore

__all__ = [
    "ConnectionLostEvent",
    "ManagedConnection",
    "RealtimeSummarizer",
    "RolloverEvent",
    "connect",
]


def connect(
    client: AsyncOpenAI,
    *,
    model: str,
    engine: ContextEngine,
    store: AsyncStore | None = None,
    conversation_id: str | None = None,
    poll_seconds: float = 1.0,
    reconnect_attempts: int = 5,
    reconnect_backoff_seconds: float = 0.5,
    switch_timeout_seconds: float = 15.0,
    summary_timeout_seconds: float = 20.0,
    buffer_seconds: float = 60.0,
    raw: bool = False,
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
        reconnect_attempts: sessions to try before giving up on a switch (each failure waits
            `reconnect_backoff_seconds`, doubled every time).
        reconnect_backoff_seconds: the first wait between attempts.
        switch_timeout_seconds: the longest wait for a new session to open or to answer
            while it is seeded (and for the store to take an item before it is sent).
        summary_timeout_seconds: the deadline of a compaction's summary (then the offline
            extractive summarizer is used instead).
        buffer_seconds: the most audio of the user's turn in progress (appended, not yet
            committed) kept to re-append to a new session after a drop (PCM16: 2.9 MB a
            minute of base64; older audio beyond it is dropped and counted).
        raw: deliver server events as the JSON objects they came as, not SDK models (for a
            framework that parses them itself).
        connect_options: passed to ``client.realtime.connect``.
    """
    return ManagedConnection(
        client,
        model=model,
        engine=engine,
        store=store,
        conversation_id=conversation_id,
        poll_seconds=poll_seconds,
        reconnect_attempts=reconnect_attempts,
        reconnect_backoff_seconds=reconnect_backoff_seconds,
        switch_timeout_seconds=switch_timeout_seconds,
        summary_timeout_seconds=summary_timeout_seconds,
        buffer_seconds=buffer_seconds,
        connect_options=connect_options,
        raw=raw,
    )
