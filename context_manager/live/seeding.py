"""Naming a rollover's seed: which copy in the new session stands for which item of the call.

A seed re-sends items under new ids (``seed{session}_{n}``; the summary ``summary_r{session}``).
Each copy is linked to the history key of the item it repeats, so the store keeps one row per
item of the call and learns the copy's new server id; a summary stands for no single item.
The new session is configured as the old one was (`session_update`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..compaction.strategies import SUMMARY_PREFIX
from ..items import FunctionCall, Item, Message
from ..server import Truncation
from .confirm import is_system

__all__ = ["name_seed", "session_update"]

# Session settings a client may send back in ``session.update`` (the rest is read-only).
_UPDATABLE = (
    "type", "instructions", "tools", "tool_choice", "truncation", "max_output_tokens",
    "output_modalities", "audio", "include", "prompt", "tracing",
)  # fmt: skip


def session_update(config: Mapping[str, Any], truncation: Truncation | None) -> dict[str, Any]:
    """The ``session.update`` that sets a new session up as `config` (the old session's)."""
    session = {k: v for k, v in config.items() if k in _UPDATABLE}
    session.setdefault("type", "realtime")
    if truncation is not None:
        session["truncation"] = truncation.to_realtime()
    return {"type": "session.update", "session": session}


def name_seed(
    seed: Sequence[Item],
    history: Sequence[Item],
    index: int,
    origins: Sequence[str | None] | None = None,
) -> tuple[list[Item], dict[str, str | None]]:
    """The seed with the ids of session `index`, and each id's history key (``None``: summary).

    `history` holds the call's items with their keys as ids, as `CallHistory.conversation`
    gives them. `origins` (a `SeedDraft`'s) names each item's key; without it, the key is
    found by content.
    """
    named: list[Item] = []
    seeded: dict[str, str | None] = {}
    originals = {i.call_id: i.id for i in history if isinstance(i, FunctionCall)}
    used: set[str] = set()
    for n, item in enumerate(seed):
        original = (
            origins[n]
            if origins is not None and n < len(origins)
            else _original_key(item, history, originals, used)
        )
        # The summary: a system item of no id standing for no item of the call, one a seed.
        # (An application's own system message is an item of the call like any other.)
        summary = f"{SUMMARY_PREFIX}r{index}"
        if is_system(item) and item.id is None and original is None and summary not in seeded:
            sid = summary
        else:
            sid = f"seed{index}_{n}"
            if original is not None:
                used.add(original)
        seeded[sid] = original
        named.append(replace(item, id=sid))
    return named, seeded


def _original_key(
    item: Item, history: Sequence[Item], originals: Mapping[str, str | None], used: set[str]
) -> str | None:
    """The history key a seeded copy stands for."""
    if isinstance(item, FunctionCall):
        return originals.get(item.call_id)
    # Seed items are the last turns, in order: the newest history item of equal content
    # not already matched (the same words said twice are two items of the call).
    form = replace(item, id=None, t=None)
    for original in reversed(history):
        if original.id in used:
            continue
        candidate = original.as_text() if isinstance(original, Message) else original
        if replace(candidate, id=None, t=None) == form:
            return original.id
    return None
