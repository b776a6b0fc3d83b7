"""Compaction strategies: when and how to shrink the history, as plans.

Every strategy answers one question through one small protocol: given the conversation, its
token counter and the history limit, which plan (if any) to carry out now. Strategies never
remove pinned items, never separate a function call from its output (they work in whole turns:
a turn runs from a user item to the next turn's), and never delete before the replacement
exists (a `CompactionPlan` creates first).

* `DropOldest`: past a trigger, delete the oldest whole turns down to a target.
* `AudioToText`: replace audio items older than the last few turns by their transcripts (a
  second of user speech is 10 tokens; its transcript about 3).
* `RollingSummary`: past a trigger, summarize the turns before the last few (with the previous
  summary) into one system item at the start, and delete what it covers.
* `Hierarchical`: summaries of chunks of turns, merged when there are too many.
* `Ledger`: a pinned ledger of facts first in the conversation (last write wins on
  corrections), alone or with a summary.

`parse_compaction` reads the command-line grammar: ``NAME[:KEY=VALUE,...]``, for instance
``rolling-summary:trigger=0.85,keep=6,budget=512``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..items import Item, Message, turn_starts
from ..tokens import TokenCounter
from .plan import ROOT, CompactionPlan, Create
from .summarizers import (
    FEATURES,
    ExtractiveSummarizer,
    SentenceMemo,
    Summarizer,
    sentence_features,
    sentence_values,
)

__all__ = [
    "AudioToText",
    "CompactionContext",
    "CompactionStrategy",
    "DropOldest",
    "Hierarchical",
    "Ledger",
    "LedgerLine",
    "RollingSummary",
    "STRATEGIES",
    "WhenCold",
]

SUMMARY_PREFIX = "summary_"
"""Ids of summary items begin with this, so a later summary can find the one it replaces."""


@dataclass(frozen=True, slots=True)
class CompactionContext:
    """What a strategy looks at: the conversation (items with ids), how to count it, the limit."""

    items: Sequence[Item]
    counter: TokenCounter
    limit: int
    """The history limit (the server truncates above it)."""
    pinned: frozenset[str] = frozenset()
    """Ids no strategy removes."""
    cold: bool = False
    """The next request misses the prompt cache anyway (the cached prefix expired during a
    pause, the instructions changed, or the session is new): compacting now costs no hits."""
    total: int | None = None
    """The conversation's tokens when the caller keeps a running count (the live engine), so
    strategies need not count every item again at every response."""

    def tokens(self, items: Sequence[Item] | None = None) -> int:
        """Tokens of `items` (default: the conversation) in context."""
        if items is None and self.total is not None:
            return self.total
        return self.counter.items(self.items if items is None else items).total

    def costs(self) -> list[int]:
        """Each item's tokens in context (the latest-assistant rule applied), counted once."""
        counted = [self.counter.item(i) for i in self.items]
        latest = max((n for n, c in enumerate(counted) if c.is_assistant_audio), default=-1)
        keeps = self.counter.keeps_audio
        return [
            c.in_context(keeps(is_latest_assistant=n == latest)).total
            for n, c in enumerate(counted)
        ]

    def turns(self) -> list[tuple[int, int]]:
        """[start, end) index ranges of whole turns, oldest first."""
        starts = turn_starts(self.items)
        if not starts:  # no user item (the server kept only answers and tool items): no turn
            return []
        return list(zip(starts, [*starts[1:], len(self.items)], strict=True))

    def newest(self, count: int = 4) -> Sequence[Item]:
        """The last few items: what a strategy reads ahead while it waits for its trigger."""
        return self.items[-count:]

    def folded(self, trigger: float, keep: int) -> list[Item] | None:
        """The items a summarizing strategy folds, or ``None`` (not yet, or nothing to fold).

        Past `trigger` x limit: the removable items before the last `keep` turns.
        """
        if self.tokens() <= trigger * self.limit:
            return None
        turns = self.turns()
        if len(turns) <= keep:
            return None
        cut = turns[-keep][0]
        return [i for i in self.items[:cut] if self.removable(i)] or None

    def removable(self, item: Item) -> bool:
        """Whether a strategy may fold or delete `item` (pinned items, summaries, ledgers stay)."""
        return item.id not in self.pinned and not _is_summary(item) and not _is_ledger(item)


