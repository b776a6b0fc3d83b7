"""The ``input_audio_buffer.*`` client events: user audio appended, committed, cleared.

With turn detection on (``server_vad``, as a session starts), the appended audio goes
through voice activity detection (`context_manager.testing.vad`): speech gives
``input_audio_buffer.speech_started`` (its ``item_id`` is the user item to come), the silence
after it ``speech_stopped``, then the turn's audio is committed (``committed``,
``conversation.item.added``/``.done``) and, with ``create_response``, a response starts. Speech
while a response is in progress cancels it when ``interrupt_response`` is on. With
``turn_detection: null`` (push-to-talk) the client commits by hand; a manual commit never
starts a response, as the SDK documents.

A committed item's audio is kept (``conversation.item.retrieve`` returns it) and heard
(`context_manager.testing.speech`): the responder gets its words; with input transcription
on, they are its transcript, sent as ``conversation.item.input_audio_transcription.delta``
and ``.completed`` events when the session's `TranscriptionTiming` says (``late`` by
default: after the response the turn started, as the real server's often come).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..items import Message
from ..wire import audio_ms_from_size, bytes_per_ms, item_to_wire
from .base import SessionBase
from .errors import _Reject, b64decode
from .replies import Transcriber
from .speech import FRAME_MS, hear, sample_width
from .streaming import pieces
from .vad import EnergyVad, VadSettings

__all__ = ["MIN_COMMIT_MS", "InputAudioHandlers"]

MIN_COMMIT_MS = 100
"""``input_audio_buffer.commit`` needs at least this much audio (the API's minimum)."""


class InputAudioHandlers(SessionBase):
    """`FakeSession`'s handlers of the ``input_audio_buffer.*`` client events."""

    transcriber: Transcriber | None
    _buffer: bytearray
    _buffer_start_ms: float  # where the buffer starts on the session's input audio timeline
    _vad: EnergyVad | None
    _speech: tuple[str, int] | None  # the user item being spoken, and where its audio starts

    def _buffer_ms(self) -> int:
        return audio_ms_from_size(len(self._buffer), self._audio_format("input"))

    def _sync_vad(self) -> None:
        """Follow the session's turn detection and input format (after ``session.update``)."""
        settings = VadSettings.of(self.session["audio"]["input"]["turn_detection"])
        audio_format = self._audio_format("input")
        current = self._vad
        if current is not None and (current.settings, current.audio_format) == (
            settings,
            audio_format,
        ):
            return
        self._speech = None
        if settings is None:
            self._vad = None
        else:
            end = self._buffer_start_ms + len(self._buffer) / bytes_per_ms(audio_format)
            self._vad = EnergyVad(settings, audio_format, origin_ms=end)

    def _buffer_append(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        audio = b64decode(event.get("audio"), "audio")
        self._buffer += audio
        if self._vad is None:
            return []  # the real server does not acknowledge appends
        events = []
        for mark in self._vad.feed(audio):
            if mark.kind == "started":
                events += self._speech_started(mark.ms)
            else:
                events += self._speech_stopped(mark.ms)
        if not self._vad.speaking:
            # No speech: only what a turn's padding could reach back to is kept, so the
            # buffer stays small however long the silence (VAD drops silent audio).
            audio_format = self._audio_format("input")
            keep_ms = self._vad.settings.prefix_padding_ms + 2 * FRAME_MS
            keep = int(keep_ms * bytes_per_ms(audio_format)) // sample_width(audio_format)
            keep *= sample_width(audio_format)
            if len(self._buffer) > keep:
                self._drop_buffer(len(self._buffer) - keep)
        return events

    def _buffer_clear(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._drop_buffer()
        return [self._event("input_audio_buffer.cleared")]

    def _drop_buffer(self, upto: int | None = None) -> bytes:
        """The buffer's first `upto` bytes (all by default), which leave it."""
        size = len(self._buffer) if upto is None else upto
        audio = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._buffer_start_ms += size / bytes_per_ms(self._audio_format("input"))
        if upto is None:
            self._speech = None
            if self._vad is not None:
                self._vad.reset(self._buffer_start_ms)
        return audio

    def _buffer_commit(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        ms = self._buffer_ms()
        if ms < MIN_COMMIT_MS:
            raise _Reject(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least"
                f" {MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
            )
        item_id = self._speech[0] if self._speech is not None else self._new_item_id()
        events = self._commit(self._drop_buffer(), item_id)
        return events + self._transcripts_unless_responding()

    def _speech_started(self, start_ms: int) -> list[dict[str, Any]]:
        item_id = self._new_item_id()
        self._speech = (item_id, start_ms)
        events = [
            self._event(
                "input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=item_id
            )
        ]
        vad = self.session["audio"]["input"]["turn_detection"]
        active = self._in_band_active()
        if active is not None and vad.get("interrupt_response", True):
            events += self._cancel(active, "turn_detected")
        return events

    def _speech_stopped(self, end_ms: int) -> list[dict[str, Any]]:
        assert self._speech is not None
        (item_id, start_ms), self._speech = self._speech, None
        events = [
            self._event("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)
        ]
        per_ms, width = (
            bytes_per_ms(self._audio_format("input")),
            sample_width(self._audio_format("input")),
        )
        start = int((start_ms - self._buffer_start_ms) * per_ms) // width * width
        end = int((end_ms - self._buffer_start_ms) * per_ms) // width * width
        self._drop_buffer(max(start, 0))  # before the turn (and its padding): not sent
        events += self._commit(self._drop_buffer(end - max(start, 0)), item_id)
        vad = self.session["audio"]["input"]["turn_detection"]
        if vad.get("create_response", True) and self._in_band_active() is None:
            events += self._respond({}, None)
        return events + self._transcripts_unless_responding()

    def _commit(self, audio: bytes, item_id: str) -> list[dict[str, Any]]:
        """`audio` becomes the user audio item `item_id`: the events, transcription held."""
        audio_format = self._audio_format("input")
        ms = audio_ms_from_size(len(audio), audio_format)
        # The user spoke for `ms` before the commit: that time passes first.
        self._advance(ms)
        words = self._heard[item_id] = hear(audio, audio_format)
        transcript = None
        if self.session["audio"]["input"]["transcription"] is not None:
            transcript = self.transcriber(audio) if self.transcriber else words
        previous = self.model.items[-1].id if self.model.items else None
        message = Message(role="user", text=transcript or "", audio_ms=ms, id=item_id)
        self.model.create_item(message)
        # The real server shows the transcript as null until transcription completes.
        content = [{"type": "input_audio", "transcript": None}]
        self._items[item_id] = {**item_to_wire(message, status="completed"), "content": content}
        self._audio[item_id] = audio
        events = [
            self._event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        ]
        events += self._added_done(item_id)
        if transcript is not None:
            self._pending_transcripts.append(
                (item_id, transcript, self._transcription(item_id, transcript, ms))
            )
            if self.transcription_timing == "early":
                events += self._take_transcripts()
        return events

    def _transcription(self, item_id: str, transcript: str, ms: int) -> list[dict[str, Any]]:
        """The transcription's deltas (as recorded, the first with a leading space), then done."""
        at = {"item_id": item_id, "content_index": 0}
        events = [
            self._event("conversation.item.input_audio_transcription.delta", **at, delta=piece)
            for piece in pieces(" " + transcript if transcript else "")
        ]
        events.append(
            self._event(
                "conversation.item.input_audio_transcription.completed",
                **at,
                transcript=transcript,
                usage={"type": "duration", "seconds": math.ceil(ms / 1000)},
            )
        )
        return events

    def _transcripts_unless_responding(self) -> list[dict[str, Any]]:
        """Transcriptions wait for the end of a response in progress; else they come now."""
        return [] if self._in_band_active() is not None else self._take_transcripts()
