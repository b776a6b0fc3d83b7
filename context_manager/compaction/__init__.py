"""Client-side compaction: strategies, summarizers, and plans as Realtime client events.

The server never summarizes: it drops. These strategies shrink the history on the client and
say exactly which ``conversation.item.create`` and ``conversation.item.delete`` events make the
server's conversation match.
"""

from __future__ import annotations

from .parsing import parse_compaction
from .plan import ROOT, CompactionPlan, Create
from .pricing import CompactionPrice, price_compaction
from .strategies import (
    STRATEGIES,
    AudioToText,
    CompactionContext,
    CompactionStrategy,
    DropOldest,
    Hierarchical,
    Ledger,
    RollingSummary,
    WhenCold,
)
from .summarizers import ExtractiveSummarizer, Summarizer, as_summarizer, summarize_async

__all__ = [
    "ROOT",
    "STRATEGIES",
    "AudioToText",
    "CompactionContext",
    "CompactionPlan",
    "CompactionPrice",
    "CompactionStrategy",
    "Create",
    "DropOldest",
    "ExtractiveSummarizer",
    "Hierarchical",
    "Ledger",
    "RollingSummary",
    "Summarizer",
    "WhenCold",
    "as_summarizer",
    "parse_compaction",
    "price_compaction",
    "summarize_async",
]