@runtime_checkable
class CompactionStrategy(Protocol):
    """Decides whether to compact now, and how."""

    @property
    def name(self) -> str: ...

    def plan(self, context: CompactionContext) -> CompactionPlan | None: ...


def _is_summary(item: Item) -> bool:
    return (
        isinstance(item, Message)
        and item.role == "system"
        and (item.id or "").startswith(SUMMARY_PREFIX)
    )


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ConfigurationError(f"{name} must be in (0, 1], got {value}")


@dataclass(frozen=True, slots=True)
class DropOldest:
    """Past `trigger` x limit, delete the oldest whole turns until at most `target` x limit.

    What is left of a turn the server cut (items before the first user item) counts as the
    oldest turn.
    """

    trigger: float = 0.9
    target: float = 0.7
    name: str = field(default="drop-oldest", init=False)

    def __post_init__(self) -> None:
        _check_fraction("trigger", self.trigger)
        _check_fraction("target", self.target)
        if self.target > self.trigger:
            raise ConfigurationError(f"target {self.target} is above trigger {self.trigger}")

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        if context.tokens() <= self.trigger * context.limit:
            return None
        goal = self.target * context.limit
        costs = context.costs()
        total = sum(costs)
        deletes: list[str] = []
        turns = context.turns()
        if turns and turns[0][0] > 0:
            # Items before the first turn start are what is left of a turn the server cut:
            # the oldest of all, so they go first.
            turns.insert(0, (0, turns[0][0]))
        # Never the newest turn: the model needs something to answer.
        for start, end in turns[:-1]:
            if total <= goal:
                break
            for n in range(start, end):
                item = context.items[n]
                if context.removable(item) and item.id:
                    deletes.append(item.id)
                    total -= costs[n]
        if not deletes:
            return None
        return CompactionPlan(deletes=tuple(deletes), reason=self.name)


@dataclass(frozen=True, slots=True)
class AudioToText:
    """Replace audio items older than the last `keep` turns by their transcripts.

    Past `trigger` x limit only, so items are converted in batches: every conversion changes an
    item in the middle of the history and breaks the cached prefix there (0 converts each item
    as soon as it ages, busting the cache at every response).
    """

    keep: int = 4
    trigger: float = 0.8
    name: str = field(default="audio-to-text", init=False)

    def __post_init__(self) -> None:
        if self.keep < 0:
            raise ConfigurationError(f"keep must be >= 0 turns, got {self.keep}")
        if not 0.0 <= self.trigger <= 1.0:
            raise ConfigurationError(f"trigger must be in [0, 1], got {self.trigger}")

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        if context.tokens() <= self.trigger * context.limit:
            return None
        turns = context.turns()
        old_end = (
            turns[-self.keep][0]
            if 0 < self.keep <= len(turns)
            else (len(context.items) if self.keep == 0 else 0)
        )
        creates: list[Create] = []
        deletes: list[str] = []
        for item in context.items[:old_end]:
            if not (isinstance(item, Message) and item.audio_ms is not None and item.text):
                continue  # text already, or audio without a transcript to replace it with
            if not context.removable(item) or item.id is None:
                continue
            text = replace(item.as_text(), id=f"{item.id}_text")
            creates.append(Create(text, item.id))
            deletes.append(item.id)
        if not deletes:
            return None
        return CompactionPlan(creates=tuple(creates), deletes=tuple(deletes), reason=self.name)


_summary_numbers = itertools.count(1)


