"""The compaction benchmark: datasets with planted facts, strategies, metrics, reports.

`run_bench` runs every strategy on every conversation of a dataset and measures cost, cache hits,
peak tokens, compactions, fact presence by type, retrieval answerability, stale values,
summary compression and compaction time. The command line is ``context-manager bench``.
"""

from .datasets import (
    DATASETS,
    QUESTIONS,
    BenchConversation,
    chitchat,
    load_datasets,
    locomo,
    longmemeval,
    synthetic,
)

__all__ = [
    "DATASETS",
    "QUESTIONS",
    "BenchConversation",
    "chitchat",
    "load_datasets",
    "locomo",
    "longmemeval",
    "synthetic",
]
