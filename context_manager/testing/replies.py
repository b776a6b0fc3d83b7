"""What the fake model says: `Reply`, and the responders that give one per response.

A *responder* is any function of the conversation a response sees that returns a `Reply`.
It plays the model, which hears user audio: a user audio message reaches it with the words
the fake heard in the audio as its text (`context_manager.testing.say`), whether or not the
session transcribes. Responders:
`echo_responder` (the default) answers the latest user message, `scripted` gives a fixed list
of replies in order. `ScriptedSummarizer` plays the same part for compaction's summarizer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..errors import ConfigurationError, ScriptExhaustedError
from ..items import FunctionCallOutput, Item, Message

__all__ = [
    "MS_PER_WORD",
    "Reply",
    "Responder",
    "ScriptedResponder",
    "ScriptedSummarizer",
    "Transcriber",
    "echo_responder",
    "scripted",
    "speech_ms",
]

MS_PER_WORD = 400
"""Milliseconds of speech per word for `Reply.speech` and `echo_responder`."""


def speech_ms(text: str, *, ms_per_word: int = MS_PER_WORD) -> int:
    """A plausible duration for speaking `text`: `ms_per_word` per word (one word at least).

    >>> speech_ms("Hi there!")
    800
    """
    return max(1, len(text.split())) * ms_per_word


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model answers to one ``response.create``.

    * ``Reply("text")``: a text output item (``output_text``);
    * ``Reply("text", audio_ms=1200)``: an assistant audio item whose transcript is ``text``
      (in a session whose ``output_modalities`` is ``["text"]`` it becomes a text item);
    * ``Reply(function_call=("name", '{"json": "arguments"}'))``: a single ``function_call``
      item with a fresh ``call_id``.

    `pause_after_ms` holds the response in progress, as a real one is while the model
    generates: ``0`` right after ``response.created``; for a spoken reply, ``N`` once ``N`` ms
    of its audio (and the transcript words up to there) are out. It then waits for the
    client's ``response.cancel``, the user's speech (server VAD cancels it, reason
    ``turn_detected``) or the test's `FakeSession.resume`.
    """

    text: str = ""
    """The text, or the transcript of the audio."""
    audio_ms: int | None = None
    """Duration of the spoken answer; ``None`` for a text answer."""
    function_call: tuple[str, str] | None = None
    """``(name, arguments)`` of a tool call, the arguments a JSON string."""
    pause_after_ms: int | None = None
    """Hold the response in progress there (see the class); ``None`` runs it to the end."""

    def __post_init__(self) -> None:
        if self.audio_ms is not None and self.audio_ms < 0:
            raise ValueError(f"audio_ms must be >= 0, got {self.audio_ms}")
        if self.function_call is not None and (self.text or self.audio_ms is not None):
            raise ValueError("a function call reply carries no text or audio")
        pause, limit = self.pause_after_ms, self.audio_ms or 0
        if pause is not None and not 0 <= pause <= limit:
            raise ValueError(
                f"pause_after_ms must be from 0 to the audio's {limit} ms, got {pause}"
            )

    @classmethod
    def speech(
        cls, text: str, *, ms_per_word: int = MS_PER_WORD, pause_after_ms: int | None = None
    ) -> Reply:
        """A spoken reply whose duration follows from its words (`speech_ms`)."""
        audio_ms = speech_ms(text, ms_per_word=ms_per_word)
        return cls(text, audio_ms=audio_ms, pause_after_ms=pause_after_ms)

    @classmethod
    def call(cls, name: str, arguments: str | Mapping[str, Any] = "{}") -> Reply:
        """A tool call; `arguments` is a JSON string or a mapping to encode."""
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return cls(function_call=(name, args))


Responder: TypeAlias = Callable[[Sequence[Item]], Reply]
"""Gives the fake model's reply from the conversation the response sees (after truncation)."""

Transcriber: TypeAlias = Callable[[bytes], str]
"""Gives the transcript of committed user audio (the raw bytes in the session's format),
instead of the words the fake hears in it (`context_manager.testing.say`)."""


def echo_responder(items: Sequence[Item]) -> Reply:
    """The default responder: deterministic and spoken.

    It answers the latest user message with ``"You said: <its text>"``, or, when a tool's
    output came after it, with ``"The tool says: <output>"``; the audio lasts `speech_ms`.

    >>> echo_responder([Message(role="user", text="Hello")])
    Reply(text='You said: Hello', audio_ms=1200, function_call=None, pause_after_ms=None)
    """
    for item in reversed(items):
        if isinstance(item, FunctionCallOutput):
            return Reply.speech(f"The tool says: {item.output}")
        if isinstance(item, Message) and item.role == "user":
            return Reply.speech(f"You said: {item.text or '(inaudible)'}")
    return Reply.speech("Hello! How can I help?")


class ScriptedResponder:
    """Replies from a fixed list, in order (see `scripted`)."""

    def __init__(self, replies: Iterable[Reply | str]) -> None:
        self._replies = [Reply.speech(r) if isinstance(r, str) else r for r in replies]
        self._used = 0

    @property
    def remaining(self) -> int:
        """Replies not yet given."""
        return len(self._replies) - self._used

    def __call__(self, items: Sequence[Item]) -> Reply:
        if self._used >= len(self._replies):
            raise ScriptExhaustedError(
                f"the scripted responder has no reply left: all {len(self._replies)} were"
                f" used, and response #{self._used + 1} asked for another"
            )
        self._used += 1
        return self._replies[self._used - 1]


def scripted(replies: Iterable[Reply | str]) -> ScriptedResponder:
    """A responder that gives `replies` in order; a string is a spoken reply (`Reply.speech`).

    Asking for more replies than given raises `ScriptExhaustedError`.

    >>> answer = scripted(["Hello!", Reply("Done.")])
    >>> answer([]).audio_ms, answer([]).text
    (400, 'Done.')
    """
    return ScriptedResponder(replies)


@dataclass
class ScriptedSummarizer:
    """A summarizer that returns given summaries in order, and records what it was asked.

    For testing compaction without a model: each call returns the next text (the last one
    again once they run out), as given whatever the budget; `calls` records each call's items,
    budget and previous summary for the test to check.

    Examples:
        >>> summarizer = ScriptedSummarizer(["The user booked Oslo."])
        >>> summarizer.summarize([Message(role="user", text="Book Oslo.")], budget_tokens=64)
        'The user booked Oslo.'
        >>> summarizer.calls[0][1:]
        (64, None)
    """

    texts: Sequence[str]
    calls: list[tuple[tuple[Item, ...], int, str | None]] = field(default_factory=list)

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        """The next scripted summary (see the class)."""
        if not self.texts:
            raise ConfigurationError("a ScriptedSummarizer needs at least one text")
        text = self.texts[min(len(self.calls), len(self.texts) - 1)]
        self.calls.append((tuple(items), budget_tokens, previous))
        return text
