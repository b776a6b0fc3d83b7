"""Fact presence: which planted facts the context still holds at the end of a call.

A fact is present when one of its probe strings is in the text of the retained items
(messages, summaries, ledgers, tool outputs): verbatim, or after normalizing (lower case,
letters and digits only, so "QX-4471" matches "qx 4471"). A stale value is leaked when the old
value of an updated fact is still there.

>>> from context_manager.items import Message
>>> from context_manager.simulate.workloads import PlantedFact
>>> facts = [PlantedFact("code", 3, "My code is QX-4471.", ("QX-4471",))]
>>> fact_presence(facts, [Message(role="system", text="Booking: qx 4471")])["present_normalized"]
1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..items import FunctionCall, Item, Message
from .texts import vocabulary
from .workloads import CallBatch, PlantedFact, WorkloadSpec

__all__ = ["fact_presence", "item_text", "normalize", "outside_filler", "presence", "words"]

# Every byte but an ASCII digit or lower-case letter becomes a space. A non-ASCII character is
# encoded as "?" first, so it separates words too (4-5x faster than a regular expression).
_WORD_BYTES = bytes(c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256))


def words(text: str) -> list[str]:
    """The runs of letters and digits of `text`, lower-cased (what `normalize` keeps)."""
    return text.lower().encode("ascii", "replace").translate(_WORD_BYTES).decode("ascii").split()


def normalize(text: str) -> str:
    """Lower case, letters and digits only, one space between runs."""
    return " ".join(words(text))


def item_text(item: Item) -> str:
    """The text an item holds: a message's text, a call's arguments, a tool's output."""
    if isinstance(item, Message):
        return item.text
    if isinstance(item, FunctionCall):
        return item.arguments
    return item.output


def fact_presence(facts: Sequence[PlantedFact], items: Sequence[Item]) -> dict[str, Any]:
    """Count the planted facts present in `items`.

    Verbatim and normalized, by kind; and the stale values still present.
    """
    text = "\n".join(item_text(i) for i in items)
    return presence(facts, text, f" {normalize(text)} ")


def presence(facts: Sequence[PlantedFact], text: str, flat: str) -> dict[str, Any]:
    """`fact_presence` of the items whose texts joined by newlines are `text`.

    `flat` is `text` normalized, with a space before and after.
    """
    out: dict[str, Any] = {"facts": 0, "present": 0, "present_normalized": 0, "stale": 0,
                           "by_kind": {}}  # fmt: skip
    for fact in facts:
        if not fact.stale and fact.kind == "updated":
            continue  # the first statement of an updated value is checked through its update
        out["facts"] += 1
        verbatim = any(p in text for p in fact.probes)
        loose = any(f" {normalize(p)} " in flat for p in fact.probes)
        out["present"] += verbatim
        out["present_normalized"] += loose
        out["stale"] += any(f" {normalize(s)} " in flat for s in fact.stale)
        kind = out["by_kind"].setdefault(
            fact.kind, {"facts": 0, "present": 0, "present_normalized": 0}
        )
        kind["facts"] += 1
        kind["present"] += verbatim
        kind["present_normalized"] += loose
    return out


def outside_filler(source: CallBatch | WorkloadSpec) -> bool:
    """Whether filler text can never hold any of the facts of `source` (a batch or a spec).

    Each value (probe or stale) has a word the filler vocabulary lacks, so a generated call's
    facts are found only in its statements and what was made from them: the vectorized path
    then looks at those alone (`vectorized.VectorResult.final`).
    """
    vocab = set(vocabulary())
    if isinstance(source, WorkloadSpec):
        values = [v for spec in source.facts for v in spec.values]
    else:
        values = [v for facts in source.facts for f in facts for v in (*f.probes, *f.stale)]
    return all(any(w not in vocab for w in normalize(v).split()) for v in values)
