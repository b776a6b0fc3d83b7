"""Socket-level helpers of the adapter: frames in, events out, sockets closed without waiting.

No conversation text leaves here: failures are described by type (and a server error by code).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, RolloverError

if TYPE_CHECKING:
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

__all__ = ["as_dict", "close_quietly", "describe", "drain", "parse_frame", "recv_within", "retire"]

log = logging.getLogger("context_manager.realtime.connection")


class _SwitchFailed(Exception):
    """One attempt at a new session failed (the adapter tries again)."""


def parse_frame(data: bytes | str) -> dict[str, Any] | None:
    """A server frame as a dict (``None``, logged, for a frame that is not a JSON object)."""
    try:
        raw = json.loads(data)
    except ValueError:
        log.warning("the server sent a frame that is not JSON; skipped")
        return None
    return raw if isinstance(raw, dict) else None


async def close_quietly(conn: AsyncRealtimeConnection, seconds: float = 0.1) -> None:
    """Close a socket without waiting long for its closing handshake.

    websockets waits its whole close timeout (10 s by default) for a peer that does not answer
    the close, as when more frames are unread than its buffer holds: the old session of a
    rollover, mostly. Here it waits `seconds`, then the socket is aborted.
    """
    ws = getattr(conn, "_connection", None)  # the SDK's websockets connection
    if ws is not None and hasattr(ws, "close_timeout"):
        ws.close_timeout = seconds
    with contextlib.suppress(Exception):
        await asyncio.wait_for(conn.close(), seconds * 4)
    transport = getattr(ws, "transport", None)
    if transport is not None and getattr(getattr(ws, "state", None), "name", "") != "CLOSED":
        transport.abort()  # a half-closed socket the peer never finished: let it go now


async def recv_within(conn: AsyncRealtimeConnection, seconds: float) -> bytes:
    """The next frame, or `TimeoutError` after `seconds`.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives with a
    frame, and an application cancelling the task that reads would wait forever.
    """
    async with asyncio.timeout(seconds):
        return await conn.recv_bytes()


async def drain(
    conn: AsyncRealtimeConnection,
    coming: Callable[[], bool],
    take: Callable[[dict[str, Any]], None],
    seconds: float,
) -> None:
    """Read `conn` while `coming()` says more is due, each event to `take`, for `seconds` at most.

    It ends quietly at the deadline, on a closed socket, or when another task is reading.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    with contextlib.suppress(Exception):
        while coming():
            raw = parse_frame(await recv_within(conn, max(end - loop.time(), 0)))
            if raw is not None:
                take(raw)


def describe(exc: BaseException) -> str:
    """An exception by type (and code, for a server error): never its text."""
    text = str(exc) if isinstance(exc, _SwitchFailed | RolloverError) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def as_dict(event: Any) -> dict[str, Any]:
    """A client event as a dict (an SDK model dumped as the SDK would send it)."""
    if isinstance(event, Mapping):
        return dict(event)
    dump = getattr(event, "model_dump", None)
    if dump is None:
        raise ConfigurationError(f"cannot send {type(event).__name__}: not a dict or an SDK model")
    result: dict[str, Any] = dump(mode="json", by_alias=True, exclude_unset=True)
    return result


async def retire(
    old: AsyncRealtimeConnection,
    late: Callable[[Mapping[str, Any]], None],
    running: set[str] | frozenset[str] = frozenset(),
) -> None:
    """The old session after a planned switch: cleared, drained, closed.

    Its input buffer is cleared (half a turn appended there is not answered); a response it
    still finishes (`running` at the switch, or started since) is read and handed to `late`
    (its usage counts); then the socket closes.
    """
    active = set(running)
    with contextlib.suppress(Exception):  # a timeout or the close ends it
        await old.send({"type": "input_audio_buffer.clear"})
        while True:
            raw = parse_frame(await recv_within(old, 5 if active else 0.5))
            response = (raw or {}).get("response")
            if (
                not raw
                or not isinstance(response, Mapping)
                or not isinstance(response.get("id"), str)
            ):
                continue
            if raw.get("type") == "response.created":
                active.add(response["id"])
            elif raw.get("type") == "response.done":
                active.discard(response["id"])
                late(response)
    await close_quietly(old)
