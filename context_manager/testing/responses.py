"""The ``response.*`` client events: responses created, run, held, resumed and cancelled.

The responder gives the reply; the `ServerModel` gives the truncation, the cache and the
usage (of the request when the response is created; a cancelled response's output is what
was made of it). A response runs to its end at once, unless its `Reply` pauses it: it then
stays in progress until the client's ``response.cancel``, the user's speech (server VAD,
``interrupt_response``) or `FakeSession.resume`. One response at a time may be in progress in
the conversation, as on the real server; out-of-band ones (``conversation: "none"``) run
beside it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import (
    BudgetExceededError,
    ConfigurationError,
    ContextOverflowError,
    ServerModelError,
)
from ..items import FunctionCall, Item, Message
from ..server.model import ServerModel
from ..server.request import ResponseParams
from ..server.usage import Usage
from ..tokens import ModalityTokens
from .base import ActiveResponse
from .errors import _Reject
from .replies import Reply, Responder
from .requests import ResponseRequest, parse_request, request_params
from .streaming import OutputStreams, pieces

__all__ = ["ResponseHandlers"]


class ResponseHandlers(OutputStreams):
    """`FakeSession`'s handlers of ``response.create`` and ``response.cancel``."""

    responder: Responder

    def _response_cancel(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        response_id = event.get("response_id")
        if response_id is not None:
            active = self._active.get(response_id) if isinstance(response_id, str) else None
        else:
            active = self._in_band_active()  # the one in the default conversation
        if active is None:
            raise _Reject(
                "response_cancel_not_active", "Cancellation failed: no active response found."
            )
        return self._cancel(active, "client_cancelled")

    def _response_create(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        params = event.get("response")
        client_id = event.get("event_id")
        return self._respond(
            {} if params is None else params, client_id if isinstance(client_id, str) else None
        )

    def _respond(self, params: Mapping[str, Any], client_id: str | None) -> list[dict[str, Any]]:
        request = parse_request(params, self.session, self.profile.max_output_tokens)
        busy = self._in_band_active()
        if request.in_band and busy is not None:
            raise _Reject(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress:"
                f" {busy.response['id']}. Wait until the response is finished before creating"
                " a new one.",
            )
        wanted = request_params(
            request, self._new_item_id, self._audio_format("input"), self._heard
        )
        try:
            view = self.model if wanted.plain else self.model.request_model(wanted)
        except (BudgetExceededError, ConfigurationError) as exc:
            raise _Reject("invalid_value", str(exc), "response.instructions") from None
        except ServerModelError as exc:
            raise _Reject(exc.code, str(exc), exc.param) from None
        response = self._response_object(request)
        try:
            dropped = set(view.preview_truncation())
        except ContextOverflowError:
            return self._failed(wanted, response, request.in_band)
        # The reply comes before any event, so a failing responder leaves no response begun.
        reply = self.responder(self._ears([i for i in view.items if i.id not in dropped]))
        item = self._output(reply, request.modalities)
        result = self.model.create_response([item], wanted)
        # Items the truncation dropped (result.dropped_items) get no event: the real server
        # sends none (documented, and so in every recording), so neither does the fake.
        pause = reply.pause_after_ms
        if pause is not None and not (isinstance(item, Message) and item.audio_ms):
            pause = 0  # only audio is made over time; anything else holds before it starts
        active = ActiveResponse(
            response=response,
            in_band=request.in_band,
            model=self.model,
            result=result,
            item=item,
            pieces=pieces(item.arguments if isinstance(item, FunctionCall) else item.text),
            pause_ms=pause,
        )
        events = [self._event("response.created", response=copy.deepcopy(response))]
        if request.in_band and self.transcription_timing == "interleaved":
            events += self._take_transcripts()
        if pause is None:
            return events + self._finish(active)
        self._active[response["id"]] = active
        if pause:
            events += self._open(active) + self._stream(active, to_end=False)
        return events

    def _finish(self, active: ActiveResponse) -> list[dict[str, Any]]:
        """Stream the rest of a response: its whole output, done, completed."""
        self._active.pop(active.response["id"], None)
        item = active.item
        assert isinstance(item, FunctionCall | Message)
        events = [] if active.opened else self._open(active)
        events += self._stream(active, to_end=True) + self._close(active, item, "completed")
        output = [copy.deepcopy(events[-1]["item"])]
        events += self._done(active, output, active.result.usage, "completed", None)
        if active.in_band and self.transcription_timing == "late":
            events += self._take_transcripts()
        # The assistant speaks its answer: that time passes.
        self._advance((item.audio_ms or 0) if isinstance(item, Message) else 0)
        return events

    def _cancel(self, active: ActiveResponse, reason: str) -> list[dict[str, Any]]:
        """End a response in progress where it stands: ``cancelled``, with what was made."""
        self._active.pop(active.response["id"], None)
        item = active.item
        assert item.id is not None
        made: list[FunctionCall | Message] = []
        if active.opened:
            assert isinstance(item, Message)  # only audio is held once begun
            text = "".join(active.pieces[: active.said])
            made.append(Message(role="assistant", text=text, audio_ms=active.at_ms, id=item.id))
        if active.in_band:
            self._replace(active.model, item, made)
        events = []
        output = []
        for final in made:
            events += self._close(active, final, "incomplete")
            output.append(copy.deepcopy(events[-1]["item"]))
        produced = ModalityTokens()
        for final in made:
            produced += active.model.counter.item(final).output
        usage = active.result.usage
        if self.cancelled_usage == "zero":
            usage = Usage(input=ModalityTokens(), cached=ModalityTokens(), output=ModalityTokens())
        else:
            usage = Usage(input=usage.input, cached=usage.cached, output=produced)
        details = {"type": "cancelled", "reason": reason}
        events += self._done(active, output, usage, "cancelled", details)
        if active.in_band and self.transcription_timing == "late":
            events += self._take_transcripts()
        return events

    def _replace(self, model: ServerModel, item: Item, made: list[FunctionCall | Message]) -> None:
        """Put what was made of `item` in its place in the conversation (or nothing)."""
        assert item.id is not None
        previous = self._previous(item.id)
        model.delete_item(item.id)
        self._items.pop(item.id, None)
        for final in made:
            model.create_item(final, previous if previous is not None else "root")

    def _response_object(self, request: ResponseRequest) -> dict[str, Any]:
        """The response as ``response.created`` shows it (in progress, no output yet)."""
        output_audio = self.session["audio"]["output"]
        limit = request.max_output_tokens
        return {
            "object": "realtime.response",
            "id": self._new_id("resp"),
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": self.conversation_id if request.in_band else None,
            "output_modalities": list(request.modalities),
            "max_output_tokens": self.session["max_output_tokens"] if limit is None else limit,
            "audio": {
                "output": {"format": dict(output_audio["format"]), "voice": output_audio["voice"]}
            },
            "usage": None,
            "metadata": request.metadata,
        }

    def _failed(
        self, params: ResponseParams, response: dict[str, Any], in_band: bool
    ) -> list[dict[str, Any]]:
        """An overflow with truncation disabled: a failed response and an error."""
        result = self.model.create_response([], params)
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
        if in_band:
            events += self._take_transcripts()
        return events

    def _output(self, reply: Reply, modalities: list[str]) -> FunctionCall | Message:
        item_id = self._new_item_id()
        if reply.function_call is not None:
            name, arguments = reply.function_call
            call_id = self._new_id("call")
            return FunctionCall(name=name, call_id=call_id, arguments=arguments, id=item_id)
        audio_ms = reply.audio_ms if modalities == ["audio"] else None
        return Message(role="assistant", text=reply.text, audio_ms=audio_ms, id=item_id)

    def resume(self) -> list[dict[str, Any]]:
        """Let every response in progress run to its end; returns (and records) the events."""
        events = []
        for active in list(self._active.values()):
            events += self._finish(active)
        self.sent.extend(events)
        return events

    @property
    def active_responses(self) -> list[str]:
        """Ids of the responses in progress (held by `Reply.pause_after_ms`), oldest first."""
        return list(self._active)
