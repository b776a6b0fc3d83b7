"""The ``response.*`` client events: a response is created, run and done in one go.

The responder gives the reply; the `ServerModel` gives the truncation, the cache and the
usage; `ResponseHandlers` stream the reply in the recorded event order (``response.created``,
each output item's ``added``/deltas/``done``, ``response.done``, ``rate_limits.updated``).
Output items are `context_manager.wire`'s item objects with ``status: "completed"``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ContextOverflowError
from ..items import FunctionCall, Item, Message
from ..server.model import ManualClock, ServerModel
from ..wire import item_to_wire
from .base import SessionBase
from .errors import _Reject, invalid
from .replies import Reply, Responder

__all__ = ["AUDIO_CHUNK_MS", "RATE_LIMIT_TOKENS", "ResponseHandlers"]

RATE_LIMIT_TOKENS = 15_000_000
"""The tokens limit the recorded ``rate_limits.updated`` events show."""

AUDIO_CHUNK_MS = 250
"""Duration of each ``response.output_audio.delta``."""

_PIECE = re.compile(r"\s*[\w']+|\s*[^\w\s]+|\s+")


def _pieces(text: str) -> list[str]:
    """`text` in the pieces the server streams it in, one per delta.

    A word (with its leading space) or a run of punctuation, as recorded ("Hello", ",", " my").

    >>> _pieces("Hello, my friend.")
    ['Hello', ',', ' my', ' friend', '.']
    """
    return _PIECE.findall(text)


class ResponseHandlers(SessionBase):
    """`FakeSession`'s handlers of ``response.create`` and ``response.cancel``."""

    responder: Responder

    def _response_cancel(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        # Fake responses complete as they are created: none is ever in progress.
        raise _Reject(
            "response_cancel_not_active", "Cancellation failed: no active response found."
        )

    def _response_create(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        params = event.get("response") or {}
        if not isinstance(params, Mapping):
            raise invalid("response", params, "expected an object")
        client_id = event.get("event_id")
        return self._respond(params, client_id if isinstance(client_id, str) else None)

    def _respond(self, params: Mapping[str, Any], client_id: str | None) -> list[dict[str, Any]]:
        conversation = params.get("conversation", "auto")
        if conversation not in ("auto", "none"):
            raise invalid("response.conversation", conversation, "expected 'auto' or 'none'")
        if "input" in params:
            raise _Reject(
                "unsupported_by_fake",
                "The fake server does not model a custom response input.",
                "response.input",
            )
        modalities = params.get("output_modalities", self.session["output_modalities"])
        if modalities not in (["audio"], ["text"]):
            raise invalid(
                "response.output_modalities", modalities, "expected ['audio'] or ['text']"
            )
        out_of_band = conversation == "none"
        model = self.model
        if out_of_band:
            if not isinstance(self.clock, ManualClock):
                raise _Reject(
                    "unsupported_by_fake",
                    "Out-of-band responses need the fake server to run on a ManualClock.",
                    "response.conversation",
                )
            model = self.model.fork()
        response = self._response_object(params, modalities, out_of_band)
        try:
            dropped = set(model.preview_truncation())
        except ContextOverflowError:
            return self._failed(model, response)
        # The reply comes before any event, so a failing responder leaves no response begun.
        reply = self.responder([i for i in model.items if i.id not in dropped])
        outputs = self._outputs(reply, modalities)
        result = model.create_response(outputs)
        # Items the truncation dropped (result.dropped_items) get no event: the real server
        # sends none (spec §2.2 "Server events on truncation", §10.5), so neither does the fake.
        events = [self._event("response.created", response=copy.deepcopy(response))]
        done_items = []
        for index, item in enumerate(outputs):
            assert item.id is not None
            wire = item_to_wire(item, status="completed")
            if not out_of_band:
                self._items[item.id] = wire
            events += self._output_events(response["id"], index, item, wire, out_of_band)
            done_items.append(copy.deepcopy(wire))
        response.update(status="completed", output=done_items, usage=result.usage.to_dict())
        events.append(self._event("response.done", response=response))
        # Recorded: rate_limits.updated follows response.done.
        remaining = RATE_LIMIT_TOKENS - result.usage.total_tokens
        events.append(
            self._event(
                "rate_limits.updated",
                rate_limits=[
                    {
                        "name": "tokens",
                        "limit": RATE_LIMIT_TOKENS,
                        "remaining": remaining,
                        "reset_seconds": 0.002,
                    }
                ],
            )
        )
        # The assistant speaks its answer: that time passes.
        self._advance(sum(i.audio_ms or 0 for i in outputs if isinstance(i, Message)))
        return events

    def _response_object(
        self, params: Mapping[str, Any], modalities: Sequence[str], out_of_band: bool
    ) -> dict[str, Any]:
        """The response as ``response.created`` shows it (in progress, no output yet)."""
        output_audio = self.session["audio"]["output"]
        return {
            "object": "realtime.response",
            "id": self._new_id("resp"),
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": None if out_of_band else self.conversation_id,
            "output_modalities": list(modalities),
            "max_output_tokens": params.get("max_output_tokens", self.session["max_output_tokens"]),
            "audio": {
                "output": {"format": dict(output_audio["format"]), "voice": output_audio["voice"]}
            },
            "usage": None,
            "metadata": params.get("metadata"),
        }

    def _failed(self, model: ServerModel, response: dict[str, Any]) -> list[dict[str, Any]]:
        """An overflow with truncation disabled: a failed response and an error."""
        result = model.create_response([])
        assert result.error is not None
        error = result.error["error"]
        events = [self._event("response.created", response=copy.deepcopy(response))]
        response.update(
            status="failed",
            status_details={
                "type": "failed",
                "reason": None,
                "error": {
                    "type": error["type"],
                    "code": error["code"],
                    "message": error["message"],
                },
            },
            usage=result.usage.to_dict(),
        )
        events.append(self._event("response.done", response=response))
        events.append(self.error_event(error["code"], error["message"], param=error["param"]))
        return events

    def _outputs(self, reply: Reply, modalities: Sequence[str]) -> list[Item]:
        item_id = self._new_item_id()
        if reply.function_call is not None:
            name, arguments = reply.function_call
            call_id = self._new_id("call")
            return [FunctionCall(name=name, call_id=call_id, arguments=arguments, id=item_id)]
        audio_ms = reply.audio_ms if list(modalities) == ["audio"] else None
        return [Message(role="assistant", text=reply.text, audio_ms=audio_ms, id=item_id)]

    def _output_events(
        self, response_id: str, index: int, item: Item, wire: dict[str, Any], out_of_band: bool
    ) -> list[dict[str, Any]]:
        assert item.id is not None
        pending = copy.deepcopy(wire)
        pending["status"] = "in_progress"
        if "content" in pending:
            pending["content"] = []
        else:
            pending["arguments"] = ""
        at = {"response_id": response_id, "item_id": item.id, "output_index": index}
        previous = None if out_of_band else self._previous(item.id)
        events = [
            self._event(
                "response.output_item.added",
                response_id=response_id,
                output_index=index,
                item=pending,
            )
        ]
        if not out_of_band:
            events.append(
                self._event(
                    "conversation.item.added",
                    previous_item_id=previous,
                    item=copy.deepcopy(pending),
                )
            )
        if isinstance(item, FunctionCall):
            events += self._call_events(at, item)
        else:
            assert isinstance(item, Message)
            events += self._content_events({**at, "content_index": 0}, item)
        # Recorded order: conversation.item.done, then response.output_item.done.
        if not out_of_band:
            events.append(
                self._event(
                    "conversation.item.done", previous_item_id=previous, item=copy.deepcopy(wire)
                )
            )
        events.append(
            self._event(
                "response.output_item.done",
                response_id=response_id,
                output_index=index,
                item=copy.deepcopy(wire),
            )
        )
        return events

    def _call_events(self, at: dict[str, Any], item: FunctionCall) -> list[dict[str, Any]]:
        """A function call's arguments, streamed a piece a delta."""
        call = {**at, "call_id": item.call_id}
        return [
            *(
                self._event("response.function_call_arguments.delta", **call, delta=piece)
                for piece in _pieces(item.arguments)
            ),
            self._event(
                "response.function_call_arguments.done",
                **call,
                name=item.name,
                arguments=item.arguments,
            ),
        ]

    def _content_events(self, part: dict[str, Any], item: Message) -> list[dict[str, Any]]:
        """One content part: audio (with its transcript) or text, streamed a piece a delta."""
        audio = item.audio_ms is not None
        if audio:
            kind, field_name, stream = "audio", "transcript", "output_audio_transcript"
        else:
            kind, field_name, stream = "text", "text", "output_text"
        events = [
            self._event("response.content_part.added", **part, part={"type": kind, field_name: ""})
        ]
        events += [
            self._event(f"response.{stream}.delta", **part, delta=piece)
            for piece in _pieces(item.text)
        ]
        if item.audio_ms is not None and self.send_audio:
            events += [
                self._event("response.output_audio.delta", **part, delta=chunk)
                for chunk in self._chunks(item.audio_ms)
            ]
        if audio:
            events.append(self._event("response.output_audio.done", **part))
        events += [
            self._event(f"response.{stream}.done", **part, **{field_name: item.text}),
            self._event(
                "response.content_part.done", **part, part={"type": kind, field_name: item.text}
            ),
        ]
        return events

    def _chunks(self, ms: int) -> list[str]:
        """`ms` of silent output audio, in `AUDIO_CHUNK_MS` chunks of base64."""
        return [
            self._zeros(min(AUDIO_CHUNK_MS, ms - start)) for start in range(0, ms, AUDIO_CHUNK_MS)
        ]
