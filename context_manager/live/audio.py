"""The user's own audio, kept per committed turn, so a new session can hear it again.

The Realtime API starts with input transcription off, and many agents leave it off: a user turn
is then an audio item with no text, and a seed of text would carry nothing of it. An
`AudioKeeper` follows the audio the application appends (``input_audio_buffer.append``) on the
session's input audio timeline, and when the server commits a user item it keeps that item's
audio: cut by the voice activity marks (``speech_started``'s ``audio_start_ms`` to
``speech_stopped``'s ``audio_end_ms``), or the whole buffer on a manual commit (push-to-talk).
A rollover seed then re-creates the most recent audio-only user turns as ``input_audio`` items
(`context_manager.rollover`).

Memory is bounded: at most `AudioKeeper.max_seconds` of kept turns (oldest evicted first) plus
the audio not yet committed (at most the same again). PCM16 at 24 kHz, the API's default input,
is 48,000 bytes a second: 2.88 MB per minute of speech; G.711 is 8,000 bytes a second.

>>> import base64
>>> keeper = AudioKeeper(max_seconds=60)
>>> keeper.appended(base64.b64encode(bytes(48_000)).decode())  # one second of PCM16
>>> keeper.committed("item_1", 200, 700)   # the VAD marks: half a second of speech
>>> len(keeper.audio("item_1")), keeper.pending_ms
(24000, 300.0)
"""

from __future__ import annotations

import base64
import binascii
import math
from collections import OrderedDict
from collections.abc import Mapping

from ..errors import ConfigurationError
from ..wire import bytes_per_ms

__all__ = ["AudioKeeper", "KeptAudio"]


class KeptAudio(bytes):
    """A committed turn's audio and its format (``audio/pcm``, ``audio/pcmu``, ``audio/pcma``)."""

    format: str

    def __new__(cls, data: bytes, audio_format: str) -> KeptAudio:
        kept = super().__new__(cls, data)
        kept.format = audio_format
        return kept

    @property
    def ms(self) -> int:
        """Its length in milliseconds."""
        return int(len(self) / bytes_per_ms(self.format))

    def b64(self) -> str:
        """As an ``input_audio`` part's ``audio`` field."""
        return base64.b64encode(self).decode("ascii")


class AudioKeeper:
    """Keeps the audio of each committed user turn within `max_seconds` (oldest go first).

    Feed it what the application appends (`appended`, `cleared`), the server's commits
    (`committed`, with the voice activity marks) and each new session (`new_session`);
    `rename` moves a turn to the key the call's history gives it.
    """

    def __init__(self, max_seconds: float = 120.0, audio_format: str = "audio/pcm") -> None:
        if not 0 <= max_seconds < math.inf:
            raise ConfigurationError(
                f"kept user audio must be a finite number of seconds >= 0, got {max_seconds}"
            )
        self.max_seconds = max_seconds
        self.format = audio_format
        self._kept: OrderedDict[str, KeptAudio] = OrderedDict()
        self._kept_bytes = 0
        self._kept_ms = 0
        self._stream = bytearray()  # appended this session and not yet committed
        self._stream_start_ms = 0.0  # where `_stream` starts on the session's timeline
        self.evicted = 0
        """Turns whose audio was let go to stay within `max_seconds`."""

    # ------------------------------------------------------------------ reading

    def audio(self, key: str) -> KeptAudio | None:
        """The kept audio of the turn `key` (``None``: never kept, or evicted)."""
        return self._kept.get(key)

    def snapshot(self) -> Mapping[str, KeptAudio]:
        """The kept turns now (a copy, safe to read in another thread)."""
        return dict(self._kept)

    @property
    def kept_seconds(self) -> float:
        """Seconds of audio kept, all turns together."""
        return self._kept_ms / 1000

    @property
    def kept_bytes(self) -> int:
        """Bytes of audio kept (committed turns only)."""
        return self._kept_bytes

    @property
    def pending_ms(self) -> float:
        """Audio appended and not yet committed, in milliseconds."""
        return len(self._stream) / bytes_per_ms(self.format)

    def __len__(self) -> int:
        return len(self._kept)

    # ------------------------------------------------------------------ following the session

    def new_session(self, audio_format: str | None = None) -> None:
        """A new session: its input audio timeline starts at 0 and its buffer empty."""
        self._stream.clear()
        self._stream_start_ms = 0.0
        if audio_format is not None:
            self.format = audio_format

    def set_format(self, audio_format: str) -> None:
        """The session's input format changed (audio appended from now on is in it)."""
        if audio_format != self.format:
            self._drop(len(self._stream))
            self.format = audio_format

    def appended(self, audio: object) -> None:
        """The application appended `audio` (base64) to the input buffer."""
        if not self.max_seconds or not isinstance(audio, str):
            return
        try:
            self._stream += base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            return  # the server refuses it too: nothing was appended
        # Uncommitted audio is bounded too: a turn longer than the budget keeps its end.
        excess = len(self._stream) - int(self.max_seconds * 1000 * bytes_per_ms(self.format))
        if excess > 0:
            self._drop(self._aligned(excess))

    def cleared(self) -> None:
        """The application cleared the input buffer."""
        self._drop(len(self._stream))

    def committed(self, key: str, start_ms: int | None, end_ms: int | None) -> None:
        """The server committed the buffer as the user item `key`.

        With voice activity marks the item's audio is `start_ms` to `end_ms` of the session's
        timeline, and what came before it is gone from the buffer; without them (a manual
        commit) it is the whole buffer.
        """
        if start_ms is None or end_ms is None:
            cut = (0, len(self._stream))
        else:
            cut = (self._offset(start_ms), self._offset(end_ms))
        audio = bytes(self._stream[cut[0] : cut[1]])
        self._drop(max(cut[1], 0))
        if audio and self.max_seconds:
            self.keep(key, audio)

    def keep(self, key: str, audio: bytes, audio_format: str | None = None) -> None:
        """Keep `audio` as the turn `key` (the newest), evicting the oldest beyond the budget."""
        kept = KeptAudio(audio, audio_format or self.format)
        old = self._kept.pop(key, None)
        if old is not None:
            self._kept_bytes -= len(old)
            self._kept_ms -= old.ms
        self._kept[key] = kept
        self._kept_bytes += len(kept)
        self._kept_ms += kept.ms
        while self._kept and self._kept_ms > self.max_seconds * 1000:
            _, gone = self._kept.popitem(last=False)
            self._kept_bytes -= len(gone)
            self._kept_ms -= gone.ms
            self.evicted += 1

    def rename(self, old: str, new: str) -> None:
        """The turn kept as `old` is known as `new` from now on (the history's key)."""
        if old == new or old not in self._kept:
            return
        audio = self._kept.pop(old)
        self._kept[new] = audio
        self._kept.move_to_end(new)

    # ------------------------------------------------------------------ the buffer

    def _offset(self, ms: float) -> int:
        """The byte in `_stream` at `ms` of the session's timeline (clamped to the stream)."""
        at = self._aligned(int((ms - self._stream_start_ms) * bytes_per_ms(self.format)))
        return min(max(at, 0), len(self._stream))

    def _aligned(self, size: int) -> int:
        width = 2 if self.format in ("audio/pcm", "pcm16") else 1  # G.711: a byte a sample
        return size // width * width

    def _drop(self, size: int) -> None:
        del self._stream[:size]
        self._stream_start_ms += size / bytes_per_ms(self.format)
