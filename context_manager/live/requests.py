"""`ResponseRequests`: which ``response.create`` each response of a session answers.

The server's ``response.created`` does not say which client event asked for it, and a
response may be asked for by no client event at all (server VAD starts one at each commit).
The parameters a response was asked with (its own instructions, tools, ``input``, out of
band or not) are in the client's event only, so the mirror pairs them:

* each ``response.create`` the client sends waits, in order, with its ``event_id``;
* a ``response.created`` takes the oldest waiting request that agrees with what the server
  echoes (out of band or not, ``metadata``, ``output_modalities``); when none agrees, the
  response is the server's own (voice activity) and has the session's settings;
* an ``error`` naming a waiting request's ``event_id`` removes it (refused); naming one a
  response already took, it gives that response back the session's settings (the server
  refused the request, so the response was the server's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..server.request import ResponseParams

__all__ = ["ResponseRequests"]

_MAX_WAITING = 32  # requests never answered (a log cut short) do not pile up


class ResponseRequests:
    """The requests of one session's responses, paired from client and server events."""

    def __init__(self) -> None:
        self._waiting: list[tuple[str | None, ResponseParams]] = []
        self._taken: dict[str, tuple[str | None, ResponseParams]] = {}  # response id ->

    def asked(self, event: Mapping[str, Any], audio_format: str = "audio/pcm") -> list[str]:
        """Note a client ``response.create``; returns notes on what could not be read."""
        raw = event.get("response")
        params, notes = ResponseParams.from_wire(
            raw if isinstance(raw, Mapping) else {}, audio_format=audio_format
        )
        event_id = event.get("event_id")
        self._waiting.append((event_id if isinstance(event_id, str) else None, params))
        del self._waiting[:-_MAX_WAITING]
        return notes

    def created(self, response: Mapping[str, Any]) -> None:
        """Pair a ``response.created``'s response with the request it answers, if any."""
        response_id = response.get("id")
        if not isinstance(response_id, str):
            return
        for n, (event_id, params) in enumerate(self._waiting):
            if _agrees(params, response):
                del self._waiting[n]
                self._taken[response_id] = (event_id, params)
                return

    def refused(self, event_id: object) -> None:
        """The server refused the client event `event_id` (an ``error`` naming it)."""
        if not isinstance(event_id, str):
            return
        self._waiting = [w for w in self._waiting if w[0] != event_id]
        for response_id, (asked_by, _) in list(self._taken.items()):
            if asked_by == event_id:
                del self._taken[response_id]

    def params(self, response_id: object) -> ResponseParams | None:
        """The parameters response `response_id` was asked with (``None``: the session's)."""
        taken = self._taken.get(response_id) if isinstance(response_id, str) else None
        return None if taken is None else taken[1]

    def done(self, response_id: object) -> ResponseParams | None:
        """`params`, and forget the response (its ``response.done`` arrived)."""
        taken = self._taken.pop(response_id, None) if isinstance(response_id, str) else None
        return None if taken is None else taken[1]


def _agrees(params: ResponseParams, response: Mapping[str, Any]) -> bool:
    conversation = response.get("conversation_id", "")
    if conversation is None and params.in_band:  # the server says out of band
        return False
    if isinstance(conversation, str) and conversation and not params.in_band:
        return False
    echoed = response.get("metadata")
    wanted = dict(params.metadata) if params.metadata else None
    if "metadata" in response and (echoed or None) != wanted:
        return False
    modalities = response.get("output_modalities")
    return not (
        params.output_modalities is not None
        and isinstance(modalities, list)
        and tuple(modalities) != params.output_modalities
    )
