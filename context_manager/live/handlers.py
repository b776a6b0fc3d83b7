"""How `SessionMirror` reads each server event type: one handler a type.

The rules are in `SessionMirror`'s docstring.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ServerModelError
from ..wire import audio_ms_from_size, base64_size
from .changes import (
    AudioCommitted,
    Change,
    ItemDeleted,
    RateLimits,
    ResponseDone,
    ServerError,
    SessionBegan,
    SessionChanged,
    TranscriptArrived,
)

if TYPE_CHECKING:
    from .mirror import SessionMirror

__all__ = ["HANDLERS", "NO_DELTAS", "NOTHING", "transcript_of"]

NOTHING: tuple[Change, ...] = ()


def transcript_of(item_id: str, raw: Mapping[str, Any]) -> tuple[Change, ...]:
    """The words an item's ``.done`` brings (none: nothing changed)."""
    for part in raw.get("content") or []:
        text = (part or {}).get("transcript")
        if isinstance(text, str) and text:
            return (TranscriptArrived(item_id, text),)
    return NOTHING


_Handler = Callable[["SessionMirror", Mapping[str, Any]], tuple[Change, ...]]


def _on_session_created(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    if m._touched:  # not the session a fresh mirror began with: a new one
        m.index += 1
        m._new_server()
    m.session = {}
    session = event.get("session") or {}
    m.configure(session)
    return (SessionBegan(m.index, session),)


def _on_session_updated(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    session = event.get("session") or {}
    m.configure(session)
    return (SessionChanged(session),)


def _on_speech(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item_id = event.get("item_id")
    started = str(event.get("type")).endswith("started")
    m.speaking = started
    if isinstance(item_id, str):
        key = "audio_start_ms" if started else "audio_end_ms"
        m._speech.setdefault(item_id, {})[key] = int(event.get(key) or 0)
    return NOTHING


def _on_committed(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item_id = event.get("item_id")
    m.speaking = False
    if not isinstance(item_id, str):
        m._buffered = 0
        return NOTHING
    marks = m._speech.get(item_id)
    if marks is not None and "audio_start_ms" in marks and "audio_end_ms" in marks:
        change = AudioCommitted(item_id, marks["audio_start_ms"], marks["audio_end_ms"])
    else:
        change = AudioCommitted(item_id, None, None)
        if m._buffered and marks is None:
            # Audio committed by hand (no VAD): its length is what the application appended.
            ms = audio_ms_from_size(m._buffered, m.input_format)
            m._speech[item_id] = {"audio_start_ms": 0, "audio_end_ms": ms}
        else:
            m.note(
                "input_audio_buffer.committed: audio of unknown length (no speech marks, and"
                " the appended bytes are not there); the item is left out of the model"
            )
    m._buffered = 0
    audio_in = (m.session.get("audio") or {}).get("input") or {}
    if m.transcription_config() is not None:
        m.transcribing.add(item_id)
    detection = audio_in.get("turn_detection")
    if isinstance(detection, Mapping) and detection.get("create_response", True):
        m.awaiting = True  # the server starts the turn's response itself
    return (change,)


def _on_transcription_failed(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item_id = event.get("item_id")
    if isinstance(item_id, str):
        m.transcribing.discard(item_id)
        m.note("input transcription failed for one item")
    return NOTHING


def _on_output_item(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item = event.get("item") or {}
    if isinstance(item.get("id"), str):
        m._outputs.add(item["id"])
        if event.get("response_id") == m.running:
            m.made[item["id"]] = item  # the latest form, for a response that never ends
    return NOTHING


def _on_item(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    # No ``previous_item_id`` at all: placed at the end (""); null: first (see `flush`).
    return m.add_input(event.get("item") or {}, event.get("previous_item_id", ""))


def _on_transcription(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item_id, text = event.get("item_id"), event.get("transcript")
    if not isinstance(item_id, str):
        return NOTHING
    m.transcribing.discard(item_id)
    changes: tuple[Change, ...] = ()
    if isinstance(text, str) and item_id in m._known:
        changes = (TranscriptArrived(item_id, text),)
    return changes + m.transcription_billed(item_id, event.get("usage"))


def _on_audio_delta(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item_id = event.get("item_id")
    if isinstance(item_id, str):
        size = base64_size(str(event.get("delta") or ""))
        before = m._audio_bytes.get(item_id, 0)
        m._audio_bytes[item_id] = None if size is None or before is None else before + size
    return NOTHING


def _on_response_created(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    m.awaiting = False
    m.flush()
    response = event.get("response") or {}
    m.requests.created(response)
    response_id = response.get("id")
    m.in_progress.add(str(response_id))
    if response.get("conversation_id", "") is not None:  # out-of-band ones run beside it
        m.running = response_id if isinstance(response_id, str) else None
        m.made = {}
    return NOTHING


def _on_deleted(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item_id = event.get("item_id")
    if not isinstance(item_id, str):
        return NOTHING
    if item_id in m._known:
        waiting = [n for n, (item, _) in enumerate(m._pending) if item.id == item_id]
        if waiting:
            del m._pending[waiting[0]]
            m._pending_tokens = None
        else:
            with contextlib.suppress(ServerModelError):  # already gone (truncated)
                m.server.delete_item(item_id)
    return (ItemDeleted(item_id),)


def _on_truncated(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    item_id, end = event.get("item_id"), event.get("audio_end_ms")
    if isinstance(item_id, str) and isinstance(end, int) and item_id in m._known:
        m.flush()
        try:
            m.server.truncate_item(item_id, end)
        except ServerModelError:
            m.note(f"conversation.item.truncated: could not truncate at {end} ms")
    return NOTHING


def _on_response_done(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    return (ResponseDone(m.response_done(event.get("response") or {})),)


def _on_error(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    m.awaiting = False  # a refused request starts no response
    error = event.get("error")
    m.requests.refused(error.get("event_id") if isinstance(error, Mapping) else None)
    return (ServerError(error if isinstance(error, Mapping) else {}),)


def _on_rate_limits(m: SessionMirror, event: Mapping[str, Any]) -> tuple[Change, ...]:
    limits = event.get("rate_limits")
    rows = tuple(r for r in limits if isinstance(r, Mapping)) if isinstance(limits, list) else ()
    return (RateLimits(rows),)


HANDLERS: dict[str, _Handler] = {
    "session.created": _on_session_created,
    "session.updated": _on_session_updated,
    "input_audio_buffer.speech_started": _on_speech,
    "input_audio_buffer.speech_stopped": _on_speech,
    "input_audio_buffer.committed": _on_committed,
    "response.output_item.added": _on_output_item,
    "response.output_item.done": _on_output_item,
    "conversation.item.added": _on_item,
    "conversation.item.created": _on_item,  # the beta name, still sent by Azure Voice Live
    "conversation.item.done": _on_item,
    "conversation.item.input_audio_transcription.completed": _on_transcription,
    "conversation.item.input_audio_transcription.failed": _on_transcription_failed,
    "response.output_audio.delta": _on_audio_delta,
    "response.audio.delta": _on_audio_delta,
    "response.created": _on_response_created,
    "conversation.item.deleted": _on_deleted,
    "conversation.item.truncated": _on_truncated,
    "response.done": _on_response_done,
    "error": _on_error,
    "rate_limits.updated": _on_rate_limits,
}
NO_DELTAS = {
    k: v
    for k, v in HANDLERS.items()
    if k not in ("response.output_audio.delta", "response.audio.delta")
}
