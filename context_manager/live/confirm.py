"""Compaction confirmation: a plan sent is not a plan done until the server says so.

A compaction's creates and deletes go out as client events; the engine counts it done only
when the server has confirmed every one (``conversation.item.added`` for each create,
``conversation.item.deleted`` for each delete). Then the history marks what left the context
and a `Compacted` record names it. A refused step gives the plan up and keeps the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..compaction.plan import CompactionPlan
from ..items import Item, Message
from .history import CallHistory
from .records import Compacted

__all__ = ["PendingCompaction"]


def is_system(item: Item) -> bool:
    """Whether `item` is a system message (a summary, in a plan or a seed)."""
    return isinstance(item, Message) and item.role == "system"


@dataclass(slots=True)
class PendingCompaction:
    """A compaction sent and not yet confirmed by the server (empty: none out)."""

    plan: CompactionPlan | None = None
    waiting: set[str] = field(default_factory=set)
    created: frozenset[str] = frozenset()
    replaces: dict[str, str] = field(default_factory=dict)
    """Created id -> the deleted id it stands for (audio replaced by its transcript)."""
    tokens_before: int = 0

    @classmethod
    def of(cls, plan: CompactionPlan, tokens_before: int) -> PendingCompaction:
        """The compaction `plan`, about to be sent."""
        created = frozenset(c.item.id for c in plan.creates if c.item.id)
        gone = set(plan.deletes)
        replaces = {
            c.item.id: c.previous_item_id
            for c in plan.creates
            if c.item.id and c.previous_item_id in gone and not is_system(c.item)
        }
        return cls(plan, set(created | gone), created, replaces, tokens_before)

    def confirm(
        self, item_id: str, history: CallHistory, *, session: int, strategy: str
    ) -> Compacted | None:
        """The server confirmed `item_id`; the `Compacted` record once the last step is in.

        `tokens_after` of the record is left at 0 for the caller to fill in.
        """
        plan = self.plan
        if item_id not in self.waiting or plan is None:
            return None
        self.waiting.discard(item_id)
        if self.waiting:
            return None
        replaced = set(self.replaces.values())
        gone = (history.key_of(d) for d in plan.deletes if d not in replaced)
        keys = tuple(dict.fromkeys(k for k in gone if k))
        history.mark(keys, "compacted")
        summaries = [c.item.text for c in plan.creates if is_system(c.item) and c.item.text]  # type: ignore[union-attr]
        if summaries:
            history.summary = "\n".join(summaries)
        return Compacted(
            keys=keys,
            summary=history.summary if summaries else None,
            strategy=plan.reason or strategy,
            session=session,
            tokens_before=self.tokens_before,
            tokens_after=0,
        )
