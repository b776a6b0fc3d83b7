"""What the fake server hears: spoken clips that carry their words, and silence.

A test cannot feed the fake real speech and expect it understood, so `say` makes audio that
stands for words: loud enough for voice activity detection, and stamped every 10 ms with the
id of its words. The fake hears those words wherever the bytes go: in the input buffer, in
the committed user item, in ``conversation.item.retrieve``'s answer, and in a
``conversation.item.create`` that re-sends the audio in another session. `hear` reads them
back. The words are kept in a process-wide registry (the stamp is a hash of the words), so
the same words always give the same bytes.

Audio is in a Realtime input format: ``audio/pcm`` (PCM16, 24 kHz, mono, little-endian) or
G.711 (``audio/pcmu``, ``audio/pcma``, 8 kHz). `samples` decodes any of them, for the
energy-based voice activity detection of `context_manager.testing.vad`.

>>> clip = say("Book a table for two.", ms=1200)
>>> len(clip)  # 1,200 ms of PCM16 at 24 kHz
57600
>>> hear(silence(300) + clip + silence(500))
'Book a table for two.'
>>> hear(silence(300))
''
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from ..wire import bytes_per_ms
from .replies import speech_ms

__all__ = ["FRAME_MS", "hear", "sample_width", "samples", "say", "silence"]

FRAME_MS = 10
"""A clip is stamped once per frame of this many milliseconds (also the VAD's frame)."""

_LEVEL = 8000  # amplitude of a clip's voiced samples (about -12 dBFS)
_MAGIC = b"\xc7\x3a\x9e\x51"  # starts each stamp: magic, 4-byte words id, 2-byte frame index
_STAMP = len(_MAGIC) + 6
_CLIPS: dict[bytes, str] = {}  # words id -> words, for every clip said in this process


def _mulaw(code: NDArray[np.int32]) -> NDArray[np.int32]:
    u = ~code & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)
    return np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)


def _alaw(code: NDArray[np.int32]) -> NDArray[np.int32]:
    a = code ^ 0x55
    exponent, mantissa = (a >> 4) & 7, a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude)


_CODES = np.arange(256, dtype=np.int32)
_G711 = {"audio/pcmu": _mulaw(_CODES), "audio/pcma": _alaw(_CODES)}  # code -> PCM16 value


def _g711_code(table: NDArray[np.int32], value: int) -> int:
    """The code whose sound is nearest `value`."""
    return int(np.argmin(np.abs(table - value)))


def sample_width(audio_format: str) -> int:
    """Bytes of one sample: 2 for PCM16, 1 for G.711."""
    return 2 if audio_format == "audio/pcm" else 1


def samples(audio: bytes, audio_format: str = "audio/pcm") -> NDArray[np.float64]:
    r"""The audio's samples in [-1, 1] (a trailing odd byte of PCM16 is left out).

    >>> samples(b"\x00\x40\x00\xc0").tolist()
    [0.5, -0.5]
    """
    if audio_format == "audio/pcm":
        pcm = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2").astype(np.float64)
    else:
        pcm = _G711[audio_format][np.frombuffer(audio, dtype=np.uint8)].astype(np.float64)
    return pcm / 32768.0


def silence(ms: int, audio_format: str = "audio/pcm") -> bytes:
    """`ms` of digital silence in `audio_format` (G.711 has its own code for zero)."""
    size = int(ms * bytes_per_ms(audio_format))
    if audio_format == "audio/pcm":
        return bytes(size)
    return bytes([_g711_code(_G711[audio_format], 0)]) * size


def _voiced(size: int, audio_format: str) -> bytes:
    """`size` bytes of loud filler (a square wave at `_LEVEL`) that holds no stamp."""
    if audio_format == "audio/pcm":
        pair = np.array([_LEVEL, -_LEVEL], dtype="<i2").tobytes()
    else:
        table = _G711[audio_format]
        pair = bytes([_g711_code(table, _LEVEL), _g711_code(table, -_LEVEL)])
    return (pair * (size // len(pair) + 1))[:size]


def say(words: str, ms: int | None = None, *, audio_format: str = "audio/pcm") -> bytes:
    """Audio of a user saying `words`, which the fake server hears as those words.

    Args:
        words: what the clip says (the transcript, when the session transcribes).
        ms: its duration; by default 400 ms a word (`context_manager.testing.speech_ms`).
        audio_format: ``audio/pcm`` (the default), ``audio/pcmu`` or ``audio/pcma``.

    Every frame is voice (no pause inside a clip): voice activity detection finds one turn
    in it, however long. Append `silence` after it for the server to hear the turn end.

    Raises:
        ValueError: no words, or a duration under one frame.
    """
    if not words.strip():
        raise ValueError("say() needs words")
    duration = speech_ms(words) if ms is None else ms
    if duration < FRAME_MS:
        raise ValueError(f"a clip lasts at least {FRAME_MS} ms, got {duration}")
    words_id = hashlib.sha256(words.encode()).digest()[:4]
    _CLIPS[words_id] = words
    frame = int(FRAME_MS * bytes_per_ms(audio_format))
    total = int(duration * bytes_per_ms(audio_format))
    out = bytearray(_voiced(total, audio_format))
    for index, start in enumerate(range(0, total, frame)):
        if start + _STAMP <= total:
            stamp = _MAGIC + words_id + (index % 65536).to_bytes(2, "little")
            out[start : start + _STAMP] = stamp
    return bytes(out)


def hear(audio: bytes, audio_format: str = "audio/pcm") -> str:
    """The words said in `audio` (clips made by `say`), in order; ``""`` for none.

    A clip counts whole when any of its frames is there. The same clip said twice in a row
    is heard twice. `audio_format` is accepted for symmetry: the stamps read the same in
    every format.
    """
    del audio_format
    heard: list[str] = []
    last: tuple[bytes, int] | None = None
    at = audio.find(_MAGIC)
    while at >= 0 and at + _STAMP <= len(audio):
        words_id = audio[at + 4 : at + 8]
        index = int.from_bytes(audio[at + 8 : at + 10], "little")
        if words_id in _CLIPS and (last is None or last[0] != words_id or index <= last[1]):
            heard.append(_CLIPS[words_id])
        last = (words_id, index)
        at = audio.find(_MAGIC, at + _STAMP)
    return " ".join(heard)
