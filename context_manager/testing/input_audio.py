"""The ``input_audio_buffer.*`` client events: user audio appended, committed, cleared.

A commit makes the buffer a user audio message (transcribed if the session asked for it) and,
under server voice activity detection, starts a response, as the real server does when it
hears the user stop. The audio's length is measured at the session's input format
(`context_manager.wire`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..items import Message
from ..wire import audio_ms_from_size, item_to_wire
from .base import SessionBase
from .errors import _Reject, b64decode
from .replies import Transcriber

__all__ = ["MIN_COMMIT_MS", "InputAudioHandlers"]

MIN_COMMIT_MS = 100
"""``input_audio_buffer.commit`` needs at least this much audio (spec §3)."""


class InputAudioHandlers(SessionBase):
    """`FakeSession`'s handlers of the ``input_audio_buffer.*`` client events."""

    transcriber: Transcriber | None
    _buffer: bytearray
    _buffer_start_ms: int  # where the buffer starts on the session's input audio timeline

    def _buffer_ms(self) -> int:
        return audio_ms_from_size(len(self._buffer), self._audio_format("input"))

    def _buffer_append(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._buffer += b64decode(event.get("audio"), "audio")
        return []  # the real server does not acknowledge appends

    def _buffer_clear(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._buffer_start_ms += self._buffer_ms()
        self._buffer.clear()
        return [self._event("input_audio_buffer.cleared")]

    def _buffer_commit(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        ms = self._buffer_ms()
        if ms < MIN_COMMIT_MS:
            raise _Reject(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least"
                f" {MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
            )
        audio = bytes(self._buffer)
        # The user spoke for `ms` before the commit: that time passes first.
        self._advance(ms)
        settings = self.session["audio"]["input"]
        transcript = None
        if settings["transcription"] is not None:
            transcript = self.transcriber(audio) if self.transcriber else f"({ms} ms of speech)"
        item_id = self._new_item_id()
        previous = self.model.items[-1].id if self.model.items else None
        message = Message(role="user", text=transcript or "", audio_ms=ms, id=item_id)
        self.model.create_item(message)
        self._buffer.clear()
        start, self._buffer_start_ms = self._buffer_start_ms, self._buffer_start_ms + ms
        # The real server shows the transcript as null until transcription completes.
        content = [{"type": "input_audio", "transcript": None}]
        self._items[item_id] = {**item_to_wire(message, status="completed"), "content": content}
        self._audio[item_id] = audio
        events = []
        vad = settings["turn_detection"]
        if vad is not None:
            # A commit stands for the end of speech that voice activity detection would find.
            events += [
                self._event(
                    "input_audio_buffer.speech_started", audio_start_ms=start, item_id=item_id
                ),
                self._event(
                    "input_audio_buffer.speech_stopped", audio_end_ms=start + ms, item_id=item_id
                ),
            ]
        events.append(
            self._event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        )
        events += self._added_done(item_id)
        if transcript is not None:
            self._items[item_id]["content"][0]["transcript"] = transcript
            events.append(
                self._event(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=item_id,
                    content_index=0,
                    transcript=transcript,
                    usage={"type": "duration", "seconds": math.ceil(ms / 1000)},
                )
            )
        if vad is not None and vad.get("create_response", True):
            events += self._respond({}, None)
        return events
