"""Client events naming an item of an earlier session, said again for the current one.

Frameworks keep the server ids they have seen: LiveKit places each new item right after the
last one it knows, the Agents SDK truncates the assistant item it was playing. After a
rollover those ids name nothing on the server: the new session holds copies under the seed's
ids, or nothing. `restate` gives such an event for the current session:

* an item placed after an earlier session's item goes after that item's copy, or last when
  the session has no copy (what a framework placing "after the last item I know" meant);
* a delete or a retrieve names the copy instead;
* a delete of an item the session does not hold, or a truncate of an earlier session's audio
  (its copy, if any, is text), is not sent: the reply the server would give is made here.

An id the call never had goes out unchanged, for the server to refuse as it would.

The other way, `app_view`: a server event placing an item after a seed's copy names the
item the application knows instead, so its own record of the conversation stays whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..live.history import CallHistory

__all__ = ["app_view", "restate"]


def restate(
    event: Mapping[str, Any], history: CallHistory
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """`event` for the current session, or ``None`` and the server event that answers it."""
    kind = event.get("type")
    if kind == "conversation.item.create":
        previous = event.get("previous_item_id")
        if not isinstance(previous, str) or previous == "root":
            return dict(event), None
        stale, now = history.stale(previous)
        if not stale:
            return dict(event), None
        out = {k: v for k, v in event.items() if k != "previous_item_id"}
        if now is not None:
            out["previous_item_id"] = now
        return out, None
    if kind not in ("conversation.item.delete", "conversation.item.retrieve",
                    "conversation.item.truncate"):  # fmt: skip
        return dict(event), None
    item_id = event.get("item_id")
    if not isinstance(item_id, str):
        return dict(event), None
    stale, now = history.stale(item_id)
    if not stale:
        return dict(event), None
    if now is not None and kind != "conversation.item.truncate":
        return {**event, "item_id": now}, None
    if kind == "conversation.item.retrieve":
        return dict(event), None  # nothing to give: the server's own error answers it
    reply: dict[str, Any] = {"event_id": f"event_cm_{uuid.uuid4().hex[:20]}", "item_id": item_id}
    if kind == "conversation.item.delete":
        reply["type"] = "conversation.item.deleted"
    else:
        reply["type"] = "conversation.item.truncated"
        reply["content_index"] = event.get("content_index", 0)
        reply["audio_end_ms"] = event.get("audio_end_ms", 0)
    return None, reply


def app_view(event: Mapping[str, Any], history: CallHistory) -> dict[str, Any] | None:
    """`event` with a seed copy's id named as the application knows it (``None``: as it is)."""
    if event.get("type") not in ("conversation.item.added", "conversation.item.done"):
        return None
    previous = event.get("previous_item_id")
    if not isinstance(previous, str) or not history.is_seed(previous):
        return None
    known = history.known_id(previous)
    return None if known is None else {**event, "previous_item_id": known}
