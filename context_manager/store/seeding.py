"""Seeding a new session from the store, at a cost that does not grow with the conversation.

A seed is the most recent turns, and (with ``carry="summary"`` or ``"ledger"``, or once the
client compacted) a summary of everything before them. Built from scratch it reads and folds
every stored item; a conversation of 40,000 items took seconds. Here:

* without a summary to carry, only the tail is read, a page at a time from the end, until the
  turns the budget holds are found;
* with one, the summary a seed carried is kept (``seed_summaries``, a cache: a failed write
  loses nothing) with the last item it covers, so the next seed reads and folds only the items
  after it, starting from that summary. It is used only while it still describes the history:
  built on the client's newest summary, over the same number of live items (a deleted or
  compacted item makes the next seed fold again from the start).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, select

from ..errors import StoreError
from ..items import Item, Message, item_from_dict, turn_starts
from ..rollover import RolloverPolicy
from .database import Call
from .models import ItemRow, SeedSummaryRow, SummaryRow

if TYPE_CHECKING:
    from .repository import Store

__all__ = ["PAGE_ITEMS", "seed_items"]

log = logging.getLogger(__name__)

PAGE_ITEMS = 256
"""Items read at once from the end of a conversation (doubled until the seed's turns fit)."""

_LIVE = ("live", "truncated")


def _key(store: Store, policy: RolloverPolicy) -> str:
    writer = type(policy.summarizer).__name__ if policy.summarizer is not None else "extractive"
    reserve = min(policy.summary_tokens, policy.budget_tokens)
    return f"{policy.carry}:{reserve}:{writer}:{store.counter.profile.name}"


def _items(rows: Sequence[Any]) -> list[Item]:
    return [item_from_dict({**r.content, "id": r.uid}, source=f"item {r.uid}") for r in rows]


def _budget_reached(policy: RolloverPolicy, store: Store, tail: Sequence[Item]) -> bool:
    """Whether the seed's recent turns start inside `tail` (a turn before them was refused).

    Only then does the tail give the seed the whole history would: the walk back stopped at a
    turn that did not fit, not at the tail's first item.
    """
    starts = turn_starts(tail)
    return bool(starts) and policy.first_seeded(tail, store.counter) > starts[0]


def seed_items(store: Store, cid: str, policy: RolloverPolicy) -> list[Item]:
    """`Store.seed`: the seed of conversation `cid` under `policy` (see the module)."""
    key = _key(store, policy)

    def read(c: Connection) -> tuple[Any, Any, list[Any], bool]:
        store._need_conversation(c, cid)
        base = c.execute(select(SummaryRow.id, SummaryRow.text)
                         .where(SummaryRow.conversation_id == cid)
                         .order_by(SummaryRow.id.desc()).limit(1)).first()  # fmt: skip
        live = (ItemRow.conversation_id == cid) & ItemRow.status.in_(_LIVE)
        columns = (ItemRow.uid, ItemRow.content, ItemRow.position)
        if policy.carry == "recent" and base is None:
            # Nothing is folded: read from the end until the budget's turns are all in.
            rows: list[Any] = []
            page = PAGE_ITEMS
            while True:
                query = select(*columns).where(live).order_by(ItemRow.position.desc())
                rows = list(c.execute(query.limit(page)))[::-1]
                if len(rows) < page or _budget_reached(policy, store, _items(rows)):
                    return base, None, rows, False
                page *= 4
        running = c.execute(select(SeedSummaryRow.__table__).where(
            SeedSummaryRow.conversation_id == cid, SeedSummaryRow.policy == key,
        ).order_by(SeedSummaryRow.id.desc()).limit(1)).first()  # fmt: skip
        if running is not None:
            still = running.base_id == (
                base.id if base is not None else None
            ) and running.items == (
                c.scalar(
                    select(func.count())
                    .select_from(ItemRow)
                    .where(live, ItemRow.position <= running.upto)
                )  # fmt: skip
            )
            running = running if still else None
        after = running.upto if running is not None else -1
        query = select(*columns).where(live, ItemRow.position > after)
        rows = list(c.execute(query.order_by(ItemRow.position)))
        return base, running, rows, True

    base, running, rows, folds = store._read(f"read the seed of {cid!r}", read)
    history = _items(rows)
    if not folds:
        return policy.seed(history, store.counter)
    previous = running.text if running is not None else (base.text if base is not None else None)
    draft = policy.draft(history, store.counter, previous)
    head = draft.items[0] if draft.origins[:1] == [None] else None
    carried = head.text if isinstance(head, Message) else ""
    origins = {o for o in draft.origins if o is not None}
    first = next((n for n, item in enumerate(history) if item.id in origins), len(history))
    if carried and first > 0:
        _keep(store, cid, key, base.id if base is not None else None,
              int(rows[first - 1].position), running, first, carried)  # fmt: skip
    return draft.items


def _keep(
    store: Store,
    cid: str,
    key: str,
    base_id: int | None,
    upto: int,
    running: Any,
    folded: int,
    text: str,
) -> None:
    """Keep the seed's summary for the next seed (a cache: a failed write is only logged)."""
    covered = (running.items if running is not None else 0) + folded

    def work(c: Connection) -> None:
        c.execute(delete(SeedSummaryRow).where(
            SeedSummaryRow.conversation_id == cid, SeedSummaryRow.policy == key
        ))  # fmt: skip
        c.execute(insert(SeedSummaryRow).values(
            conversation_id=cid, policy=key, base_id=base_id, upto=upto, items=covered,
            text=text, created_at=datetime.now(UTC).replace(tzinfo=None),
        ))  # fmt: skip

    try:
        store.run(Call(f"keep the seed summary of {cid!r}", work), retry=False)
    except StoreError as exc:
        log.warning("the seed summary of %r was not kept (the next seed folds again): %s",
                    cid, exc.reason)  # fmt: skip
