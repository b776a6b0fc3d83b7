"""The output events of a response, in the recorded order, streamed in stages.

A response's output item streams as: ``response.output_item.added`` (with
``conversation.item.added`` in band), for a message ``response.content_part.added``, the
deltas (transcript or text a word a delta, then the audio in `AUDIO_CHUNK_MS` chunks; for a
function call its arguments), then the closing events (``response.output_audio.done``, the
transcript's or text's ``done``, ``response.content_part.done``, ``conversation.item.done`` in
band, ``response.output_item.done``), ``response.done`` and ``rate_limits.updated``.

`OutputStreams` emits that in stages, so a response can stand still in progress (an
`ActiveResponse` holding at `Reply.pause_after_ms`) and end later, whole or cancelled.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..items import FunctionCall, Message
from ..server.usage import Usage
from ..wire import item_to_wire
from .base import ActiveResponse, SessionBase

__all__ = ["AUDIO_CHUNK_MS", "RATE_LIMIT_TOKENS", "OutputStreams", "pieces"]

RATE_LIMIT_TOKENS = 15_000_000
"""The tokens limit the recorded ``rate_limits.updated`` events show."""

AUDIO_CHUNK_MS = 250
"""Duration of each ``response.output_audio.delta``."""

_PIECE = re.compile(r"\s*[\w']+|\s*[^\w\s]+|\s+")


def pieces(text: str) -> list[str]:
    """`text` in the pieces the server streams it in, one per delta.

    A word (with its leading space) or a run of punctuation, as recorded ("Hello", ",", " my").

    >>> pieces("Hello, my friend.")
    ['Hello', ',', ' my', ' friend', '.']
    """
    return _PIECE.findall(text)


class OutputStreams(SessionBase):
    """`FakeSession`'s output events: a response's items, in stages, and its end."""

    def _where(self, active: ActiveResponse) -> dict[str, Any]:
        assert active.item.id is not None
        return {"response_id": active.response["id"], "item_id": active.item.id, "output_index": 0}

    def _open(self, active: ActiveResponse) -> list[dict[str, Any]]:
        """The output item begins: added (to the response, and in band to the conversation)."""
        active.opened = True
        item = active.item
        assert item.id is not None
        pending = item_to_wire(item, status="in_progress")
        if "content" in pending:
            pending["content"] = []
        else:
            pending["arguments"] = ""
        response_id = active.response["id"]
        events = [
            self._event(
                "response.output_item.added",
                response_id=response_id,
                output_index=0,
                item=copy.deepcopy(pending),
            )
        ]
        if active.in_band:
            self._items[item.id] = pending
            events.append(
                self._event(
                    "conversation.item.added",
                    previous_item_id=self._previous(item.id),
                    item=copy.deepcopy(pending),
                )
            )
        if isinstance(item, Message):
            kind, field_name = (
                ("audio", "transcript") if item.audio_ms is not None else ("text", "text")
            )
            events.append(
                self._event(
                    "response.content_part.added",
                    **self._where(active),
                    content_index=0,
                    part={"type": kind, field_name: ""},
                )
            )
        return events

    def _stream(self, active: ActiveResponse, to_end: bool) -> list[dict[str, Any]]:
        """The deltas from where the item stands to its end, or to its pause."""
        item = active.item
        audio_ms = item.audio_ms if isinstance(item, Message) else None
        target_ms = audio_ms or 0
        said = len(active.pieces)
        if not to_end and audio_ms and active.pause_ms is not None:
            target_ms = active.pause_ms
            said = len(active.pieces) * target_ms // audio_ms
        where = self._where(active)
        extra: dict[str, Any]
        if isinstance(item, FunctionCall):
            kind, extra = "response.function_call_arguments.delta", {"call_id": item.call_id}
        else:
            stream = "output_audio_transcript" if audio_ms is not None else "output_text"
            kind, extra = f"response.{stream}.delta", {"content_index": 0}
        events = [
            self._event(kind, **where, **extra, delta=piece)
            for piece in active.pieces[active.said : said]
        ]
        if audio_ms is not None and self.send_audio:
            part = {**where, "content_index": 0}
            events += [
                self._event(
                    "response.output_audio.delta",
                    **part,
                    delta=self._zeros(min(AUDIO_CHUNK_MS, target_ms - start)),
                )
                for start in range(active.at_ms, target_ms, AUDIO_CHUNK_MS)
            ]
        active.said, active.at_ms = said, target_ms
        return events

    def _close(
        self, active: ActiveResponse, final: FunctionCall | Message, status: str
    ) -> list[dict[str, Any]]:
        """The output item ends as `final` (the whole item, or what was made of it)."""
        where = self._where(active)
        wire = item_to_wire(final, status=status)
        events = []
        if isinstance(final, FunctionCall):
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **where,
                    call_id=final.call_id,
                    name=final.name,
                    arguments=final.arguments,
                )
            )
        else:
            part = {**where, "content_index": 0}
            if final.audio_ms is not None:
                kind, field_name, stream = "audio", "transcript", "output_audio_transcript"
                events.append(self._event("response.output_audio.done", **part))
            else:
                kind, field_name, stream = "text", "text", "output_text"
            events += [
                self._event(f"response.{stream}.done", **part, **{field_name: final.text}),
                self._event(
                    "response.content_part.done",
                    **part,
                    part={"type": kind, field_name: final.text},
                ),
            ]
        if active.in_band:
            assert final.id is not None
            self._items[final.id] = wire
            # Recorded order: conversation.item.done, then response.output_item.done.
            events.append(
                self._event(
                    "conversation.item.done",
                    previous_item_id=self._previous(final.id),
                    item=copy.deepcopy(wire),
                )
            )
        events.append(
            self._event(
                "response.output_item.done",
                response_id=where["response_id"],
                output_index=0,
                item=copy.deepcopy(wire),
            )
        )
        return events

    def _done(
        self,
        active: ActiveResponse,
        output: list[dict[str, Any]],
        usage: Usage,
        status: str,
        details: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        """``response.done`` (with the output and usage), then ``rate_limits.updated``."""
        response = active.response
        response.update(status=status, status_details=details, output=output, usage=usage.to_dict())
        # Recorded: rate_limits.updated follows response.done.
        limits = {
            "name": "tokens",
            "limit": RATE_LIMIT_TOKENS,
            "remaining": RATE_LIMIT_TOKENS - usage.total_tokens,
            "reset_seconds": 0.002,
        }
        return [
            self._event("response.done", response=copy.deepcopy(response)),
            self._event("rate_limits.updated", rate_limits=[limits]),
        ]
