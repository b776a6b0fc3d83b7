"""A fake OpenAI Realtime server, for testing realtime agents offline.

Point the real ``openai`` client at `FakeRealtimeServer` and an agent runs end to end, with
no network, no API key and no cost: the server speaks the GA Realtime protocol over a local
WebSocket (127.0.0.1 only) and answers with the events, item shapes and ``response.done``
usage the real server sends, as recorded in real sessions (``tests/data/realtime-logs``).

A session starts as a real one: server voice activity detection on (`vad`: the appended
audio's energy marks the turns, which commit themselves and start a response), input
transcription off. `say` makes user audio the fake "hears" as given words (`speech`): the
responder gets them, transcription gives them, and they survive re-sending the audio. A
`Reply` can hold its response in progress (`Reply.pause_after_ms`) for the client to cancel
it or the user to interrupt it.

What the fake model says comes from a *responder* (`echo_responder` by default, `scripted` for
a fixed list of replies, or any function of the conversation). Everything else comes from the
library's `ServerModel`: the conversation, truncation, the prompt cache (one cache shared by
all the server's sessions, scoped as the profile says, so a second session can hit the cache of
the first, as recorded) and the usage of every response. Time is a virtual clock (a
`ManualClock` by default): user audio and the assistant's speech move it forward, a test can
move it too, and a session ends at the provider's maximum (60 minutes on OpenAI, 30 on Azure)
with the real server's ``session_expired`` error and a close 1001. `FakeRealtimeServer.drop`
cuts every connection abruptly, to test reconnection.

`FakeSession` is the same server without sockets: client events in, server events out.

The modules: `replies` (what the fake model says), `speech` and `vad` (what it hears),
`session` (`FakeSession`, assembled from `conversation`, `input_audio` and `responses`, with
`streaming` for output events, `requests` for response parameters and out-of-band requests,
`config` for ``session.update`` and `errors` for refusals) and `server`
(`FakeRealtimeServer`); `remote` runs that server in a process of its own (on a
`SharedClock`) and `faults` injects drops, expiries and failing writes into a call. Item
objects and audio lengths are `context_manager.wire`'s.

Examples:
    >>> session = FakeSession(responder=scripted([Reply("Hi there!", audio_ms=750)]))
    >>> [e["type"] for e in session.opening()]
    ['session.created']
    >>> events = session.receive({"type": "session.update", "session": {
    ...     "type": "realtime", "instructions": "Answer in two or three words."}})
    >>> events = session.receive({"type": "conversation.item.create", "item": {
    ...     "type": "message", "role": "user",
    ...     "content": [{"type": "input_text", "text": "Say a short greeting."}]}})
    >>> [e["type"] for e in events]
    ['conversation.item.added', 'conversation.item.done']
    >>> done = session.receive({"type": "response.create"})[-2]
    >>> done["type"], done["response"]["usage"]["input_tokens"]
    ('response.done', 16)
    >>> done["response"]["usage"]["output_token_details"]
    {'text_tokens': 3, 'audio_tokens': 15}
"""

from __future__ import annotations

from ..errors import ScriptExhaustedError
from .config import DEFAULT_INSTRUCTIONS
from .replies import (
    MS_PER_WORD,
    Reply,
    Responder,
    ScriptedResponder,
    ScriptedSummarizer,
    Transcriber,
    echo_responder,
    scripted,
    speech_ms,
)
from .server import FakeRealtimeServer
from .session import FakeSession
from .speech import hear, say, silence

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "MS_PER_WORD",
    "FakeRealtimeServer",
    "FakeSession",
    "Reply",
    "Responder",
    "ScriptExhaustedError",
    "ScriptedResponder",
    "ScriptedSummarizer",
    "Transcriber",
    "echo_responder",
    "hear",
    "say",
    "scripted",
    "silence",
    "speech_ms",
]