@dataclass(frozen=True, slots=True)
class RollingSummary:
    """Past `trigger` x limit, fold the turns before the last `keep` into one summary.

    The new summary (at most `budget` tokens, written by `summarizer` from the folded turns and
    the previous summary) goes first in the conversation as a ``system`` message: an assistant
    summary can make the model answer in text. The folded turns and the previous summary are
    deleted after it exists.
    """

    trigger: float = 0.85
    keep: int = 6
    budget: int = 512
    summarizer: Summarizer = field(default_factory=ExtractiveSummarizer)
    name: str = field(default="rolling-summary", init=False)

    def __post_init__(self) -> None:
        _check_fraction("trigger", self.trigger)
        if self.keep < 1:
            raise ConfigurationError(f"keep must be >= 1 turn, got {self.keep}")
        if self.budget < 1:
            raise ConfigurationError(f"budget must be >= 1 token, got {self.budget}")

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        _read_ahead(self.summarizer, context)
        folded = context.folded(self.trigger, self.keep)
        if folded is None:
            return None
        previous = [i for i in context.items if _is_summary(i)]
        prior = "\n".join(i.text for i in previous if isinstance(i, Message)) or None
        text = self.summarizer.summarize(folded, budget_tokens=self.budget, previous=prior)
        deletes = tuple(i.id for i in [*previous, *folded] if i.id is not None)
        if not text:  # nothing fit the budget: the turns go, and no empty item takes their place
            return CompactionPlan(deletes=deletes, reason=self.name)
        summary = Message(role="system", text=text, id=_new_summary_id())
        return CompactionPlan(creates=(Create(summary, ROOT),), deletes=deletes, reason=self.name)


@dataclass(frozen=True, slots=True)
class Hierarchical:
    """Summaries of chunks of turns, merged when there are too many.

    Past `trigger` x limit, fold the oldest `chunk` turns (before the last `keep`) into a chunk
    summary of at most `budget` tokens, after the chunk summaries before it; once there are
    more than `max_summaries`, merge them all into one.

    Older chunks keep their own summaries, so a merge loses detail only when many chunks pile up.
    """

    trigger: float = 0.85
    keep: int = 6
    chunk: int = 64
    budget: int = 256
    max_summaries: int = 3
    summarizer: Summarizer = field(default_factory=ExtractiveSummarizer)
    name: str = field(default="hierarchical", init=False)

    def __post_init__(self) -> None:
        _check_fraction("trigger", self.trigger)
        for label in ("keep", "chunk", "budget", "max_summaries"):
            if getattr(self, label) < 1:
                raise ConfigurationError(f"{label} must be >= 1, got {getattr(self, label)}")

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        _read_ahead(self.summarizer, context)
        if context.tokens() <= self.trigger * context.limit:
            return None
        summaries = [i for i in context.items if _is_summary(i) and isinstance(i, Message)]
        if len(summaries) > self.max_summaries:
            merged = self.summarizer.summarize(
                [], budget_tokens=self.budget, previous="\n".join(i.text for i in summaries)
            )
            item = Message(role="system", text=merged, id=_new_summary_id())
            return CompactionPlan(
                creates=(Create(item, ROOT),) if merged else (),
                deletes=tuple(i.id for i in summaries if i.id is not None),
                reason=f"{self.name}: merge",
            )
        turns = context.turns()
        if len(turns) <= self.keep:
            return None
        oldest = turns[: min(self.chunk, len(turns) - self.keep)]
        folded = [i for i in context.items[oldest[0][0] : oldest[-1][1]] if context.removable(i)]
        if not folded:
            return None
        text = self.summarizer.summarize(folded, budget_tokens=self.budget)
        deletes = tuple(i.id for i in folded if i.id is not None)
        if not text:
            return CompactionPlan(deletes=deletes, reason=self.name)
        after = summaries[-1].id if summaries else ROOT
        item = Message(role="system", text=text, id=_new_summary_id())
        return CompactionPlan(creates=(Create(item, after),), deletes=deletes, reason=self.name)


LEDGER_PREFIX = "ledger_"

