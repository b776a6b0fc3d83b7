"""The retained items of a session, with what every request reads of them kept running.

A request is the head (instructions, tools) and then every retained item as a `Segment`, under
the assistant-audio rule (DESIGN.md, "Item tokens": under ``latest`` only the newest assistant
audio item keeps its audio). `Retained` keeps each item's segment before that rule in a list
beside the items, and the tokens of the whole in running sums, as items come and go, so that a
response copies one list and reads a few numbers instead of rebuilding its request item by item
and summing it again. Truncation reads item sizes oldest first only as far as it drops
(`Retained.sizes`).

>>> from context_manager.items import Message
>>> from context_manager.profiles import get_model_profile
>>> from context_manager.tokens import TokenCounter
>>> counter = TokenCounter(get_model_profile("gpt-realtime"))
>>> retained = Retained(counter)
>>> for item in (Message(role="user", text="Hi.", id="u1"),
...              Message(role="assistant", text="Hello!", audio_ms=900, id="a1"),
...              Message(role="assistant", text="Bye!", audio_ms=500, id="a2")):
...     retained.insert(entry_of(item, counter))
>>> [s.total for s in retained.segments([])]  # under "latest", a1 counts as its transcript
[6, 6, 24]
>>> retained.tokens()
ModalityTokens(text=26, audio=10, image=0)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ServerModelError
from ..items import FunctionCall, Item, Message
from ..tokens import ItemTokens, ModalityTokens, TokenCounter
from .cache import Segment

__all__ = ["Entry", "Retained", "Sizes", "entry_of"]


@dataclass(slots=True)
class Entry:
    """One retained item, counted once, in both forms a request may hold it in."""

    item: Item
    tokens: ItemTokens
    kept: Segment
    """The item in a request with its audio kept."""
    demoted: Segment
    """The item in a request when its (assistant) audio is not kept; `kept` for other items."""


# Audio identity: no two audio items are the same audio, in any session of the process.
_AUDIO_IDS = itertools.count()


def entry_of(item: Item, counter: TokenCounter) -> Entry:
    """`item` counted, with its segment keys."""
    tokens = counter.item(item)
    # Segment keys are strings built once per item (their hash is cached): equal content
    # gives equal keys, so identical text items in identical places hit the cache across
    # sessions, as recorded. Audio is unique to its item, so audio items carry the item's
    # id (a serial without one): re-counting the same item (a recalibration) keeps its key.
    if isinstance(item, Message):
        audio = ""
        if item.audio_ms is not None:
            audio = f"{item.id or next(_AUDIO_IDS)}:{item.audio_ms}"
        images = "|".join(f"{i.url}#{i.detail}" for i in item.images)
        key = f"message\x1f{item.role}\x1f{audio}\x1f{images}\x1f{item.text}"
    elif isinstance(item, FunctionCall):
        key = f"function_call\x1f{item.name}\x1f{item.call_id}\x1f{item.arguments}"
    else:
        key = f"function_call_output\x1f{item.call_id}\x1f{item.output}"
    kept = Segment(key, tokens.full)
    if not tokens.is_assistant_audio:
        return Entry(item, tokens, kept, kept)
    return Entry(item, tokens, kept, Segment(key + "\x1fas-text", tokens.text_only))


class Retained:
    """The retained items in order; their request segments and token sums kept as they change.

    Args:
        counter: the session's counter (its profile says which assistant audio a request keeps).
    """

    __slots__ = (
        "_all", "_latest", "_newest", "_tokens", "audio", "base", "demoted", "entries", "ids",
        "items", "kept", "refused",
    )  # fmt: skip

    def __init__(self, counter: TokenCounter) -> None:
        self._all = counter.keeps_audio(is_latest_assistant=False)  # "all"
        self._latest = counter.keeps_audio(is_latest_assistant=True) and not self._all  # "latest"
        self.entries: list[Entry] = []
        self.items: list[Item] = []
        """Each entry's item (the conversation is read at every response: copied, not built)."""
        self.base: list[Segment] = []
        """Each entry's segment before the latest-assistant rule (kept under "all")."""
        self.kept = ModalityTokens()
        """Sum of every entry's kept form."""
        self.demoted = ModalityTokens()
        """Sum of every entry's demoted form."""
        self.audio = 0
        """How many entries are assistant audio."""
        self.refused = ModalityTokens()
        """What `count_refused` counted in the sums (in the request's form) though not held."""
        self.ids: set[str] = set()
        # What `latest` and `tokens` last found, until the items change (None: to find).
        self._newest: int | None = None
        self._tokens: ModalityTokens | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def copy(self) -> Retained:
        """An independent copy (entries are shared: they are replaced, never changed)."""
        twin = Retained.__new__(Retained)
        twin._all, twin._latest = self._all, self._latest
        twin.entries, twin.items, twin.base = list(self.entries), list(self.items), list(self.base)
        twin.kept, twin.demoted, twin.audio = self.kept, self.demoted, self.audio
        twin.refused = self.refused
        twin.ids = set(self.ids)
        twin._newest, twin._tokens = self._newest, self._tokens
        return twin

    def reset(self, entries: Sequence[Entry]) -> None:
        """Hold `entries` instead, in this order."""
        self.entries, self.items, self.base, self.ids = [], [], [], set()
        self.kept = self.demoted = self.refused = ModalityTokens()
        self.audio = 0
        self._newest = self._tokens = None
        for entry in entries:
            self.insert(entry)

    def _count(self, entry: Entry, sign: int) -> None:
        self._newest = self._tokens = None
        if sign > 0:
            self.kept += entry.kept.tokens
            self.demoted += entry.demoted.tokens
        else:
            self.kept -= entry.kept.tokens
            self.demoted -= entry.demoted.tokens
        if entry.tokens.is_assistant_audio:
            self.audio += sign

    def insert(self, entry: Entry, at: int | None = None) -> None:
        """Add `entry` at index `at` (``None``: last)."""
        segment = entry.kept if self._all else entry.demoted
        if at is None:
            self.entries.append(entry)
            self.items.append(entry.item)
            self.base.append(segment)
        else:
            self.entries.insert(at, entry)
            self.items.insert(at, entry.item)
            self.base.insert(at, segment)
        if entry.item.id is not None:
            self.ids.add(entry.item.id)
        self._count(entry, 1)

    def count_refused(self, entry: Entry) -> None:
        """Count `entry` and take its id without holding it (`ServerModel.create_item`)."""
        if entry.item.id is not None:
            self.ids.add(entry.item.id)
        self._count(entry, 1)
        self.refused += entry.kept.tokens if self._all else entry.demoted.tokens

    def remove(self, n: int) -> Entry:
        """Take out the entry at index `n`."""
        entry = self.entries.pop(n)
        del self.items[n], self.base[n]
        if entry.item.id is not None:
            self.ids.discard(entry.item.id)
        self._count(entry, -1)
        return entry

    def replace(self, n: int, entry: Entry) -> None:
        """Put `entry` in place of the entry at index `n`."""
        self.remove(n)
        self.insert(entry, n)

    def drop(self, count: int) -> tuple[str, ...]:
        """Take out the oldest `count` entries; returns their ids."""
        gone = self.entries[:count]
        del self.entries[:count], self.items[:count], self.base[:count]
        for entry in gone:
            self._count(entry, -1)
        dropped = tuple(e.item.id for e in gone if e.item.id is not None)
        self.ids.difference_update(dropped)
        return dropped

    def index(self, item_id: str) -> int:
        """Where the item `item_id` stands.

        Raises:
            ServerModelError: no retained item has this id.
        """
        if item_id in self.ids:
            for n, entry in enumerate(self.entries):
                if entry.item.id == item_id:
                    return n
        raise ServerModelError(
            f"Item with item_id '{item_id}' not found.", code="item_not_found", param="item_id"
        )

    def latest(self) -> int:
        """Index of the newest assistant audio entry (-1: none)."""
        if self._newest is None:
            self._newest = self._find_latest()
        return self._newest

    def _find_latest(self) -> int:
        if not self.audio:
            return -1
        entries = self.entries
        for n in range(len(entries) - 1, -1, -1):
            if entries[n].tokens.is_assistant_audio:
                return n
        return -1

    def _kept_at(self) -> int:
        """The entry whose audio the rule keeps although `base` holds it demoted (-1: none)."""
        return self.latest() if self._latest else -1

    def tokens(self) -> ModalityTokens:
        """Tokens of the retained items as the next request counts them."""
        if self._tokens is None:
            self._tokens = self._count_tokens()
        return self._tokens

    def _count_tokens(self) -> ModalityTokens:
        if self._all:
            return self.kept
        n = self._kept_at()
        if n < 0:
            return self.demoted
        entry = self.entries[n]
        return self.demoted + entry.kept.tokens - entry.demoted.tokens

    def segments(self, head: Sequence[Segment]) -> list[Segment]:
        """A new request list: `head`, then every retained item under the audio rule."""
        segments = [*head, *self.base]
        n = self._kept_at()
        if n >= 0:
            segments[len(head) + n] = self.entries[n].kept
        return segments

    def sizes(self, extra: Sequence[int] = ()) -> Sizes:
        """Each item's tokens in the next request, then `extra`, read only where asked."""
        return Sizes(self.base, self.entries, self._kept_at(), extra)


class Sizes:
    """Item tokens, oldest first, for `plan_truncation_at` (which reads the few it drops)."""

    __slots__ = ("_base", "_entries", "_extra", "_kept")

    def __init__(
        self, base: list[Segment], entries: list[Entry], kept: int, extra: Sequence[int]
    ) -> None:
        self._base, self._entries, self._kept, self._extra = base, entries, kept, extra

    def __len__(self) -> int:
        return len(self._base) + len(self._extra)

    def __getitem__(self, n: int) -> int:
        items = len(self._base)
        if n < 0:
            n += items + len(self._extra)
        if n >= items:
            return self._extra[n - items]
        if n == self._kept:
            return self._entries[n].kept.total
        return self._base[n].total
