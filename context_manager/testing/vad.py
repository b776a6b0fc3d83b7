"""Voice activity detection for the fake server: speech is loud audio, a turn ends in silence.

The real server runs a model; the fake measures energy, which is enough for audio made with
`context_manager.testing.say` (loud) and `silence` (zeros). Audio is cut into 10 ms frames;
a frame is voice when its level (its RMS amplitude over `VOICE_RMS`, at most 1) is above the
session's ``threshold`` (0.5 by default, so about -26 dBFS and louder is voice).

The marks are the real server's (as the SDK documents them):

* ``speech_started`` at the first voiced frame, its ``audio_start_ms`` moved back by
  ``prefix_padding_ms`` (not before the start of the input buffer);
* ``speech_stopped`` once ``silence_duration_ms`` of silence has followed the last voiced
  frame, its ``audio_end_ms`` being the end of that silence, so the turn's audio includes it.

Times are milliseconds since the session's first audio. ``semantic_vad`` is played by the same
detector: its silence is the longest wait its ``eagerness`` allows (8 s low, 4 s medium or
auto, 2 s high), since the fake cannot tell whether a sentence is finished.

>>> from context_manager.testing.speech import say, silence
>>> vad = EnergyVad(VadSettings())
>>> vad.feed(say("Hi there.", ms=600) + silence(700))
[Mark(kind='started', ms=0), Mark(kind='stopped', ms=800)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from ..wire import bytes_per_ms
from .speech import FRAME_MS, samples

__all__ = ["SEMANTIC_SILENCE_MS", "VOICE_RMS", "EnergyVad", "Mark", "VadSettings"]

VOICE_RMS = 0.1
"""RMS amplitude (full scale 1) of a frame at voice level 1."""

SEMANTIC_SILENCE_MS = {"low": 8000, "medium": 4000, "auto": 4000, "high": 2000}
"""The silence that ends a ``semantic_vad`` turn, by eagerness (the documented maxima)."""


@dataclass(frozen=True, slots=True)
class VadSettings:
    """What the detector needs of a session's ``turn_detection``."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 200

    @classmethod
    def of(cls, turn_detection: Mapping[str, Any] | None) -> VadSettings | None:
        """The settings of a session's ``turn_detection`` object (``None``: no detection)."""
        if turn_detection is None:
            return None
        if turn_detection["type"] == "semantic_vad":
            eagerness = turn_detection.get("eagerness") or "auto"
            return cls(silence_duration_ms=SEMANTIC_SILENCE_MS[eagerness])
        return cls(
            threshold=float(turn_detection["threshold"]),
            prefix_padding_ms=int(turn_detection["prefix_padding_ms"]),
            silence_duration_ms=int(turn_detection["silence_duration_ms"]),
        )


class Mark(NamedTuple):
    """A change the detector heard: speech started or stopped, at `ms`."""

    kind: Literal["started", "stopped"]
    ms: int


class EnergyVad:
    """Finds turns in the audio fed to it, frame by frame (see the module).

    Args:
        settings: threshold, prefix padding and silence duration.
        audio_format: the input audio format.
        origin_ms: where the audio fed next starts on the session's input timeline.
    """

    def __init__(
        self, settings: VadSettings, audio_format: str = "audio/pcm", origin_ms: float = 0.0
    ) -> None:
        self.settings = settings
        self.audio_format = audio_format
        self._frame = int(FRAME_MS * bytes_per_ms(audio_format))
        self._rest = b""
        self._pos = origin_ms  # start of the next whole frame
        self._floor = origin_ms  # start of the input buffer: no speech starts before it
        self.speaking = False
        self._last_voice_end = 0.0

    def reset(self, at_ms: float) -> None:
        """Forget any speech in progress: the audio fed next starts at `at_ms` (after a commit)."""
        self._rest = b""
        self._pos = self._floor = at_ms
        self.speaking = False

    def feed(self, audio: bytes) -> list[Mark]:
        """The marks in `audio`, which follows what was fed before."""
        data = self._rest + audio
        whole = len(data) // self._frame * self._frame
        self._rest = data[whole:]
        if not whole:
            return []
        frames = samples(data[:whole], self.audio_format).reshape(whole // self._frame, -1)
        levels = np.minimum(np.sqrt(np.mean(frames**2, axis=1)) / VOICE_RMS, 1.0)
        marks = []
        settings = self.settings
        for voiced in levels > settings.threshold:
            start, end = self._pos, self._pos + FRAME_MS
            self._pos = end
            if voiced:
                if not self.speaking:
                    self.speaking = True
                    at = max(self._floor, start - settings.prefix_padding_ms)
                    marks.append(Mark("started", int(at)))
                self._last_voice_end = end
            elif self.speaking and end - self._last_voice_end >= settings.silence_duration_ms:
                self.speaking = False
                stop = self._last_voice_end + settings.silence_duration_ms
                self._floor = stop
                marks.append(Mark("stopped", int(stop)))
        return marks
