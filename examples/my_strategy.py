"""A researcher's own compaction strategy, run by the benchmark from outside the package.

    PYTHONPATH=examples context-manager bench --quick --strategies retention-0.8,my_strategy:KeepFacts

Any object with a ``name`` and a ``plan(context)`` method is a strategy (`CompactionStrategy`);
``module:attribute`` may name the strategy, its class or a factory. This one keeps a ledger of
the call's facts twice the built-in's size, folding only when the history is nine-tenths full.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from context_manager.compaction import CompactionContext, CompactionPlan, Ledger


@dataclass
class KeepFacts:
    """A ledger of 512 tokens (the built-in keeps 256), folded at 90 % of the history limit."""

    name: str = "keep-facts"
    ledger: Ledger = field(default_factory=lambda: Ledger(trigger=0.9, budget=512))

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        """What to delete and create now, if anything (the ledger decides)."""
        return self.ledger.plan(context)
