"""The call's history as the client remembers it: every item once, under a stable key.

Server ids change with every session (a seed re-sends an item under a new id); the history's
keys do not, so a store can keep one row per item of the call. The history knows which server
id of the current session stands for which key (items seen in this session, and the items a
rollover seeded), which function calls still wait for their output, and the newest summary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import count
from typing import Any, Literal

from ..errors import InputFormatError
from ..items import FunctionCall, FunctionCallOutput, Item
from ..wire import item_from_wire

__all__ = ["CallHistory", "Entry", "Status"]

Status = Literal["live", "truncated", "compacted"]


@dataclass(slots=True)
class Entry:
    """One item of the call: its stable key, its latest content and where it stands."""

    key: str
    item: Item
    status: Status = "live"


class CallHistory:
    """Every item of the call once, oldest first (seed copies and summaries excluded)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.summary: str | None = None
        """The newest summary of compacted history."""
        self._by_key: dict[str, Entry] = {}
        self._ids: dict[str, str] = {}  # server id in this session -> key
        self._seeded: dict[str, str | None] = {}  # seeded server id -> key (None: a summary)
        self._past: dict[str, str] = {}  # server id in an earlier session -> key
        self._calls: dict[str, str] = {}  # call_id -> key of the call awaiting its output
        # Ids the application chose for the items it sent: unique to the call, so they keep
        # their key in every session (a re-sent create is the same item, not a new one).
        self._sent: dict[str, str] = {}
        # Keys: a random prefix per history and a counter (unique across processes, cheap).
        self._prefix = uuid.uuid4().hex[:16]
        self._serial = count()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def entry(self, key: str) -> Entry:
        """The entry under `key`."""
        return self._by_key[key]

    @property
    def pending_calls(self) -> tuple[str, ...]:
        """Call ids of function calls still waiting for their output."""
        return tuple(self._calls)

    def waiting_calls(self) -> list[tuple[str, FunctionCall]]:
        """The function calls still waiting for their output, with their keys."""
        out = []
        for key in self._calls.values():
            item = self._by_key[key].item
            if isinstance(item, FunctionCall):
                out.append((key, item))
        return out

    def new_session(self) -> None:
        """A new session began: the server ids of the last one mean nothing to the server now."""
        self._past.update(self._ids)
        self._ids.clear()

    def key_of(self, server_id: str) -> str | None:
        """The key of the item a server id of this session stands for."""
        if server_id in self._seeded:
            return self._seeded[server_id]
        key = self._ids.get(server_id)
        return key if key is not None else self._sent.get(server_id)

    def server_ids(self) -> dict[str, str]:
        """The current session's server id of each item it holds, by key.

        Server ids map to themselves too, so items named either way are found.
        """
        ids = {key: sid for sid, key in self._ids.items()}
        ids.update({sid: sid for sid in self._ids})
        return ids

    def holds(self, server_id: str) -> bool:
        """Whether the current session has an item under `server_id` (as far as it was told)."""
        return server_id in self._ids or server_id in self._seeded

    def stale(self, server_id: str) -> tuple[bool, str | None]:
        """Whether `server_id` names an item of an earlier session, and its id in this one.

        ``(False, None)``: the id is this session's, or one the call never had (the server
        answers for it). ``(True, None)``: an earlier session's item this session does not hold.
        """
        if self.holds(server_id):
            return False, None
        key = self._past.get(server_id) or self._sent.get(server_id)
        if key is None:
            return False, None
        now = next((sid for sid, k in self._ids.items() if k == key), None)
        return True, now

    def known_id(self, seed_id: str) -> str | None:
        """The id the application knows the item of a seed's copy by (``None``: no such id).

        That is the id the item had in the session where the application saw it, or the
        application's own id for an item it sent.
        """
        key = self._seeded.get(seed_id)
        if key is None:
            return None
        sent = next((cid for cid, k in self._sent.items() if k == key), None)
        return sent or next((sid for sid, k in self._past.items() if k == key), None)

    def is_seed(self, server_id: str) -> bool:
        """Whether `server_id` is an item the last rollover seeded (a copy, or a summary)."""
        return server_id in self._seeded

    def sent(self, item: Item, client_id: str) -> str | None:
        """An item the application sent under its own id: a new key (``None``: known already)."""
        if self.key_of(client_id) is not None:
            return None
        key = self.add(item, client_id)
        self._sent[client_id] = key
        return key

    def link(self, server_id: str, key: str) -> None:
        """`server_id` stands for the item `key` in this session."""
        self._ids[server_id] = key

    def add(self, item: Item, server_id: str) -> str:
        """A new item of the call, under a new key."""
        key = f"{self._prefix}{next(self._serial):06x}"
        self._append(key, item)
        self._ids[server_id] = key
        return key

    def _append(self, key: str, item: Item) -> None:
        entry = Entry(key, item)
        self.entries.append(entry)
        self._by_key[key] = entry
        if isinstance(item, FunctionCall):
            self._calls[item.call_id] = key
        elif isinstance(item, FunctionCallOutput):
            self._calls.pop(item.call_id, None)

    def mark(self, keys: Iterable[str], status: Status) -> None:
        """Set where these items stand (truncated by the server, compacted by the client)."""
        for key in keys:
            self._by_key[key].status = status

    def conversation(self) -> list[Item]:
        """The call as the client remembers it: items not compacted, keys as ids."""
        return [replace(e.item, id=e.key) for e in self.entries if e.status != "compacted"]

    def restore(self, items: Sequence[Item], summary: str | None) -> None:
        """Adopt a stored conversation (after a restart); ids are the stored keys."""
        if self.entries:
            return  # the history remembers the call itself; the store holds the same
        for item in items:
            if item.id is not None:
                self._append(item.id, item)
        self.summary = summary

    def source(
        self, items: Sequence[Item] | None, summary: str | None, resent: Iterable[str] = ()
    ) -> tuple[list[Item], str | None]:
        """The history and summary a seed is made from.

        This history's own (keys as ids), or `items` and `summary` from a store (adopted
        first); the items the client ids in `resent` name are left out.
        """
        if items is None:
            items, summary = self.conversation(), self.summary
        else:
            self.restore(items, summary)
        skip = {self.key_of(i) for i in resent}
        return [i for i in items if i.id not in skip], summary

    def seed(self, seeded: Mapping[str, str | None]) -> None:
        """The server ids a rollover is about to seed, and the keys they stand for."""
        self._seeded = dict(seeded)

    def seeded(self) -> dict[str, str]:
        """Link the seeded ids into this session; returns ``{key: server id}``."""
        links = {key: sid for sid, key in self._seeded.items() if key is not None}
        for key, sid in links.items():
            self._ids[sid] = key
        return links


def sent_item(raw: Mapping[str, Any], audio_format: str) -> Item | None:
    """The item of an application's ``conversation.item.create`` (``None``: a type not held).

    Audio of a length that cannot be read is still the application's, kept as 0 ms.
    """
    try:
        return item_from_wire(raw, audio_format=audio_format)
    except InputFormatError:
        try:
            return item_from_wire(raw, audio_ms=0)
        except InputFormatError:
            return None