_WORD = re.compile(r"[^\W\d_]{4,}")
_STOP = frozenset(
    "that this with have from your what when will would there their them they been were into "
    "about just like okay sure thanks please sorry actually changed instead now correction "
    "always never cannot must only before after let's with".split()
)


def _topics(sentence: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(sentence)} - _STOP


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One fact of a ledger, and who said it (``None``: a line of an earlier ledger)."""

    text: str
    speaker: str | None


@dataclass(frozen=True, slots=True)
class Ledger:
    """A pinned ledger of facts first in the conversation, alone or with a summary.

    Past `trigger` x limit, fold the turns before the last `keep` into the ledger (and, with
    `summary_budget`, into a summary after it), and delete what they cover.

    The ledger is every sentence of the history that carries a fact (a name, a number or code,
    a constraint, a decision, an open task), newest last; a correction ("actually", "changed",
    "instead"...) replaces the earlier facts it shares a topic word with (last write wins). It
    is cut to `budget` tokens, keeping the facts worth most (`sentence_values`: the user's
    statements and the first statement of each value first), the newer among equals.
    """

    trigger: float = 0.85
    keep: int = 6
    budget: int = 256
    summary_budget: int = 0
    summarizer: Summarizer = field(default_factory=ExtractiveSummarizer)
    memo: SentenceMemo = field(default_factory=SentenceMemo, compare=False, repr=False)
    name: str = field(default="ledger", init=False)

    def __post_init__(self) -> None:
        _check_fraction("trigger", self.trigger)
        if self.keep < 1 or self.budget < 1 or self.summary_budget < 0:
            raise ConfigurationError(
                "ledger needs keep >= 1, budget >= 1 and summary_budget >= 0, got"
                f" keep={self.keep}, budget={self.budget}, summary_budget={self.summary_budget}"
            )

    def facts(self, items: Sequence[Item], previous: str | None) -> list[LedgerLine]:
        """The ledger lines from `items` after the `previous` ledger (last write wins)."""
        lines: list[LedgerLine] = [
            LedgerLine(line, None) for line in (previous or "").split("\n") if line.strip()
        ]
        for item in items:
            if not isinstance(item, Message):
                continue
            if item.role == "system":
                # Another memory (a rollover's seed summary, a note): its lines are kept facts.
                known = {x.text for x in lines}
                lines += [
                    LedgerLine(line, None)
                    for line in item.text.split("\n")
                    if line.strip() and line not in known
                ]
                continue
            sentences, features = self.memo.rows(item)
            speaker = "User" if item.role == "user" else "Assistant"
            for sentence, row in zip(sentences, features, strict=True):
                if not _is_fact(row):
                    continue
                if _is_update(row):
                    topics = _topics(sentence)
                    lines = [x for x in lines if not (_topics(x.text) & topics)]
                if all(x.text != sentence for x in lines):
                    lines.append(LedgerLine(sentence, speaker))
        return lines

    def text(self, lines: Sequence[LedgerLine], counter: TokenCounter, budget: int) -> str:
        """The ledger's text: the most valuable `lines` that fit `budget` tokens, in order.

        Each line is valued by `sentence_values` (what the user stated above the assistant's
        echoes, first statements above repeats), the newer first among equals; a previous
        ledger's lines keep their place by the same rule.
        """
        if not lines:
            return ""
        texts = [x.text for x in lines]
        value = sentence_values(texts, sentence_features(texts), [x.speaker for x in lines])
        order = sorted(range(len(lines)), key=lambda n: (-value[n], -n))
        chosen: set[int] = set()
        used = 0
        for n in order:
            cost = counter.text(texts[n]) + 1  # the line and its newline
            if used + cost <= budget:
                chosen.add(n)
                used += cost
        kept = [n for n in range(len(lines)) if n in chosen]
        # The joined text is counted exactly: a seam that merged tokens drops the least worth.
        while kept and counter.text("\n".join(texts[n] for n in kept)) > budget:
            kept.remove(min(kept, key=lambda n: (value[n], n)))
        return "\n".join(texts[n] for n in kept)

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        for item in context.newest():
            self.memo.rows(item)  # read ahead, so the compaction itself only chooses
        _read_ahead(self.summarizer, context)
        folded = context.folded(self.trigger, self.keep)
        if folded is None:
            return None
        ledgers = [i for i in context.items if _is_ledger(i) and isinstance(i, Message)]
        previous = ledgers[-1].text if ledgers else None
        ledger_text = self.text(self.facts(folded, previous), context.counter, self.budget)
        creates: list[Create] = []
        ledger_id = None
        if ledger_text:
            ledger_id = f"{LEDGER_PREFIX}{next(_summary_numbers)}"
            ledger = Message(role="system", text=ledger_text, id=ledger_id)
            creates.append(Create(ledger, ROOT))
        old_summaries = [i for i in context.items if _is_summary(i)]
        if self.summary_budget:
            prior = "\n".join(i.text for i in old_summaries if isinstance(i, Message)) or None
            text = self.summarizer.summarize(
                folded, budget_tokens=self.summary_budget, previous=prior
            )
            if text:
                summary = Message(role="system", text=text, id=_new_summary_id())
                creates.append(Create(summary, ledger_id or ROOT))
        deletes = tuple(
            i.id for i in [*ledgers, *(old_summaries if self.summary_budget else []), *folded]
            if i.id is not None
        )  # fmt: skip
        return CompactionPlan(creates=tuple(creates), deletes=deletes, reason=self.name)


def _read_ahead(summarizer: Summarizer, context: CompactionContext) -> None:
    # Summarizers that keep a memo read the newest items while the strategy waits, so the
    # compaction, when it comes, costs only the choosing (bench_summarizer.py: warm plans).
    observe = getattr(summarizer, "observe", None)
    if observe is not None:
        observe(context.newest())


def _new_summary_id() -> str:
    return f"{SUMMARY_PREFIX}{next(_summary_numbers)}"


def _is_ledger(item: Item) -> bool:
    return (
        isinstance(item, Message)
        and item.role == "system"
        and (item.id or "").startswith(LEDGER_PREFIX)
    )


_UPDATE = FEATURES.index("update")


def _is_fact(row: Any) -> bool:
    return bool(row[:_UPDATE].any())


def _is_update(row: Any) -> bool:
    return bool(row[_UPDATE])


@dataclass(frozen=True, slots=True)
class WhenCold:
    """Cache-aware timing: compact earlier when a cache miss is coming anyway.

    A compaction rewrites the history, so the next request misses the cache from the first
    changed item on. When that request would miss anyway (`CompactionContext.cold`), the
    rewrite is free: `strategy` then runs with its trigger lowered to `early`. Otherwise it
    runs as it is.
    """

    strategy: Any
    early: float = 0.5

    def __post_init__(self) -> None:
        _check_fraction("early", self.early)
        if not hasattr(self.strategy, "trigger"):
            raise ConfigurationError(f"{self.strategy.name} has no trigger to lower")
        target = getattr(self.strategy, "target", None)
        if target is not None and self.early < target:
            raise ConfigurationError(
                f"cold={self.early} is below {self.strategy.name}'s target {target}: a cold"
                " compaction would have nothing to delete (give cold >= target)"
            )

    @property
    def name(self) -> str:
        return f"{self.strategy.name}+cold"

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        strategy = self.strategy
        if context.cold and self.early < strategy.trigger:
            strategy = replace(strategy, trigger=self.early)
        plan: CompactionPlan | None = strategy.plan(context)
        return plan


STRATEGIES: dict[str, type[Any]] = {
    "drop-oldest": DropOldest,
    "audio-to-text": AudioToText,
    "rolling-summary": RollingSummary,
    "hierarchical": Hierarchical,
    "ledger": Ledger,
}
"""Strategies by their command-line name."""
